"""Every DAG file imports cleanly and has the shape the README promises."""

from __future__ import annotations

import pytest

from greenapi.domain.config import PACKAGE_DAG_IDS
from tests.e2e.conftest import DAGS, load_dag


def test_health_check_dag_shape():
    dag = load_dag("green_api_health_check")
    assert dag.timetable.expression == "*/5 * * * *"
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.doc_md and "Green API health check" in dag.doc_md
    assert set(dag.task_ids) == {
        "plan_checks", "check_shard", "check_instances", "reboot_instances", "wait_for_recovery",
        "conclude", "send_alerts", "log_results", "report",
    }
    # The data flow is the graph: each task gets its inputs as arguments from the tasks before it.
    edges = {t: dag.get_task(t).downstream_task_ids for t in dag.task_ids}
    assert edges == {
        "plan_checks": {"check_shard"},
        "check_shard": {"check_instances"},
        "check_instances": {"reboot_instances", "conclude", "send_alerts", "report"},
        "reboot_instances": {"wait_for_recovery", "conclude"},
        "wait_for_recovery": {"conclude"},
        "conclude": {"send_alerts", "log_results", "report"},
        "send_alerts": {"log_results", "report"},
        "log_results": {"report"},
        "report": set(),
    }
    # Both are mapped: one check task per shard of instances; one wait for all the accepted reboots
    # (none when none was accepted).
    assert dag.get_task("check_shard").operator_class.__name__ == "HealthCheckShard"  # a GreenApiHealthCheckOperator
    assert dag.get_task("wait_for_recovery").operator_class.__name__ == "GreenApiFleetStateSensor"
    assert dag.get_task("log_results").trigger_rule == "all_done"


def test_all_dags_import_cleanly():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == set(PACKAGE_DAG_IDS)


def test_provider_registers_the_green_api_connection_type():
    from airflow.providers_manager import ProvidersManager

    hooks = ProvidersManager().hooks
    assert "greenapi" in hooks
    info = hooks["greenapi"]
    assert info is not None and info.hook_class_name == "greenapi.hooks.green_api.GreenApiHook"
    assert info.connection_type == "greenapi" and info.hook_name == "Green API"
    # The former type name still works (connections of that type are migrated at start).
    legacy = hooks["green_api"]
    assert legacy is not None and legacy.hook_class_name == "greenapi.hooks.green_api.GreenApiLegacyHook"


def _bag(monkeypatch, schedule: str | None):
    from airflow.dag_processing.dagbag import DagBag

    if schedule is None:
        monkeypatch.delenv("AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE", schedule)
    return DagBag(dag_folder=str(DAGS / "green_api_scheduled_reboot.py"))


def test_reboot_schedule_comes_from_the_variable(monkeypatch):
    bag = _bag(monkeypatch, '{"time": "04:30", "timezone": "America/New_York", "enabled": true}')
    assert not bag.import_errors
    timetable = bag.get_dag("green_api_scheduled_reboot").timetable
    assert (timetable.at, timetable.timezone) == ("04:30", "America/New_York")
    assert "04:30 (America/New_York)" in bag.get_dag("green_api_scheduled_reboot").doc_md


def test_reboot_schedule_default_is_three_in_paris(monkeypatch):
    timetable = _bag(monkeypatch, None).get_dag("green_api_scheduled_reboot").timetable
    assert (timetable.at, timetable.timezone) == ("03:00", "Europe/Paris")


def test_disabled_reboot_schedule_has_no_scheduled_runs(monkeypatch):
    dag = _bag(monkeypatch, '{"time": "03:00", "timezone": "Europe/Paris", "enabled": false}').get_dag(
        "green_api_scheduled_reboot"
    )
    assert dag.timetable.can_be_scheduled is False


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("{not json", "Variable green_api_reboot_schedule is not valid JSON"),
        ('{"time": "25:00", "timezone": "Europe/Paris", "enabled": true}', "green_api_reboot_schedule.time"),
        ('{"time": "3h", "timezone": "Europe/Paris", "enabled": true}', "got '3h'"),
        ('{"time": "03:00", "timezone": "Mars/Base", "enabled": true}', "not a known IANA timezone: 'Mars/Base'"),
    ],
)
def test_bad_reboot_schedule_is_an_import_error_naming_it(monkeypatch, value, named):
    bag = _bag(monkeypatch, value)
    assert "green_api_scheduled_reboot" not in bag.dag_ids  # never replaced by another schedule
    [(path, error)] = bag.import_errors.items()
    assert path.endswith("green_api_scheduled_reboot.py")
    assert named in error


def _check_bag(monkeypatch, schedule: str):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_CHECK_SCHEDULE", schedule)
    return DagBag(dag_folder=str(DAGS / "green_api_health_check.py"))


def test_the_check_schedule_comes_from_the_variable(monkeypatch):
    bag = _check_bag(monkeypatch, "*/2  * * * *")
    assert not bag.import_errors
    dag = bag.get_dag("green_api_health_check")
    assert dag.timetable.expression == "*/2 * * * *"
    assert "On schedule `*/2 * * * *`" in dag.doc_md


@pytest.mark.parametrize("value", ["every 5 minutes", "*/5 * * *", "*/5 * * * * *", "61 * * * *"])
def test_a_bad_check_schedule_is_an_import_error_naming_it(monkeypatch, value):
    bag = _check_bag(monkeypatch, value)
    assert "green_api_health_check" not in bag.dag_ids  # never replaced by another schedule
    [(path, error)] = bag.import_errors.items()
    assert path.endswith("green_api_health_check.py")
    assert f"Variable green_api_check_schedule must be a cron expression of five fields such as '*/5 * * * *', " \
           f"got {value!r}" in error  # fmt: skip


def test_the_watch_is_off_by_default_and_on_runs_on_the_schedule_or_a_change(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from greenapi.triggers.green_api import GreenApiStateChangeTrigger

    off = _check_bag(monkeypatch, "*/5 * * * *").get_dag("green_api_health_check")
    assert off.timetable.expression == "*/5 * * * *" and "off here" in off.doc_md
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_WATCH", '{"enabled": true, "watch_seconds": 15}')
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", '["green_api_default", "green_api_b", {"partner": "p"}]')
    bag = DagBag(dag_folder=str(DAGS / "green_api_health_check.py"))
    assert not bag.import_errors
    on = bag.get_dag("green_api_health_check")
    assert type(on.timetable).__name__ == "AssetOrTimeSchedule" and "on here" in on.doc_md
    [asset] = on.timetable.asset_condition.objects
    [watcher] = asset.watchers
    assert (asset.name, watcher.name) == ("green_api_state_changes", "green_api_state_watch")
    assert isinstance(watcher.trigger, GreenApiStateChangeTrigger)
    kwargs = watcher.trigger.serialize()[1]
    assert kwargs["green_api_conn_ids"] == ["green_api_default", "green_api_b"]
    assert (kwargs["green_api_partner_conn_ids"], kwargs["watch_seconds"], kwargs["record_round"]) == (
        ["p"], 15, "greenapi.store.record_round")
    # Airflow finds the watcher's trigger again by a hash of its arguments, before and after they
    # are stored: unless the two agree, the watcher is never registered and nothing is watched.
    from airflow.models.trigger import Trigger
    from airflow.serialization.encoders import encode_trigger
    from airflow.triggers.base import BaseEventTrigger

    encoded = encode_trigger(watcher.trigger)
    stored = Trigger(classpath=encoded["classpath"], kwargs=encoded["kwargs"])
    assert BaseEventTrigger.hash(stored.classpath, stored.kwargs) == BaseEventTrigger.hash(**encoded)


@pytest.mark.parametrize(("value", "named"), [
    ('{"enabled": "yes"}', "Variable green_api_watch.enabled must be true or false, got 'yes'"),
    ('{"enabled": true, "watch_seconds": 0.2}', "Variable green_api_watch.watch_seconds must be at least 1"),
    ('{"on": true}', "Variable green_api_watch has unknown key(s) ['on']"),
    ("[true", "Variable green_api_watch is not valid JSON"),
])  # fmt: skip
def test_a_bad_watch_is_an_import_error_naming_it(monkeypatch, value, named):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_WATCH", value)
    bag = DagBag(dag_folder=str(DAGS / "green_api_health_check.py"))
    [(_, error)] = bag.import_errors.items()
    assert named in error


def test_force_reboot_form_offers_the_instances_and_a_confirmation(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", '["green_api_default", "green_api_backup"]')
    dag = DagBag(dag_folder=str(DAGS / "green_api_reboot.py")).get_dag("green_api_reboot")
    assert dag.timetable.can_be_scheduled is False  # manual only
    params = dag.params
    assert params.get_param("instance").schema["examples"] == ["all", "green_api_default", "green_api_backup"]
    assert params["confirm"] is False

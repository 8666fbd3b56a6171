"""The health database stopped for real (``pg_ctl stop -m immediate``) during health-check runs."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.airflow_services import free_port
from tests.e2e.conftest import run_dag
from tests.e2e.test_health_check_dag import FAST, HANG_TWICE
from tests.faults.conftest import Watcher, attempts, rows_of, task_state_now

pytestmark = pytest.mark.faults
DAG_ID = "green_api_health_check"
FALLBACK = "33600000077@c.us"


@pytest.fixture
def three_instances(make_instance, monkeypatch):
    made = {
        "green_api_ok": make_instance("green_api_ok", state="authorized"),
        "green_api_unlinked": make_instance("green_api_unlinked", state="notAuthorized"),
        "green_api_hung": make_instance("green_api_hung", faults={"getStateInstance": HANG_TWICE}, starting_seconds=1),
    }
    sender = make_instance("green_api_alerts")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(list(made)))
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps({**FAST, "fallback_chat_ids": [FALLBACK]}))
    return made, sender


def test_stopped_while_logging_the_log_task_retries_and_every_check_is_logged_once(
    health_dag, health_db, private_pg, three_instances, sim
):
    made, sender = three_instances
    # The run's INSERT waits behind a lock the test holds; once it waits, the server is stopped
    # under it, then started again.
    health_db.execute("BEGIN")
    health_db.execute("LOCK TABLE green_api_health_logs IN SHARE MODE")

    def inserting() -> bool:
        with private_pg.connect() as conn:
            return bool(conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'INSERT INTO green_api_health_logs%'"
            ).fetchone()[0])  # fmt: skip

    def crash_and_restart() -> None:
        private_pg.stop()
        time.sleep(1)
        private_pg.start()

    watcher = Watcher(inserting, crash_and_restart)
    watcher.start()
    outcome = run_dag(health_dag)
    watcher.result()
    assert attempts(DAG_ID, outcome.run_id, "log_results") == ["failed", "success"]
    rows = rows_of(private_pg.url, outcome.run_id)
    assert sorted(r["instance_id"] for r in rows) == sorted(i.instance_id for i in made.values())
    statuses = {r["connection_id"]: r["status"] for r in rows}
    assert statuses == {"green_api_ok": "healthy", "green_api_unlinked": "unhealthy", "green_api_hung": "rebooted"}
    assert outcome.state == "success", outcome.tasks
    # The alert went out once, through the normal path (the database was up until logging).
    assert [m["chatId"] for m in sim.messages(sender.instance_id)] == ["33600000001@c.us"]


def test_down_for_the_whole_run_checks_reboots_and_alerts_still_happen_and_rows_follow(
    health_dag, health_db, private_pg, three_instances, sim, capfd
):
    made, sender = three_instances
    private_pg.stop()
    # The server comes back only once the log task has failed its first attempt.
    watcher = Watcher(lambda: "up_for_retry" in task_state_now(DAG_ID, "log_results"), private_pg.start)
    watcher.start()
    outcome = run_dag(health_dag)
    watcher.result()
    hung, unlinked = made["green_api_hung"], made["green_api_unlinked"]
    # The checks and the reboot happened without the database.
    assert len(sim.requests_log(made["green_api_ok"].instance_id, "getStateInstance")) == 1
    assert [r["isReboot"] for r in sim.reboots(hung.instance_id)] == [True]
    # Support was told through fallback_chat_ids, saying incidents are not tracked.
    [alert] = [m for m in sim.messages(sender.instance_id) if "ALERTE GREEN API" in m["message"]]
    assert alert["chatId"] == FALLBACK
    assert f"📱 Instance: {unlinked.instance_id}" in alert["message"]
    assert "Base de suivi injoignable" in alert["message"]
    # The log task's retry wrote every check once, with the delivery it made.
    assert attempts(DAG_ID, outcome.run_id, "log_results") == ["failed", "success"]
    rows = {r["connection_id"]: r for r in rows_of(private_pg.url, outcome.run_id)}
    assert {c: r["status"] for c, r in rows.items()} == {
        "green_api_ok": "healthy", "green_api_unlinked": "unhealthy", "green_api_hung": "rebooted",
    }  # fmt: skip
    assert rows["green_api_unlinked"]["support_notified"] is True
    # The run fails, naming the reason; the failure notice goes to the contacts, readable again.
    assert outcome.state == "failed" and outcome.tasks["report"] == "failed"
    printed = capfd.readouterr()
    assert "health database unreachable (connection green_api_db)" in printed.out + printed.err
    notices = [m for m in sim.messages(sender.instance_id) if "MONITORING GREEN API EN ÉCHEC" in m["message"]]
    assert [m["chatId"] for m in notices] == ["33600000001@c.us"]
    assert "health database unreachable" in notices[0]["message"]


@pytest.fixture
def unreachable_store(monkeypatch):
    """A store whose server refuses connections (nothing listens on that port)."""
    from greenapi.store import IncidentStore

    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DB_GONE", f"postgresql://postgres@127.0.0.1:{free_port()}/gone")
    return IncidentStore("green_api_db_gone")


def test_a_store_that_cannot_connect_says_so_by_name(unreachable_store):
    from greenapi.store import StoreUnavailable

    with pytest.raises(StoreUnavailable, match=r"health database unreachable \(connection green_api_db_gone\)"):
        unreachable_store.counters(["1"])


def test_without_the_database_one_alert_per_reminder_interval_across_runs(make_instance, sim, monkeypatch):
    from greenapi.domain.config import parse_settings
    from greenapi.domain.findings import Finding
    from greenapi.domain.rules import AlertKind, Status
    from greenapi.tasks.alerting import untracked_alerts

    sender = make_instance("green_api_alerts")
    inst = make_instance("green_api_unlinked", state="notAuthorized")
    settings = parse_settings({**FAST, "fallback_chat_ids": [FALLBACK], "reminder_minutes": 60})
    t0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def finding(at: datetime) -> Finding:
        return Finding(conn_id=inst.conn_id, instance_id=inst.instance_id, dashboard_url=sim.url,
                       checked_at=at.isoformat(), status=Status.UNHEALTHY, state="notAuthorized", error=None,
                       response_time_ms=5, alert=AlertKind.INSTANCE_NOT_AUTHORIZED)  # fmt: skip

    told: list = []  # what each run carries to the next (AlertOutcome.untracked)
    sent_at = []
    for minutes in (0, 5, 10, 55, 61, 65):  # runs every few minutes, the database down throughout
        now = t0 + timedelta(minutes=minutes)
        outcome = untracked_alerts([finding(now)], settings, now, told, "health database unreachable", [])
        told = outcome.untracked
        if outcome.sent:
            sent_at.append(minutes)
    assert sent_at == [0, 61]
    assert [m["chatId"] for m in sim.messages(sender.instance_id)] == [FALLBACK, FALLBACK]


def test_without_the_database_the_cooldown_comes_from_earlier_runs(make_instance, sim, unreachable_store):
    from greenapi.domain.config import parse_settings
    from greenapi.domain.health import CheckedRun
    from greenapi.domain.records import CheckBatch, InstanceCheck
    from greenapi.domain.results import ApiResult, ResultKind
    from greenapi.domain.rules import SkipReason
    from greenapi.tasks.health_check import reboot_instances

    inst = make_instance("green_api_hung", faults={"getStateInstance": {"mode": "hang", "seconds": 3}})
    now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    timeout = ApiResult("getStateInstance", ResultKind.TIMEOUT, 1000, error="Connection timeout")
    check = InstanceCheck(inst.conn_id, inst.instance_id, now.isoformat(), timeout, sim.url)
    checked = CheckedRun.of(CheckBatch([check]), now, {inst.conn_id: "no answer"})
    settings = parse_settings({**FAST, "reboot_cooldown_minutes": 30})
    ten_minutes_ago = {inst.instance_id: [now - timedelta(minutes=10)]}
    held = reboot_instances(checked, settings, unreachable_store, lambda: ten_minutes_ago)
    assert held.made == [] and [a.skipped for a in held.attempts] == [SkipReason.COOLDOWN]
    assert sim.reboots(inst.instance_id) == []
    an_hour_ago = {inst.instance_id: [now - timedelta(minutes=60)]}
    done = reboot_instances(checked, settings, unreachable_store, lambda: an_hour_ago)
    assert [a.instance_id for a in done.made] == [inst.instance_id]
    assert done.store_error is not None and done.store_error.startswith("health database unreachable")
    assert len(sim.reboots(inst.instance_id)) == 1


@pytest.mark.slow
def test_down_for_hours_the_cooldown_and_the_cap_still_see_the_whole_day(health_dag, make_instance, sim, monkeypatch):
    """The database unreachable for a whole series of health-check runs (dag.test at successive
    logical times): an instance that never answers is rebooted within the cooldown and the daily cap
    as if the database were there, because each run carries the past day's reboots to the next."""
    inst = make_instance("green_api_default", faults={"getStateInstance": {"mode": "hang", "seconds": 3}})
    make_instance("green_api_alerts")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps(
        {**FAST, "fallback_chat_ids": [FALLBACK], "reboot_cooldown_minutes": 30, "reboot_daily_cap": 2}))  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DB", f"postgresql://postgres@127.0.0.1:{free_port()}/gone")
    # The log task's three retries 20 s apart (for a database that comes back) are not this test's
    # subject: without them a run takes seconds, not a minute.
    monkeypatch.setattr(health_dag.get_task("log_results"), "retries", 0)
    t0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    rebooted_at = []
    for minutes in (0, 10, 20, 40, 50, 80):
        before = len(sim.reboots(inst.instance_id))
        when = t0 + timedelta(minutes=minutes)
        run_dag(health_dag, logical_date=when, run_after=when)
        if len(sim.reboots(inst.instance_id)) > before:
            rebooted_at.append(minutes)
    # 10 and 20 are in the cooldown of 0 (the run at 10 made none, so 20 sees 0 only through the
    # carry); 50 is in the cooldown of 40; 80 is past the cap of 2 in 24 h.
    assert rebooted_at == [0, 40]

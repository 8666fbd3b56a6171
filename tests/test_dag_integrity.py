"""Every DAG file imports cleanly and has the shape the README promises."""

from __future__ import annotations

from tests.e2e.conftest import load_dag


def test_health_check_dag_shape():
    dag = load_dag("green_api_health_check")
    assert dag.timetable.expression == "*/5 * * * *"
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.doc_md and "Green API health check" in dag.doc_md
    assert set(dag.task_ids) == {"check_instances", "route", "reboot_instances", "send_alerts", "log_results", "report"}
    assert dag.get_task("route").downstream_task_ids == {"reboot_instances", "send_alerts"}
    assert dag.get_task("log_results").trigger_rule == "all_done"


def test_provider_registers_the_green_api_connection_type():
    from airflow.providers_manager import ProvidersManager

    hooks = ProvidersManager().hooks
    assert "green_api" in hooks
    info = hooks["green_api"]
    assert info is not None and info.hook_class_name == "greenapi.hooks.green_api.GreenApiHook"
    assert info.connection_type == "green_api" and info.hook_name == "Green API"

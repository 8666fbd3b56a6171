"""The tasks shared by the reboot DAGs: reboot -> wait_for_recovery -> send_alerts -> log -> report.

Called inside a DAG definition with the task that picks the instances (its XCom: connection ids).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import TriggerRule, Variable, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from greenapi.domain.config import SETTINGS_VARIABLE
from greenapi.sensors import RecoverySensor
from greenapi.store import HealthStore
from greenapi.tasks import common
from greenapi.tasks import reboot as rb

if TYPE_CHECKING:
    from airflow.sdk import XComArg


def _settings() -> Any:
    return Variable.get(SETTINGS_VARIABLE, default=None)


def _findings(ti: Any) -> list:
    return rb.findings(ti.xcom_pull(task_ids=rb.REBOOT_TASK), ti.xcom_pull(task_ids=rb.WAIT_TASK), _settings())


def _alerting(ti: Any) -> dict | None:
    return ti.xcom_pull(task_ids=rb.ALERT_TASK) or ti.xcom_pull(task_ids=rb.ALERT_TASK, key="failed_outcome")


def reboot_flow(targets: XComArg, *, trigger_type: str) -> None:
    """Wire the reboot, its verification, the alerts and the log after ``targets``.

    ``trigger_type`` (``scheduled`` or ``manual``) is what the rows and messages say: a run of the
    scheduled DAG is the scheduled reboot even when started by hand.
    """

    @task(multiple_outputs=False, task_id=rb.REBOOT_TASK)
    def reboot_instances(conn_ids: list[str]) -> dict:
        return rb.reboot_all(conn_ids, _settings())

    wait = RecoverySensor(task_id=rb.WAIT_TASK, reboot_task_id=rb.REBOOT_TASK)

    @task(multiple_outputs=False, task_id=rb.ALERT_TASK)
    def send_alerts() -> dict:
        ti = get_current_context()["ti"]
        outcome = common.send_alerts(_findings(ti), _settings(), HealthStore(), trigger_type)
        if outcome["undelivered"]:
            ti.xcom_push(key="failed_outcome", value=outcome)
            raise AirflowFailException("; ".join(outcome["problems"]))
        return outcome

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=3, retry_delay=timedelta(seconds=20))
    def log_results() -> int:
        context = get_current_context()
        ti, dag_run = context["ti"], context["dag_run"]
        rows = common.log_rows(
            _findings(ti),
            _alerting(ti),
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            trigger_type=trigger_type,
        )
        inserted = HealthStore().insert_health_logs(rows)
        print(f"{len(rows)} reboot(s) to log, {inserted} new row(s) in green_api_health_logs")
        return len(rows)

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE)
    def report() -> dict:
        ti = get_current_context()["ti"]
        rebooted = ti.xcom_pull(task_ids=rb.REBOOT_TASK)
        summary = common.summarize(
            _findings(ti) if rebooted else None,
            (rebooted or {}).get("problems", []),
            _alerting(ti),
            ti.xcom_pull(task_ids="log_results"),
        )
        if summary["problems"]:
            raise AirflowFailException("Run failed: " + "; ".join(summary["problems"]))
        return summary

    rebooted = reboot_instances(targets)
    rebooted >> wait >> send_alerts() >> log_results() >> report()

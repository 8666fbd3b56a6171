"""The tasks shared by the reboot DAGs: reboot -> wait_for_recovery -> send_alerts -> log -> report.

Called inside a DAG definition with the task that picks the instances (its XCom: connection ids).
Light on imports: task bodies import their glue when they run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from airflow.sdk import TriggerRule, task

from greenapi.notifications import GreenApiNotifier
from greenapi.sensors import RecoverySensor

if TYPE_CHECKING:
    from airflow.sdk import XComArg


def reboot_flow(targets: XComArg, *, trigger_type: str, notify_failure: bool = True) -> None:
    """Wire the reboot, its verification, the alerts and the log after ``targets``.

    ``targets`` is a setup task: when it refuses the run (no confirmation, a bad Variable), every
    task after it is upstream_failed and the run fails with that one message; once it succeeded,
    the log and the report run whatever happens to the reboot.

    ``trigger_type`` (``scheduled`` or ``manual``) is what the rows and messages say: a run of the
    scheduled DAG is the scheduled reboot even when started by hand. ``notify_failure``: a failed
    run is reported to support by GreenApiNotifier (not for a reboot someone is watching).
    """

    targets.as_setup()

    @task(multiple_outputs=False, show_return_value_in_logs=False)
    def reboot_instances(conn_ids: list[str]) -> dict:
        from greenapi.tasks import reboot

        return reboot.reboot_step(conn_ids)

    wait = RecoverySensor(task_id="wait_for_recovery", reboot_task_id="reboot_instances")

    @task(multiple_outputs=False, show_return_value_in_logs=False)
    def send_alerts() -> dict:
        from greenapi.tasks import reboot

        return reboot.alert_step(trigger_type)

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=3, retry_delay=timedelta(seconds=20))
    def log_results() -> int:
        from greenapi.tasks import reboot

        return reboot.log_step(trigger_type)

    @task(
        multiple_outputs=False,
        trigger_rule=TriggerRule.ALL_DONE,
        on_failure_callback=GreenApiNotifier() if notify_failure else None,
    )
    def report() -> dict:
        from greenapi.tasks import reboot

        return reboot.report_step()

    reboot_instances(targets) >> wait >> send_alerts() >> log_results() >> report()

"""The tasks shared by the reboot DAGs: reboot -> wait_for_recovery -> conclude -> alert -> log -> report.

Called inside a DAG definition with the task that picks the instances (its XCom: connection ids).
Light on imports: task bodies import their glue when they run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from airflow.sdk import TriggerRule, task

from greenapi.domain.codec import XCom
from greenapi.domain.findings import Finding
from greenapi.domain.health import RECOVERY_STATES, RebootRound, RecoveryWait
from greenapi.domain.records import AlertOutcome, InstanceCheck
from greenapi.domain.runs import RunSummary
from greenapi.sensors.green_api import GreenApiFleetStateSensor
from greenapi.tasks.notices import support_notifier

if TYPE_CHECKING:
    from airflow.sdk import XComArg


def recovery_wait(waits: XComArg) -> XComArg:
    """One wait in the triggerer for all the accepted reboots, until each instance is back or
    needs a person: one task instance whether 1 or 200 instances were rebooted (none when no reboot
    was accepted).

    Its arguments (instances, poll interval, deadline from green_api_settings) come from the reboot
    task. At the deadline it returns every instance's last look, back or not: the next task says
    what each came to. A wait that fails (the triggerer lost it) is skipped, and the next task then
    looks at the instances once more.
    """
    sensor = GreenApiFleetStateSensor.partial(
        task_id="wait_for_recovery", target_states=RECOVERY_STATES, first_look_after_interval=True,
        fail_on_timeout=False, soft_fail=True, deferrable=True,
    )  # fmt: skip
    return sensor.expand_kwargs(waits).output


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

    @task(show_return_value_in_logs=False)
    def reboot_instances(conn_ids: list[str]) -> list[RecoveryWait]:
        from greenapi.tasks import reboot

        return reboot.reboot_step(conn_ids, trigger_type)

    @task(trigger_rule=TriggerRule.NONE_FAILED, show_return_value_in_logs=False)
    def conclude(rebooted: XCom[RebootRound] | None, looks: list[list[XCom[InstanceCheck]] | None] | None,
                 ) -> XCom[list[Finding]]:
        from greenapi.tasks import reboot

        return reboot.conclude_step(rebooted, looks)

    @task(show_return_value_in_logs=False)
    def send_alerts(findings: XCom[list[Finding]]) -> XCom[AlertOutcome]:
        from greenapi.tasks import reboot

        return reboot.alert_step(findings, trigger_type)

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=3, retry_delay=timedelta(seconds=20))
    def log_results(findings: XCom[list[Finding]] | None, alerting: XCom[AlertOutcome] | None) -> int:
        from greenapi.tasks import reboot

        return reboot.log_step(findings, alerting, trigger_type)

    @task(trigger_rule=TriggerRule.ALL_DONE, on_failure_callback=support_notifier() if notify_failure else None)
    def report(waits: list[RecoveryWait] | None, findings: XCom[list[Finding]] | None,
               alerting: XCom[AlertOutcome] | None, logged: int | None) -> XCom[RunSummary]:
        from greenapi.tasks import reboot

        return reboot.report_step(waits, findings, alerting, logged)

    rebooted = reboot_instances(targets)
    found = conclude(rebooted["round"], recovery_wait(rebooted))
    alerted = send_alerts(found)
    # The report gets the reboot task's return value, not its round: an argument of a failed task
    # would fail the report too, and the report must say why the run failed (it reads the round).
    report(rebooted, found, alerted, log_results(found, alerted))

"""Glue shared by the DAGs: the recovery looks, the alert step's end, health-log rows and the run's verdict.

XComs hold instance ids, states and redacted errors, never a token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from greenapi.domain.codec import decode
from greenapi.domain.health import RebootAttempt, RebootRound
from greenapi.domain.records import AlertOutcome, InstanceCheck
from greenapi.domain.runs import RunSummary, log_rows, summarize
from greenapi.hooks.green_api import GreenApiHook, in_parallel

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from greenapi.domain.findings import Finding
    from greenapi.tasks.context import TaskContext

log = logging.getLogger(__name__)

FAILED_OUTCOME_KEY = "failed_outcome"  # XCom of a failed alert step: what it did before failing
ROUND_KEY = "round"  # XCom of a reboot task: its RebootRound; its return value is the recovery waits
LOOKS_AT_ONCE = 32  # the conclusion's own looks, when the recovery wait did not complete


def waited(outputs: Sequence[Sequence[dict[str, Any]] | None] | None) -> list[InstanceCheck]:
    """The looks of the recovery wait (the mapped ``GreenApiFleetStateSensor``'s output: one list
    of looks, or nothing when it did not complete)."""
    every = [look for output in (outputs[:] if outputs else []) if output for look in output]
    return decode(list[InstanceCheck], every)  # type: ignore[no-any-return]


def recovery_looks(round_: RebootRound | None, looks: Sequence[InstanceCheck]) -> dict[str, InstanceCheck]:
    """The state each accepted reboot came back to (by connection id): what the recovery wait saw
    last, else, when the wait did not complete (skipped, crashed), what the instance says now."""
    seen = {look.conn_id: look for look in looks}
    missing = [a for a in (round_.accepted if round_ else []) if a.conn_id not in seen]

    def look_now(attempt: RebootAttempt) -> InstanceCheck:
        checked_at = datetime.now(UTC).isoformat()
        result = GreenApiHook(attempt.conn_id).get_state_instance()
        return InstanceCheck(attempt.conn_id, attempt.instance_id, checked_at, result, attempt.dashboard_url)

    seen.update((look.conn_id, look) for look in in_parallel(LOOKS_AT_ONCE, missing, look_now))
    return seen


def log_deliveries(outcome: AlertOutcome) -> None:
    """One log line per message attempt (who, what, through which sender), then a summary."""
    for d in outcome.deliveries:
        what = f"{d.message_kind} about instance {d.instance_id}" + (f" (incident {d.incident_id})" if d.incident_id else "")
        if d.ok:
            log.info("%s sent to %s via %s", what, d.recipient, d.sender)
        else:
            log.warning("%s not sent to %s via %s: %s", what, d.recipient, d.sender, d.error)
    for problem in outcome.problems:
        log.error(problem)
    log.info("%d message(s) sent, %d notice(s) reached nobody", outcome.sent, outcome.undelivered)


def failed_outcome(ctx: TaskContext, alerting: dict[str, Any] | None, alert_task: str) -> AlertOutcome | None:
    """The alert step's outcome: its result, else what it kept when it failed (a failed task passes
    nothing downstream, so the kept outcome is read from XCom by task id)."""
    if alerting is not None:
        return AlertOutcome.from_dict(alerting)
    return ctx.pulled(alert_task, FAILED_OUTCOME_KEY, AlertOutcome)


def finish_alert_step(ctx: TaskContext, outcome: AlertOutcome) -> dict[str, Any]:
    """Log the deliveries; fail when a notice reached nobody, keeping the outcome for the log task."""
    from airflow.sdk.exceptions import AirflowFailException

    log_deliveries(outcome)
    if outcome.undelivered:
        ctx.keep(FAILED_OUTCOME_KEY, outcome.to_dict())
        raise AirflowFailException("; ".join(outcome.problems))
    return outcome.to_dict()


def one_shot_alerts(ctx: TaskContext, findings: list[Finding], origin: str) -> dict[str, Any]:
    """Task body of the reboot DAGs: each finding's alert to every contact."""
    from greenapi.store import IncidentStore
    from greenapi.tasks.alerting import AlertRun

    return finish_alert_step(ctx, AlertRun(IncidentStore(), ctx).one_shot(findings, origin))


def log_step(ctx: TaskContext, findings: list[Finding], alerting: AlertOutcome | None, trigger_type: str | None = None) -> int:
    """Task body: one row per finding; ``trigger_type`` None means manual or automatic by run type."""
    from greenapi.store import HealthStore

    rows = log_rows(findings, alerting, dag_id=ctx.dag_id, run_id=ctx.run_id,
                    trigger_type=trigger_type or ctx.trigger_type)  # fmt: skip
    inserted = HealthStore().insert_health_logs(rows)
    log.info("%d row(s) to log, %d new in green_api_health_logs", len(rows), inserted)
    return len(rows)


def report(
    findings: list[Finding] | None, problems: Iterable[str], alerting: AlertOutcome | None, logged: int | None,
    settled: int = 0,
) -> RunSummary:  # fmt: skip
    """Task body: the run's summary; fails the run, naming every problem. ``settled``: healthy
    checks counted and logged by the check tasks themselves."""
    from airflow.sdk.exceptions import AirflowFailException

    summary = summarize(findings, problems, alerting, logged, settled)
    if summary.problems:
        raise AirflowFailException("Run failed: " + "; ".join(summary.problems))
    return summary

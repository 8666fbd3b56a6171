"""Glue shared by the DAGs: the recovery looks, the alert step's end, health-log rows and the run's verdict.

Task bodies take and return plain JSON (XComs: the records of ``greenapi.domain``). XComs hold
instance ids, states and redacted errors, never a token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from greenapi.domain.config import parse_settings
from greenapi.domain.findings import Finding
from greenapi.domain.health import RebootRound
from greenapi.domain.records import AlertOutcome, InstanceCheck
from greenapi.domain.rules import trigger_type_for
from greenapi.domain.runs import log_rows, summarize
from greenapi.hooks.green_api import GreenApiHook

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


log = logging.getLogger(__name__)

FAILED_OUTCOME_KEY = "failed_outcome"  # XCom of a failed alert step: what it did before failing


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


ROUND_KEY = "round"  # XCom of a reboot task: its RebootRound; its return value is the recovery waits


def hand_over(round_: RebootRound, waits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A reboot task's outputs: the round under ``round`` (for the conclusion and the report), the
    waits as the return value (Airflow maps a task only over a return value)."""
    from airflow.sdk import get_current_context

    get_current_context()["ti"].xcom_push(key=ROUND_KEY, value=round_.to_dict())
    return waits


def recovery_looks(round_: RebootRound | None, looks: Sequence[dict[str, Any]] | None) -> dict[str, InstanceCheck]:
    """The state each accepted reboot came back to (by connection id): what the recovery wait saw
    last, else, when the wait ended without the instance settling, what the instance says now."""
    # One slice: a mapped task's results in one request (iterating asks one past the end, an error).
    seen = {c.conn_id: c for c in (InstanceCheck.from_dict(look) for look in (looks[:] if looks else []) if look)}
    for attempt in round_.accepted if round_ else []:
        if attempt.conn_id not in seen:
            checked_at = now_iso()
            result = GreenApiHook(attempt.conn_id).get_state_instance()
            seen[attempt.conn_id] = InstanceCheck(attempt.conn_id, attempt.instance_id, checked_at, result,
                                                  attempt.dashboard_url)  # fmt: skip
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


def run_trigger_type(run_type: Any) -> str:
    """``manual`` for a run triggered by hand, else ``automatic``."""
    return trigger_type_for(str(getattr(run_type, "value", run_type)))


# ---- task bodies shared by the DAGs (they read the run's context and Variables)


def settings_raw() -> Any:
    from airflow.sdk import Variable

    from greenapi.domain.config import SETTINGS_VARIABLE

    return Variable.get(SETTINGS_VARIABLE, default=None)


def failed_outcome(alerting: dict[str, Any] | None, alert_task: str) -> AlertOutcome | None:
    """The alert step's outcome: its result, else what it kept when it failed (a failed task passes
    nothing downstream, so the kept outcome is read from XCom by task id)."""
    from airflow.sdk import get_current_context

    if alerting is None:
        alerting = get_current_context()["ti"].xcom_pull(task_ids=alert_task, key=FAILED_OUTCOME_KEY)
    return AlertOutcome.from_dict(alerting) if alerting else None


def finish_alert_step(outcome: AlertOutcome) -> dict[str, Any]:
    """Log the deliveries; fail when a notice reached nobody, keeping the outcome for the log task."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    log_deliveries(outcome)
    if outcome.undelivered:
        get_current_context()["ti"].xcom_push(key=FAILED_OUTCOME_KEY, value=outcome.to_dict())
        raise AirflowFailException("; ".join(outcome.problems))
    return outcome.to_dict()


def alert_step(findings: list[Finding], origin: str) -> dict[str, Any]:
    """Task body of the reboot DAGs: each finding's alert to every contact."""
    from airflow.sdk import get_current_context

    from greenapi.store import IncidentStore
    from greenapi.tasks.alerting import AlertRun

    dag_run = get_current_context()["dag_run"]
    run = AlertRun(IncidentStore(), parse_settings(settings_raw()), datetime.now(UTC), dag_run.dag_id, dag_run.run_id)
    return finish_alert_step(run.one_shot(findings, origin))


def log_step(findings: list[Finding], alerting: AlertOutcome | None, trigger_type: str | None = None) -> int:
    """Task body: one row per finding; ``trigger_type`` None means manual or automatic by run type."""
    from airflow.sdk import get_current_context

    from greenapi.store import HealthStore

    dag_run = get_current_context()["dag_run"]
    rows = log_rows(findings, alerting, dag_id=dag_run.dag_id, run_id=dag_run.run_id,
                    trigger_type=trigger_type or run_trigger_type(dag_run.run_type))  # fmt: skip
    inserted = HealthStore().insert_health_logs(rows)
    log.info("%d row(s) to log, %d new in green_api_health_logs", len(rows), inserted)
    return len(rows)


def report_step(
    findings: list[Finding] | None, problems: Iterable[str], alerting: AlertOutcome | None, logged: int | None,
    settled: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Task body: the run's summary; fails the run, naming every problem. ``settled``: healthy
    checks counted and logged by the check tasks themselves."""
    from airflow.sdk.exceptions import AirflowFailException

    summary = summarize(findings, problems, alerting, logged, settled)
    if summary["problems"]:
        raise AirflowFailException("Run failed: " + "; ".join(summary["problems"]))
    return summary

"""What a run writes and says at its end: one health-log row per finding, and its summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from greenapi.domain.codec import Record
from greenapi.domain.findings import Finding
from greenapi.domain.records import AlertOutcome


@dataclass(frozen=True)
class LogRow(Record):
    """One row of ``green_api_health_logs``: a check, what was done, who was told (the seed's
    columns first, then this package's)."""

    checked_at: str  # ISO 8601: when the call was made
    status: str
    state_instance: str | None
    error_message: str | None
    reboot_triggered: bool
    reboot_success: bool | None
    response_time_ms: int | None
    support_notified: bool
    support_notification_sent_at: str | None
    trigger_type: str  # automatic, manual or scheduled
    instance_id: str
    connection_id: str
    alert_type: str | None
    dag_id: str
    run_id: str
    incident_id: int | None
    in_maintenance_window: bool
    queue_length: int | None
    socket_status: str | None
    settings_status: str | None
    api_host: str | None = None
    instance_name: str | None = None


def log_rows(
    findings: Iterable[Finding], alerting: AlertOutcome | None, *, dag_id: str, run_id: str, trigger_type: str
) -> list[LogRow]:
    """Exactly one ``green_api_health_logs`` row per finding, saying what really happened."""
    outcome = alerting or AlertOutcome()
    rows = []
    for f in findings:
        sent = sorted(d.at for d in outcome.deliveries if d.instance_id == f.instance_id and d.ok)
        rows.append(LogRow(
            checked_at=f.checked_at, status=f.status.value, state_instance=f.state, error_message=f.error,
            reboot_triggered=f.reboot_triggered, reboot_success=f.reboot_success, response_time_ms=f.response_time_ms,
            support_notified=bool(sent), support_notification_sent_at=sent[0] if sent else None,
            trigger_type=trigger_type, instance_id=f.instance_id, connection_id=f.conn_id,
            alert_type=f.alert.value if f.alert else None, dag_id=dag_id, run_id=run_id,
            incident_id=outcome.incident_ids.get(f.instance_id),
            in_maintenance_window=bool(outcome.in_window.get(f.instance_id, False)),
            queue_length=f.reading.queue if f.reading else None, socket_status=f.reading.socket if f.reading else None,
            settings_status=f.reading.settings if f.reading else None, api_host=f.api_host, instance_name=f.name,
        ))  # fmt: skip
    return rows


@dataclass(frozen=True)
class RunSummary(Record):
    """A run's outcome, the return value of its ``report`` task.

    JSON: ``{"instances": int, "statuses": {status: count}, "logged": int or null (rows written;
    null when the log task did not complete), "problems": [str] (the run failed when any)}``.
    """

    instances: int
    statuses: dict[str, int] = field(default_factory=dict)
    logged: int | None = None
    problems: list[str] = field(default_factory=list)


def summarize(
    findings: list[Finding] | None, problems: Iterable[str], alerting: AlertOutcome | None, logged: int | None,
    settled: int = 0,
) -> RunSummary:  # fmt: skip
    """The run's outcome; problems mean failure. ``settled``: healthy checks counted and logged
    where they were made (not among ``findings``)."""
    found: list[str] = list(problems)
    if findings is None:
        found.append("the first task produced no result: see its log")
    if alerting is None:
        found.append("send_alerts did not complete: see that task's log")
    else:
        found.extend(alerting.problems)
    if logged is None:
        found.append("log_results did not complete: the checks may be missing from green_api_health_logs")
    statuses: dict[str, int] = {"healthy": settled} if settled else {}
    for finding in findings or []:
        statuses[finding.status.value] = statuses.get(finding.status.value, 0) + 1
    return RunSummary(sum(statuses.values()), statuses, None if logged is None else logged + settled, found)

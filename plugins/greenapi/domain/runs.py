"""What a run writes and says at its end: one health-log row per finding, and its summary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from greenapi.domain.findings import Finding
from greenapi.domain.records import AlertOutcome


def log_rows(
    findings: list[Finding], alerting: AlertOutcome | None, *, dag_id: str, run_id: str, trigger_type: str
) -> list[dict[str, Any]]:
    """Exactly one ``green_api_health_logs`` row per finding, saying what really happened."""
    outcome = alerting or AlertOutcome()
    rows = []
    for f in findings:
        sent = sorted(d.at for d in outcome.deliveries if d.instance_id == f.instance_id and d.ok)
        rows.append(
            {
                "checked_at": f.checked_at,
                "status": f.status.value,
                "state_instance": f.state,
                "error_message": f.error,
                "reboot_triggered": f.reboot_triggered,
                "reboot_success": f.reboot_success,
                "response_time_ms": f.response_time_ms,
                "support_notified": bool(sent),
                "support_notification_sent_at": sent[0] if sent else None,
                "trigger_type": trigger_type,
                "instance_id": f.instance_id,
                "connection_id": f.conn_id,
                "alert_type": f.alert.value if f.alert else None,
                "dag_id": dag_id,
                "run_id": run_id,
                "incident_id": outcome.incident_ids.get(f.instance_id),
                "in_maintenance_window": bool(outcome.in_window.get(f.instance_id, False)),
                "queue_length": f.reading.queue if f.reading else None,
                "socket_status": f.reading.socket if f.reading else None,
                "settings_status": f.reading.settings if f.reading else None,
            }
        )
    return rows


def summarize(
    findings: list[Finding] | None, problems: Iterable[str], alerting: AlertOutcome | None, logged: int | None,
    settled: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """The run's outcome: ``{"instances", "statuses", "logged", "problems"}``; problems mean failure.
    ``settled``: healthy checks counted and logged where they were made (not among ``findings``)."""
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
    logged = None if logged is None else logged + settled
    return {"instances": sum(statuses.values()), "statuses": statuses, "logged": logged, "problems": found}

"""How a run's findings feed the incident engine: one observation per finding, the policy."""

from __future__ import annotations

from datetime import datetime

from greenapi.domain.broken import Thresholds
from greenapi.domain.config import Settings
from greenapi.domain.findings import Finding
from greenapi.domain.incidents import Observation, Policy, Severity
from greenapi.domain.rules import AlertKind, Status

CRITICAL_KINDS = {AlertKind.REBOOT_LOOP}  # and the state "blocked" (vendor: account banned)


def observation(finding: Finding, at: datetime, in_window: bool) -> Observation:
    """How the incident engine sees one finding (``at``: the run's logical time)."""
    healthy = finding.status in (Status.HEALTHY, Status.REBOOTED) and finding.alert is None
    counts = finding.status is not Status.RATE_LIMITED and not (in_window and not healthy)
    critical = finding.state == "blocked" or finding.alert in CRITICAL_KINDS
    return Observation(
        at=at,
        checked_at=datetime.fromisoformat(finding.checked_at),
        problem=None if healthy else finding.alert,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        state=finding.state,
        error=finding.error,
        reboot_ok=finding.reboot_success if finding.reboot_triggered else None,
        counts=counts and (healthy or finding.alert is not None),
    )


def limits_of(settings: Settings) -> Thresholds:
    """When the readings of an authorized instance (domain.broken) become a problem."""
    return Thresholds(settings.queue_alert_threshold, settings.queue_alert_checks, settings.offline_alert_checks)


def policy_of(settings: Settings) -> Policy:
    """The incident engine's policy (thresholds, reminders, escalation) from the settings."""
    return Policy(
        failure_threshold=settings.failure_threshold,
        success_threshold=settings.success_threshold,
        reminder_minutes=settings.reminder_minutes,
        escalation_minutes=settings.escalation_minutes,
    )

"""A finding: what one run concluded about one instance. It is what gets alerted and logged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from greenapi.domain.broken import Reading
from greenapi.domain.codec import Record
from greenapi.domain.messages import AlertFacts
from greenapi.domain.rules import AlertKind, Status, Verdict


@dataclass(frozen=True)
class Finding(Record):
    """One instance's outcome in one run: its status, what was done, what to alert and log.

    JSON: every field below; ``status`` and ``alert`` as their values, ``reading`` as a Reading or null.
    """

    conn_id: str
    instance_id: str
    dashboard_url: str
    checked_at: str  # ISO 8601, UTC
    status: Status
    state: str | None
    error: str | None
    response_time_ms: int | None
    reboot_triggered: bool = False
    reboot_success: bool | None = None
    alert: AlertKind | None = None
    fix: str | None = None
    reading: Reading | None = None  # what the check read beyond the state (domain.broken)
    outage: str | None = None  # the key of the run's outage the instance belongs to (domain.outages)
    api_host: str | None = None  # the API host that served the check
    name: str | None = None  # the instance's name (its connection's description)

    @classmethod
    def of(cls, verdict: Verdict, *, reboot_triggered: bool, **context: Any) -> Finding:
        """The finding of ``verdict`` about the instance that ``context`` names."""
        return cls(
            status=verdict.status,
            state=verdict.state,
            error=verdict.error,
            reboot_triggered=reboot_triggered,
            reboot_success=verdict.reboot_success,
            alert=verdict.alert,
            fix=verdict.fix,
            **context,
        )

    def alert_facts(self, origin: str = "automatic") -> AlertFacts:
        """What the alert message about this finding says."""
        assert self.alert is not None, "a finding without an alert has no alert message"
        return AlertFacts(
            kind=self.alert,
            instance_id=self.instance_id,
            checked_at=datetime.fromisoformat(self.checked_at),
            dashboard_url=self.dashboard_url,
            state=self.state,
            error=self.error,
            response_time_ms=self.response_time_ms,
            fix=self.fix,
            origin=origin,
            name=self.name,
        )

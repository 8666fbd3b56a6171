"""The records tasks pass each other through XCom: typed here, plain JSON in XCom.

Each crosses a task boundary as ``to_dict()`` and is read back with ``from_dict()``, both from
:class:`~greenapi.domain.codec.Record`; the JSON shapes below are the documented ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from greenapi.domain.broken import Reading
from greenapi.domain.codec import Record
from greenapi.domain.results import ApiResult
from greenapi.domain.rules import AlertKind


@dataclass(frozen=True)
class InstanceCheck(Record):
    """One ``getStateInstance`` call on one instance, and what else was read of it.

    JSON: ``{"conn_id", "instance_id", "checked_at" (ISO 8601, UTC, when the call was made),
    "dashboard_url" (str or null), "result" (ApiResult.to_dict()), "reading" (Reading.to_dict(),
    or null when nothing more was read), "api_host" (the API host that served it, or null),
    "name" (the connection's description, or null)}``.
    """

    conn_id: str
    instance_id: str
    checked_at: str
    result: ApiResult
    dashboard_url: str | None = None
    reading: Reading | None = None
    api_host: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class CheckBatch(Record):
    """The checks of a set of instances, and why some could not be checked.

    JSON: ``{"checks": [InstanceCheck], "problems": [str], "settled": int, "hosts": {str: int}}``;
    a problem names the connection and what to do about it, never a token. ``settled``: healthy
    checks that need no decision, already counted and logged where they were made (the health
    check's shards), so not among ``checks``: what travels on is O(problems), not O(instances).
    ``hosts``: how many instances each API host served in these checks, the settled included.
    """

    checks: list[InstanceCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    settled: int = 0
    hosts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def merge(cls, batches: Iterable[CheckBatch]) -> CheckBatch:
        """Several batches as one, in their order."""
        checks: list[InstanceCheck] = []
        problems: list[str] = []
        settled = 0
        hosts: dict[str, int] = {}
        for batch in batches:
            checks.extend(batch.checks)
            problems.extend(batch.problems)
            settled += batch.settled
            for host, count in batch.hosts.items():
                hosts[host] = hosts.get(host, 0) + count
        return cls(checks, problems, settled, hosts)


def reads_made(checks: Iterable[InstanceCheck], now: datetime) -> dict[str, tuple[datetime | None, datetime | None]]:
    """When each instance's queue and settings were read by these checks (``now``; None: not read this
    time), by instance id: what is recorded so that each read keeps its own period."""
    made = {c.instance_id: (now if c.reading.queue is not None else None, now if c.reading.settings is not None else None)
            for c in checks if c.reading is not None}  # fmt: skip
    return {i: times for i, times in made.items() if times != (None, None)}


@dataclass(frozen=True)
class Delivery(Record):
    """One attempt to deliver one message to one recipient (a row of ``green_api_alert_deliveries``).

    JSON: every field below; ``at`` in ISO 8601.
    """

    message_kind: str  # opening, reminder, escalation, resolution, alert
    instance_id: str
    recipient: str
    channel: str  # whatsapp | email
    sender: str | None
    attempt: int
    ok: bool
    at: str
    id_message: str | None = None
    error: str | None = None
    incident_id: int | None = None
    contact_id: int | None = None
    conn_id: str | None = None


@dataclass(frozen=True)
class Told(Record):
    """An alert sent while the health database was down (no incident to remember it): which
    instance, which kind, when (the run's logical time). Runs carry these to the next one in XCom,
    so that the next alert of the same kind waits ``reminder_minutes``.

    JSON: ``{"instance_id", "kind" (an AlertKind value), "at" (ISO 8601)}``.
    """

    instance_id: str
    kind: AlertKind
    at: datetime


@dataclass(frozen=True)
class AlertOutcome(Record):
    """What a run's alert step did: every delivery attempt, the problems, and the incidents.

    JSON: ``{"deliveries": [Delivery], "problems": [str], "undelivered": int (notices that reached
    nobody), "incident_ids": {instance_id: open incident id}, "untracked": [Told] (alerts sent
    without the health database, still within their reminder interval), "in_window": {instance_id:
    bool}}``.
    """

    deliveries: list[Delivery] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    undelivered: int = 0
    incident_ids: dict[str, int] = field(default_factory=dict)
    untracked: list[Told] = field(default_factory=list)
    in_window: dict[str, bool] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        """How many messages a recipient accepted (a grouped message, recorded once per incident
        it carries, counts once)."""
        return len({(d.recipient, d.channel, d.id_message or d.at) for d in self.deliveries if d.ok})

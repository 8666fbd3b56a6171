"""The records tasks pass each other through XCom: typed here, plain JSON in XCom.

Airflow 3 only deserialises classes it is told to trust (``[core] allowed_deserialization_classes``,
default ``airflow.*``), so a record crosses a task boundary as ``to_dict()`` and is read back with
``from_dict()``; the JSON shapes below are the documented ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from greenapi.domain.broken import Reading
from greenapi.domain.results import ApiResult


@dataclass(frozen=True)
class InstanceCheck:
    """One ``getStateInstance`` call on one instance, and what else was read of it.

    JSON: ``{"conn_id", "instance_id", "checked_at" (ISO 8601, UTC, when the call was made),
    "dashboard_url" (str or null), "result" (ApiResult.to_dict()), "reading" (Reading.to_dict(),
    or null when nothing more was read)}``.
    """

    conn_id: str
    instance_id: str
    checked_at: str
    result: ApiResult
    dashboard_url: str | None = None
    reading: Reading | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"conn_id": self.conn_id, "instance_id": self.instance_id, "checked_at": self.checked_at,
                "dashboard_url": self.dashboard_url, "result": self.result.to_dict(),
                "reading": self.reading.to_dict() if self.reading else None}  # fmt: skip

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> InstanceCheck:
        return cls(conn_id=raw["conn_id"], instance_id=raw["instance_id"], checked_at=raw["checked_at"],
                   dashboard_url=raw.get("dashboard_url"), result=ApiResult.from_dict(raw["result"]),
                   reading=Reading.from_dict(raw.get("reading")))  # fmt: skip


@dataclass(frozen=True)
class CheckBatch:
    """The checks of a set of instances, and why some could not be checked.

    JSON: ``{"checks": [InstanceCheck], "problems": [str], "settled": int}``; a problem names the
    connection and what to do about it, never a token. ``settled``: healthy checks that need no
    decision, already counted and logged where they were made (the health check's shards), so
    not among ``checks``: what travels on is O(problems), not O(instances).
    """

    checks: list[InstanceCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    settled: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"checks": [c.to_dict() for c in self.checks], "problems": list(self.problems), "settled": self.settled}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CheckBatch:
        return cls([InstanceCheck.from_dict(c) for c in raw.get("checks", [])], list(raw.get("problems", [])),
                   int(raw.get("settled", 0)))  # fmt: skip

    @classmethod
    def merge(cls, batches: Iterable[CheckBatch]) -> CheckBatch:
        """Several batches as one, in their order."""
        checks: list[InstanceCheck] = []
        problems: list[str] = []
        settled = 0
        for batch in batches:
            checks.extend(batch.checks)
            problems.extend(batch.problems)
            settled += batch.settled
        return cls(checks, problems, settled)


@dataclass(frozen=True)
class Delivery:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Delivery:
        return cls(**raw)


@dataclass(frozen=True)
class AlertOutcome:
    """What a run's alert step did: every delivery attempt, the problems, and the incidents.

    JSON: ``{"deliveries": [Delivery], "problems": [str], "undelivered": int (notices that reached
    nobody), "incident_ids": {instance_id: open incident id}, "untracked": {"<instance>:<kind>":
    ISO 8601 (alerts sent without the health database, when)}, "in_window": {instance_id: bool}}``.
    """

    deliveries: list[Delivery] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    undelivered: int = 0
    incident_ids: dict[str, int] = field(default_factory=dict)
    untracked: dict[str, str] = field(default_factory=dict)
    in_window: dict[str, bool] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return sum(1 for d in self.deliveries if d.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"deliveries": [d.to_dict() for d in self.deliveries], "problems": list(self.problems),
                "undelivered": self.undelivered, "incident_ids": dict(self.incident_ids),
                "untracked": dict(self.untracked), "in_window": dict(self.in_window)}  # fmt: skip

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AlertOutcome:
        return cls([Delivery.from_dict(d) for d in raw.get("deliveries", [])], list(raw.get("problems", [])),
                   int(raw.get("undelivered", 0)), dict(raw.get("incident_ids", {})), dict(raw.get("untracked", {})),
                   dict(raw.get("in_window", {})))  # fmt: skip

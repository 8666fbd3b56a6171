"""Incidents: when a failing instance opens one, who is told when, and when it resolves.

Pure functions over plain data. Two clocks: the run's logical time (``at``) drives the timing
(escalations, reminders), so a sequence of runs can be driven through simulated hours; the real
time each check was made (``checked_at``, as in ``green_api_health_logs``) is what messages and
the dashboard show: when the outage started (the first failing check of the streak that opened
the incident) and ended (the first healthy check of the streak that resolved it). A notice is
"due" from the stored state, and the state records a step only once a delivery was accepted (as
Gatus does): a failed send is due again next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from greenapi.domain.rules import AlertKind


class Severity(StrEnum):
    """How bad an incident is: ``critical`` (blocked, reboot loop) marks its messages."""
    WARNING = "warning"
    CRITICAL = "critical"


class NoticeKind(StrEnum):
    """The messages an incident sends: opening, reminder, escalation, resolution."""
    OPENING = "opening"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    RESOLUTION = "resolution"


# One outage is one incident even when its symptoms change (no answer, reboot refused, not back
# after the reboot, reboot skipped for the cooldown): incidents are keyed by problem family.
_FAMILIES = {
    AlertKind.INSTANCE_NOT_AUTHORIZED: "not_authorized",
    AlertKind.REBOOT_NEEDS_RELINK: "not_authorized",
    AlertKind.CONFIGURATION_ERROR: "configuration",
    AlertKind.INVALID_RESPONSE: "invalid_response",
    AlertKind.REBOOT_LOOP: "reboot_loop",
    AlertKind.SETTINGS_DRIFT: "settings_drift",
    AlertKind.OUTGOING_QUEUE_STUCK: "outgoing_queue_stuck",
    AlertKind.SOCKET_OFFLINE: "socket_offline",
    AlertKind.PLATFORM_OUTAGE: "platform_outage",
    AlertKind.INSTANCE_EXPIRING: "instance_expiring",
    AlertKind.INSTANCE_EXPIRED: "instance_expired",
}
# Families of an authorized instance that is still broken: each is followed by its own readings,
# never resolved by a healthy state (domain.broken).
BROKEN_FAMILIES = frozenset({"settings_drift", "outgoing_queue_stuck", "socket_offline", "instance_expiring",
                             "instance_expired"})
# Families whose incident warns once: no reminder, no escalation, then its resolution.
ONCE_FAMILIES = frozenset({"instance_expiring"})


def family(kind: AlertKind) -> str:
    """The problem an alert kind belongs to: not_authorized, unreachable, configuration..."""
    return _FAMILIES.get(kind, "unreachable")


@dataclass(frozen=True)
class Policy:
    """When an incident opens, resolves, reminds and escalates."""
    failure_threshold: int = 1  # consecutive failing checks that open an incident
    success_threshold: int = 1  # consecutive healthy checks that resolve it
    reminder_minutes: float = 60
    escalation_minutes: float = 15


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One check of one instance, as the incident engine sees it."""

    at: datetime  # the run's logical time
    checked_at: datetime  # when the check was really made
    problem: AlertKind | None  # None: healthy
    severity: Severity = Severity.WARNING
    state: str | None = None
    error: str | None = None
    reboot_ok: bool | None = None  # an automatic reboot was made this run, and its result
    counts: bool = True  # False: neither healthy nor failing (rate limited, maintenance window)

    @property
    def episode(self) -> Episode:
        """What this check adds to an incident's course: its problem, or, for a check an automatic
        reboot set right, what the reboot was made for (no answer, or the state it found)."""
        if self.problem is not None:
            problem = self.problem.value
        elif self.state in (None, "authorized"):
            problem = NO_ANSWER if self.state is None else STUCK_QUEUE
        else:
            problem = f"{STATE_PREFIX}{self.state}"
        return Episode(problem, self.checked_at, self.state, self.reboot_ok)


NO_ANSWER, STUCK_QUEUE, STATE_PREFIX = "no_answer", AlertKind.OUTGOING_QUEUE_STUCK.value, "state:"


@dataclass(frozen=True)
class Episode:
    """One problem in an incident's course: what the check found (an alert kind's value,
    ``no_answer`` or ``state:<name>``), when (the check's real time), the state read, and the
    automatic reboot made about it (None: none made; else whether it worked)."""

    problem: str
    at: datetime
    state: str | None = None
    reboot_ok: bool | None = None

    def to_json(self) -> dict[str, object]:
        """As stored in ``green_api_incidents.course``."""
        return {"problem": self.problem, "at": self.at.isoformat(), "state": self.state, "reboot_ok": self.reboot_ok}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Episode:
        """Read back from ``green_api_incidents.course``."""
        return cls(str(data["problem"]), datetime.fromisoformat(str(data["at"])),
                   data.get("state") and str(data["state"]), data.get("reboot_ok"))  # type: ignore[arg-type]  # fmt: skip


def followed(course: tuple[Episode, ...], episode: Episode) -> tuple[Episode, ...]:
    """``course`` with ``episode``: a new problem is added; the same problem again adds nothing,
    unless a reboot was made about it (its outcome is kept on the last)."""
    if course and course[-1].problem == episode.problem:
        if episode.reboot_ok is None or course[-1].reboot_ok is not None:
            return course
        return (*course[:-1], replace(course[-1], reboot_ok=episode.reboot_ok))
    return (*course, episode)


@dataclass(frozen=True)
class Counters:
    """An instance's running streak of failing or healthy checks."""
    failing_kind: str | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    streak_started_at: datetime | None = None  # real time of the current streak's first check


@dataclass(frozen=True)
class Incident:
    """One problem of one instance, from its first failing check to its resolution (a row of ``green_api_incidents``)."""
    instance_id: str
    kind: AlertKind
    opened_at: datetime
    severity: Severity = Severity.WARNING
    id: int | None = None
    connection_id: str | None = None
    resolved_at: datetime | None = None
    last_state: str | None = None
    last_error: str | None = None
    checks: int = 0
    reboots: int = 0
    reboots_ok: int = 0
    levels_notified: int = 0
    opening_notified_at: datetime | None = None
    last_reminder_at: datetime | None = None
    resolution_notified_at: datetime | None = None
    first_failed_at: datetime | None = None  # real time of the first failing check
    recovered_at: datetime | None = None  # real time of the first healthy check
    members: tuple[str, ...] | None = None  # a platform outage's instances (domain.outages); None otherwise
    last_seen_at: datetime | None = None  # a platform outage's: the logical time of the last run that saw it
    course: tuple[Episode, ...] = ()  # the problems it went through, in order (its resolution names each)

    @property
    def open(self) -> bool:
        """Not resolved yet."""
        return self.resolved_at is None

    @property
    def started(self) -> datetime:
        """When the outage started, as checked (incidents stored before the real times: when it opened)."""
        return self.first_failed_at or self.opened_at

    @property
    def ended(self) -> datetime | None:
        """When the instance was first seen healthy again; None while open."""
        return None if self.open else self.recovered_at or self.resolved_at


@dataclass(frozen=True)
class Notice:
    """A message due about an incident, and the priority levels it goes to."""
    kind: NoticeKind
    incident: Incident
    levels: tuple[int, ...]  # notification_priority values to reach
    level_number: int = 1  # for escalations: which level (2 = second)


@dataclass
class Step:
    """One check folded into an instance's counters: the new counters and the incidents it changed or opened."""
    counters: Counters
    incidents: list[Incident] = field(default_factory=list)  # changed or new


def observe(counters: Counters, open_incidents: list[Incident], obs: Observation, policy: Policy,
            instance_id: str, connection_id: str | None = None) -> Step:
    """Fold one check into the counters and the instance's open incidents."""
    if not obs.counts:
        return Step(counters)
    reboots = 0 if obs.reboot_ok is None else 1
    reboots_ok = 1 if obs.reboot_ok else 0
    if obs.problem is None:  # healthy, possibly thanks to this run's reboot
        successes = counters.consecutive_successes + 1
        since = _streak_start(counters, counters.consecutive_successes > 0, obs)
        step = Step(Counters(None, 0, successes, since))
        resolves = successes >= policy.success_threshold
        if resolves or reboots:
            step.incidents = [
                replace(
                    i,
                    course=followed(i.course, obs.episode) if reboots and _follows(i) else i.course,
                    reboots=i.reboots + reboots,
                    reboots_ok=i.reboots_ok + reboots_ok,
                    resolved_at=obs.at if resolves else None,
                    recovered_at=since if resolves else None,
                )
                for i in open_incidents
            ]
        return step
    kind = family(obs.problem)
    same = counters.failing_kind == kind
    failures = counters.consecutive_failures + 1 if same else 1
    since = _streak_start(counters, same, obs)
    step = Step(Counters(kind, failures, 0, since))
    current = next((i for i in open_incidents if family(i.kind) == kind), None)
    episode = obs.episode
    # The instance's other open incidents (another problem, still unresolved) follow this one too.
    others = [replace(i, course=course) for i in open_incidents if i is not current and _follows(i)
              and (course := followed(i.course, episode)) != i.course]  # fmt: skip
    step.incidents = others
    if current is not None:
        step.incidents = [
            replace(
                current,
                course=followed(current.course, episode),
                last_state=obs.state,
                last_error=obs.error,
                checks=current.checks + 1,
                reboots=current.reboots + reboots,
                reboots_ok=current.reboots_ok + reboots_ok,
                severity=Severity.CRITICAL if obs.severity is Severity.CRITICAL else current.severity,
            ),
            *others,
        ]
    elif failures >= policy.failure_threshold:
        step.incidents = [
            Incident(
                instance_id=instance_id,
                connection_id=connection_id,
                kind=obs.problem,
                opened_at=obs.at,
                first_failed_at=since,
                severity=obs.severity,
                last_state=obs.state,
                last_error=obs.error,
                checks=failures,
                reboots=reboots,
                reboots_ok=reboots_ok,
                course=(episode,),
            ),
            *others,
        ]
    return step


def _follows(incident: Incident) -> bool:
    """Whether an incident's course takes the instance's checks (its state, its answers): not the
    readings' incidents of an authorized instance, which their readings follow."""
    return incident.open and family(incident.kind) not in BROKEN_FAMILIES


def _streak_start(counters: Counters, continued: bool, obs: Observation) -> datetime:
    """The real time of the first check of the streak ``obs`` belongs to."""
    return (counters.streak_started_at if continued else None) or obs.checked_at


def due(incident: Incident, now: datetime, levels: list[int], policy: Policy) -> list[Notice]:
    """What must be sent about ``incident`` now. ``levels``: the distinct priorities, lowest first."""
    if not levels:
        return []
    if not incident.open:
        if incident.opening_notified_at is not None and incident.resolution_notified_at is None:
            return [Notice(NoticeKind.RESOLUTION, incident, tuple(levels[: max(1, incident.levels_notified)]))]
        return []
    if incident.opening_notified_at is None:
        return [Notice(NoticeKind.OPENING, incident, (levels[0],))]
    if family(incident.kind) in ONCE_FAMILIES:
        return []
    notices = []
    reached = incident.levels_notified
    if reached < len(levels) and now - incident.opened_at >= timedelta(minutes=policy.escalation_minutes * reached):
        notices.append(Notice(NoticeKind.ESCALATION, incident, (levels[reached],), level_number=reached + 1))
    last = incident.last_reminder_at or incident.opening_notified_at
    if now - last >= timedelta(minutes=policy.reminder_minutes):
        notices.append(Notice(NoticeKind.REMINDER, incident, tuple(levels[:reached])))
    return notices


def delivered(notice: Notice, now: datetime) -> Incident:
    """The incident once ``notice`` reached at least one contact."""
    incident = notice.incident
    if notice.kind is NoticeKind.OPENING:
        return replace(incident, opening_notified_at=now, levels_notified=max(1, incident.levels_notified))
    if notice.kind is NoticeKind.ESCALATION:
        return replace(incident, levels_notified=max(incident.levels_notified, notice.level_number))
    if notice.kind is NoticeKind.REMINDER:
        return replace(incident, last_reminder_at=now)
    return replace(incident, resolution_notified_at=now)


def format_duration(delta: timedelta, language: str = "fr") -> str:
    """'1 h 05 min', '15 min', '2 j 3 h' (French) or '1 h 05 min', '2 d 3 h' (English)."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    day = "j" if language == "fr" else "d"
    if days:
        return f"{days} {day} {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"

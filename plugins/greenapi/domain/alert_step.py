"""What the alert step decides: each check counted once, incidents followed, who is sent what, and
the policy while the health database is down.

Pure functions over the run's findings and the state loaded from the health database; they return
what to save and what to send. ``greenapi.tasks.alerting`` loads that state, sends the messages
through the senders named here, and saves what these functions return.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from greenapi.domain.alerts import limits_of, observation, policy_of
from greenapi.domain.broken import Sign, Watch, fold, sign_text
from greenapi.domain.config import ALERTS_CONN_ID, Settings
from greenapi.domain.findings import Finding
from greenapi.domain.health import InstanceHistory
from greenapi.domain.incidents import (
    BROKEN_FAMILIES,
    Counters,
    Incident,
    Notice,
    NoticeKind,
    Observation,
    Policy,
    Severity,
    family,
    observe,
)
from greenapi.domain.messages import UNTRACKED_NOTE, AlertFacts, render_alert, render_follow_up, render_group
from greenapi.domain.outages import Outage, parse_outage_key, report_outage, resolution_lines
from greenapi.domain.records import Told
from greenapi.domain.rules import AlertKind, Status

# The notices an incident has once: a contact who has one is never sent it again, from any run.
ONCE_PER_INCIDENT = frozenset({NoticeKind.OPENING.value, NoticeKind.ESCALATION.value, NoticeKind.RESOLUTION.value})


@dataclass(frozen=True)
class MessageKey:
    """What makes two messages the same: a contact is never sent the same message twice.

    Its kind, instance, incident and contact, and its run, except for a notice an incident has once
    (a contact gets each reminder, but one opening, whatever the run).
    """

    kind: str
    instance_id: str
    incident_id: int | None
    contact_id: int | None
    run_id: str | None

    @classmethod
    def of(cls, kind: str, instance_id: str, incident_id: int | None, contact_id: int | None,
           run_id: str) -> MessageKey:  # fmt: skip
        """The key of message ``kind`` about ``instance_id`` to ``contact_id``, sent in run ``run_id``."""
        once = incident_id is not None and kind in ONCE_PER_INCIDENT
        return cls(kind, instance_id, incident_id, contact_id, None if once else run_id)


def through_instance(finding: Finding, incident_kind: AlertKind | None = None) -> bool:
    """Whether a message about an instance may also be sent through that instance: only when this
    run found it healthy (no alert, not rate limited), and never for an incident about what breaks
    it while it says authorized (its queue, its socket, its settings)."""
    healthy = finding.alert is None and finding.status is not Status.RATE_LIMITED
    return healthy and (incident_kind is None or family(incident_kind) not in BROKEN_FAMILIES)


def sender_conn_ids(instance_conn_id: str | None, through_it: bool, settings: Settings) -> list[str]:
    """The senders to try, in order: ``green_api_alerts``, the ``alert_senders``, then the instance
    itself when ``through_it`` (see :func:`through_instance`). Never only the failing instance."""
    conn_ids = [ALERTS_CONN_ID, *settings.alert_senders]
    if through_it and instance_conn_id:
        conn_ids.append(instance_conn_id)
    return list(dict.fromkeys(conn_ids))


def counted_already(history: InstanceHistory | None, now: datetime) -> bool:
    """Whether this run's check of the instance was counted (the step or the shard ran already)."""
    return history is not None and history.last_checked_at is not None and history.last_checked_at >= now


@dataclass(frozen=True)
class IncidentPlan:
    """What the run's checks change: each instance's counters (its row of
    ``green_api_instance_status``) and the incidents opened, followed or resolved."""

    counters: list[InstanceHistory] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)


def plan_incidents(
    findings: Iterable[Finding], history: dict[str, InstanceHistory], live: Iterable[Incident], settings: Settings,
    now: datetime, in_window: dict[str, bool], inhibit: Collection[str] = frozenset(),
) -> IncidentPlan:  # fmt: skip
    """Fold each finding into its instance's counters and open incidents (``live``, by instance).

    A check already counted (:func:`counted_already`) is skipped: the step may run again. A healthy
    state resolves the state's incidents only; what was read beyond the state (``domain.broken``)
    opens and resolves incidents of its own. An instance in ``inhibit`` (a member of a platform
    outage, which is the incident) opens none: its counters go on and its open incidents are
    followed, so that once the outage is over a failure still there opens its incident at once,
    with the time it began.
    """
    open_by_instance: dict[str, list[Incident]] = {}
    for incident in live:
        if incident.open:
            open_by_instance.setdefault(incident.instance_id, []).append(incident)
    policy, limits = policy_of(settings), limits_of(settings)
    plan = IncidentPlan()
    for finding in findings:
        old = history.get(finding.instance_id)
        if counted_already(old, now):
            continue
        current = Counters(old.failing_kind, old.consecutive_failures, old.consecutive_successes,
                           old.streak_started_at) if old else Counters()  # fmt: skip
        in_maintenance = in_window.get(finding.instance_id, False)
        mine = open_by_instance.get(finding.instance_id, [])
        step = observe(current, [i for i in mine if family(i.kind) not in BROKEN_FAMILIES],
                       observation(finding, now, in_maintenance), policy, finding.instance_id,
                       finding.conn_id)  # fmt: skip
        watch, signs = fold(old.watch if old else Watch(), finding.reading, datetime.fromisoformat(finding.checked_at),
                            limits)  # fmt: skip
        for sign in signs:
            plan.incidents.extend(_follow(sign, finding, mine, in_maintenance, now, settings))
        state_since = old.state_since if old and old.last_state == finding.state else now
        plan.counters.append(InstanceHistory(
            finding.instance_id, step.counters.failing_kind, step.counters.consecutive_failures,
            step.counters.consecutive_successes, finding.state, state_since,
            streak_started_at=step.counters.streak_started_at, last_checked_at=now, watch=watch,
        ))  # fmt: skip
        opened_elsewhere = finding.instance_id in inhibit
        plan.incidents.extend(i for i in step.incidents if i.id is not None or not opened_elsewhere)
    return plan


def _follow(sign: Sign, finding: Finding, open_incidents: list[Incident], in_window: bool, now: datetime,
            settings: Settings) -> list[Incident]:  # fmt: skip
    """One reading's sign on its own incident: opened (its streak is long enough), kept, or
    resolved. Never a reboot here; in the maintenance window a sign that holds opens nothing."""
    if sign.holds and in_window:
        return []
    checked_at = datetime.fromisoformat(finding.checked_at)
    theirs = [i for i in open_incidents if family(i.kind) == family(sign.kind)]
    said = sign_text(sign, checked_at, settings.language, settings.message_timezone)
    obs = Observation(at=now, checked_at=checked_at, problem=sign.kind if sign.holds else None,
                      state=finding.state, error=said)
    # The streak is counted by fold(): the incident follows it, opening and resolving at once.
    step = observe(Counters(), theirs, obs, Policy(1, 1, settings.reminder_minutes, settings.escalation_minutes),
                   finding.instance_id, finding.conn_id)  # fmt: skip
    return [replace(i, first_failed_at=sign.since, checks=max(i.checks, sign.checks)) if i.id is None else i
            for i in step.incidents]  # fmt: skip


def settles(finding: Finding, history: InstanceHistory | None, has_incident: bool, now: datetime,
            settings: Settings) -> bool:  # fmt: skip
    """Whether a check task may count and log this check itself, leaving the alert step nothing to
    decide: a healthy check (nothing wrong read beyond the state) of an instance seen before that
    is not failing, has no streak of a reading running and no incident to follow up, and whose
    check of this run is not counted yet. Its counters are then those :func:`plan_incidents` gives."""
    reading = finding.reading
    return (
        finding.status is Status.HEALTHY and finding.alert is None
        and not (reading is not None and reading.follow_up(limits_of(settings)))
        and history is not None and history.failing_kind is None and history.consecutive_failures == 0
        and history.watch.queue_streak == 0 and history.watch.socket_streak == 0
        and not has_incident and not counted_already(history, now)
    )  # fmt: skip


def notice_text(notice: Notice, finding: Finding, settings: Settings) -> str:
    """The text of a notice about ``notice.incident``, reporting on this run's check of its instance
    (its real time is the header's). An incident of what was read beyond the state says what the
    incident last recorded."""
    incident, language, zone = notice.incident, settings.language, settings.message_timezone
    if finding.alert is not None and family(incident.kind) not in BROKEN_FAMILIES:
        facts = replace(finding.alert_facts(), kind=incident.kind)
    else:  # no alert this run (healthy: a resolution; or rate limited)
        facts = AlertFacts(kind=incident.kind, instance_id=incident.instance_id,
                           checked_at=datetime.fromisoformat(finding.checked_at), dashboard_url=finding.dashboard_url,
                           state=incident.last_state, error=incident.last_error, name=finding.name)  # fmt: skip
    opening = render_alert(facts, zone, language, critical=incident.severity is Severity.CRITICAL)
    if notice.kind is NoticeKind.OPENING:
        return opening
    return render_follow_up(notice.kind.value, incident, checked_at=facts.checked_at,
                            dashboard_url=facts.dashboard_url, timezone=zone, language=language,
                            level=notice.level_number, opening_text=opening, name=finding.name)  # fmt: skip


def unreached(notice: Notice) -> str:
    """The problem of a notice that no contact accepted (it is due again at the next run)."""
    incident = notice.incident
    return (f"{notice.kind.value} of incident {incident.id} ({incident.kind.value}, instance {incident.instance_id}) "
            "reached no contact")  # fmt: skip


def alert_text(finding: Finding, settings: Settings, origin: str = "automatic") -> str:
    """The alert about one finding, as the reboot DAGs send it (no incident)."""
    return render_alert(finding.alert_facts(origin), settings.message_timezone, settings.language)


def alert_unreached(finding: Finding, whom: str = "contact") -> str:
    """The problem of an alert that nobody accepted."""
    assert finding.alert is not None
    return f"alert {finding.alert.value} for instance {finding.instance_id} reached no {whom}"


# ---- without the health database


@dataclass(frozen=True)
class UntrackedAlert:
    """An alert to send to ``fallback_chat_ids`` (the health database is down)."""

    finding: Finding
    text: str


@dataclass(frozen=True)
class UntrackedPlan:
    """The alert step without the health database: what to send to the fallback chats, what stays
    remembered (:class:`~greenapi.domain.records.Told`), and what reached nobody already."""

    send: list[UntrackedAlert] = field(default_factory=list)
    kept: list[Told] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    undelivered: int = 0


def latest_told(*carries: Sequence[Told]) -> list[Told]:
    """The alerts earlier runs carried (their outcomes, or those they kept when they failed), the
    latest time of each instance and kind."""
    latest: dict[tuple[str, AlertKind], Told] = {}
    for told in (t for carry in carries for t in carry):
        known = latest.get((told.instance_id, told.kind))
        if known is None or told.at > known.at:
            latest[(told.instance_id, told.kind)] = told
    return list(latest.values())


def plan_untracked(findings: Iterable[Finding], settings: Settings, now: datetime, told: Sequence[Told],
                   reached: set[str]) -> UntrackedPlan:  # fmt: skip
    """Each failing instance's alert, at most once per ``reminder_minutes`` for one instance and
    kind (``told``: when each was last sent); an instance in ``reached`` (told by this run before
    the database failed) is not told again."""
    last = {(t.instance_id, t.kind): t.at for t in told}
    plan = UntrackedPlan()
    for finding in findings:
        if finding.alert is None or finding.status is Status.RATE_LIMITED:
            continue
        before = last.get((finding.instance_id, finding.alert))
        if finding.instance_id in reached or (before and now - before < timedelta(minutes=settings.reminder_minutes)):
            plan.kept.append(Told(finding.instance_id, finding.alert, before or now))
        elif not settings.fallback_chat_ids:
            plan.problems.append(f"alert {finding.alert.value} for instance {finding.instance_id} reached nobody: "
                                 "the contacts are in the database and green_api_settings.fallback_chat_ids is empty")  # fmt: skip
        else:
            plan.send.append(UntrackedAlert(finding, alert_text(finding, settings) + UNTRACKED_NOTE[settings.language]))
    return replace(plan, undelivered=len(plan.problems))


def untracked_reason(reason: str) -> str:
    """The run's problem when the alert step works without the health database."""
    return f"{reason}: alerts went to fallback_chat_ids without incident tracking"


# ---- platform outages (domain.outages): one incident for many instances


def outage_notice_text(notice: Notice, outage: Outage | None, failing_now: set[str], checked_at: datetime,
                       dashboard_url: str, settings: Settings) -> str:  # fmt: skip
    """The text of a notice about a platform outage's incident: its host, symptom, count and first
    instance ids (``outage``: as this run saw it, None once over); its resolution says how many
    recovered and which still fail (``failing_now``: the instances failing in this run)."""
    incident, language, zone = notice.incident, settings.language, settings.message_timezone
    host, found = parse_outage_key(incident.instance_id)
    report = report_outage(incident, failing_now, outage.checked if outage else None, language)
    facts = AlertFacts(kind=AlertKind.PLATFORM_OUTAGE, instance_id=host, checked_at=checked_at,
                       dashboard_url=dashboard_url, state=found, error=report.affected)  # fmt: skip
    opening = render_alert(facts, zone, language, critical=True)
    if notice.kind is NoticeKind.OPENING:
        return opening
    return render_follow_up(notice.kind.value, incident, checked_at=checked_at, dashboard_url=dashboard_url,
                            timezone=zone, language=language, level=notice.level_number, opening_text=opening,
                            about=host, extra=resolution_lines(report, language))  # fmt: skip


def first_check(findings: Iterable[Finding], default: datetime) -> datetime:
    """When the run's first check was made (``default`` when it has no finding): the real time its
    outage and grouped messages report."""
    return min((datetime.fromisoformat(f.checked_at) for f in findings), default=default)


def failing(findings: Iterable[Finding]) -> set[str]:
    """The instances this run found failing (an alert, not merely rate limited)."""
    return {f.instance_id for f in findings if f.alert is not None and f.status is not Status.RATE_LIMITED}


def outage_start(outage: Outage, findings: Iterable[Finding]) -> datetime | None:
    """When the outage's first failing check of this run was made."""
    members = set(outage.instance_ids)
    times = [datetime.fromisoformat(f.checked_at) for f in findings if f.instance_id in members]
    return min(times) if times else None


def group_text(kind: NoticeKind, incidents: list[Incident], now: datetime, findings: Sequence[Finding],
               settings: Settings) -> str:  # fmt: skip
    """The one message that carries many notices of ``kind`` to a contact: each incident's
    instance, problem and since when (:func:`~greenapi.domain.messages.render_group`), at the time
    of the run's checks."""
    checked_at = first_check(findings, now)
    link = next((f.dashboard_url for f in findings if f.dashboard_url), "")
    names = {f.instance_id: f.name for f in findings if f.name}
    return render_group(kind.value, incidents, checked_at=checked_at, dashboard_url=link,
                        timezone=settings.message_timezone, language=settings.language, names=names)  # fmt: skip

"""Glue of the alert step: findings -> incidents -> notices -> deliveries (recorded).

Who is told what is decided by :mod:`greenapi.domain.incidents`; here the state is loaded and
saved, texts rendered, and each notice delivered contact by contact. A notice is marked sent only
when at least one contact accepted it, so the next run tries again.

Each contact's delivery is stored as soon as it is made, and each notice marked sent as soon as it
is. A contact that has a message already is not sent it again (see :meth:`AlertRun.deliver`): an
alert step stopped (killed, cleared, retried) between two contacts and run again, or the next run,
completes the notice without repeating it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from greenapi.domain.alerts import limits_of, observation, policy_of
from greenapi.domain.broken import Sign, Watch, fold, sign_text
from greenapi.domain.config import ALERTS_CONN_ID, Settings, too_many_contacts
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
    delivered,
    due,
    family,
    observe,
)
from greenapi.domain.messages import UNTRACKED_NOTE, AlertFacts, render_alert, render_follow_up
from greenapi.domain.records import AlertOutcome, Delivery
from greenapi.domain.rules import Status
from greenapi.hooks.green_api import UnusableConnection, open_hook
from greenapi.notifications.delivery import Attempt, send_email, send_whatsapp, smtp_configured

if TYPE_CHECKING:
    from greenapi.hooks.green_api import GreenApiHook
    from greenapi.store import IncidentStore

log = logging.getLogger(__name__)


def senders_for(instance_conn_id: str | None, healthy: bool, settings: Settings) -> list[GreenApiHook]:
    """Health-aware sender order: green_api_alerts, alert_senders, the instance itself if healthy."""
    conn_ids = [ALERTS_CONN_ID, *settings.alert_senders]
    if healthy and instance_conn_id:
        conn_ids.append(instance_conn_id)
    hooks = []
    for conn_id in dict.fromkeys(conn_ids):
        try:
            hooks.append(open_hook(conn_id))
        except UnusableConnection:
            continue
    return hooks


ONCE_PER_INCIDENT = frozenset({NoticeKind.OPENING.value, NoticeKind.ESCALATION.value, NoticeKind.RESOLUTION.value})


def _sent_key(kind: str, instance_id: str, incident_id: int | None, contact_id: int | None,
              run_id: str) -> tuple[object, ...]:  # fmt: skip
    """What makes a message one: its kind, instance, incident and contact, and its run unless it is
    a notice that an incident has once (a contact gets each reminder, but one opening)."""
    once = incident_id is not None and kind in ONCE_PER_INCIDENT
    return (kind, instance_id, incident_id, contact_id, None if once else run_id)


def _delivery(attempt: Attempt, kind: str, instance_id: str, *, incident_id: int | None = None,
              contact_id: int | None = None, conn_id: str | None = None) -> Delivery:
    return Delivery(message_kind=kind, instance_id=instance_id, recipient=attempt.recipient, channel=attempt.channel,
                    sender=attempt.sender, attempt=attempt.attempt, ok=attempt.ok, at=attempt.at,
                    id_message=attempt.id_message, error=attempt.error, incident_id=incident_id,
                    contact_id=contact_id, conn_id=conn_id)  # fmt: skip


class AlertRun:
    """One run's alert step: state in, notices out, deliveries recorded."""

    def __init__(self, store: IncidentStore, settings: Settings, now: datetime, dag_id: str, run_id: str) -> None:
        self.store, self.settings, self.now = store, settings, now
        self.dag_id, self.run_id = dag_id, run_id
        self.contacts = store.contacts_with_email()
        self.deliveries: list[Delivery] = []
        self.problems: list[str] = []
        refused = too_many_contacts(len(self.contacts), settings)
        if refused:
            self.contacts = []
            self.problems.append(refused)
        elif not self.contacts:
            self.problems.append("no active support contact in system_support_contacts: nobody can be alerted")
        self.levels = sorted({c.notification_priority for c in self.contacts})
        self.undelivered = 0
        self.email_ok = smtp_configured(settings.smtp_conn_id)
        self.earlier: dict[tuple[object, ...], tuple[Delivery, str]] = {}  # contacts' messages, by run (load_earlier)

    def _texts(self, notice: Notice, finding: Finding) -> str:
        """The notice's text, about this run's check of the instance (its real time is the header's).
        An incident of what was read beyond the state says what its incident last recorded."""
        incident, lang, tz = notice.incident, self.settings.language, self.settings.message_timezone
        if finding.alert is not None and family(incident.kind) not in BROKEN_FAMILIES:
            facts = replace(finding.alert_facts(), kind=incident.kind)
        else:  # no alert this run (healthy: a resolution; or rate limited)
            facts = AlertFacts(
                kind=incident.kind,
                instance_id=incident.instance_id,
                checked_at=datetime.fromisoformat(finding.checked_at),
                dashboard_url=finding.dashboard_url,
                state=incident.last_state,
                error=incident.last_error,
            )
        opening = render_alert(facts, tz, lang, critical=incident.severity is Severity.CRITICAL)
        if notice.kind is NoticeKind.OPENING:
            return opening
        return render_follow_up(
            notice.kind.value, incident, checked_at=facts.checked_at, dashboard_url=facts.dashboard_url,
            timezone=tz, language=lang, level=notice.level_number, opening_text=opening,
        )

    def load_earlier(self, incident_ids: list[int]) -> None:
        """The messages contacts have already: these incidents' once-only notices (opening,
        escalation, resolution), from any run; any message of this run, from an earlier try."""
        for d, run_id in self.store.delivered(incident_ids, self.dag_id, self.run_id):
            self.earlier[_sent_key(d.message_kind, d.instance_id, d.incident_id, d.contact_id, run_id)] = (d, run_id)

    def deliver(self, text: str, levels: tuple[int, ...] | None, senders: list[GreenApiHook], *, kind: str,
                incident_id: int | None, instance_id: str, conn_id: str | None) -> int:
        """Send ``text`` to every contact of ``levels`` (None: all); returns how many accepted.

        Each contact's attempts are stored before the next contact is tried. A contact that has
        the message already (from an earlier try of this run, or an incident's once-only notice
        from any run) counts as reached and is not sent it again.
        """
        accepted = 0
        for contact in self.contacts:
            if levels is not None and contact.notification_priority not in levels:
                continue
            before = self.earlier.get(_sent_key(kind, instance_id, incident_id, contact.id, self.run_id))
            if before is not None:
                sent, run_id = before
                log.info("%s about instance %s already sent to %s at %s: not sent again",
                         kind, instance_id, sent.recipient, sent.at)  # fmt: skip
                if run_id == self.run_id:  # this run's outcome, as its earlier try would have said it
                    self.deliveries.append(sent)
                accepted += 1
                continue
            attempts = send_whatsapp(
                senders, contact.phone_number, text, retries=self.settings.send_retries,
                backoff_seconds=self.settings.send_backoff_seconds,
            ) if senders else []  # fmt: skip
            if not (attempts and attempts[-1].ok) and contact.email and self.email_ok:
                attempts.append(send_email(self.settings.smtp_conn_id, contact.email, f"Green API {instance_id}", text))
            made = [_delivery(a, kind, instance_id, incident_id=incident_id, contact_id=contact.id, conn_id=conn_id)
                    for a in attempts]  # fmt: skip
            self.deliveries.extend(made)
            self.store.record_deliveries(made, self.dag_id, self.run_id)
            accepted += bool(attempts and attempts[-1].ok)
        return accepted

    def outcome(self, incident_ids: dict[str, int] | None = None) -> AlertOutcome:
        """What the step did (its deliveries are stored already)."""
        return AlertOutcome(self.deliveries, self.problems, self.undelivered, incident_ids or {})

    def one_shot(self, findings: list[Finding], origin: str) -> AlertOutcome:
        """The reboot DAGs' alerts: each finding's alert to every active contact, no incident."""
        self.load_earlier([])
        for finding in findings:
            if finding.alert is None:
                continue
            text = render_alert(finding.alert_facts(origin), self.settings.message_timezone, self.settings.language)
            senders = senders_for(finding.conn_id, finding.status is Status.HEALTHY, self.settings)
            if not self.deliver(text, None, senders, kind="alert", incident_id=None, instance_id=finding.instance_id,
                                conn_id=finding.conn_id):  # fmt: skip
                self.undelivered += 1
                self.problems.append(f"alert {finding.alert.value} for instance {finding.instance_id} reached no contact")
        return self.outcome()

    def _follow(self, sign: Sign, finding: Finding, open_incidents: list[Incident], in_window: bool) -> list[Incident]:
        """One reading's sign on its own incident: opened (its streak is long enough), kept, or
        resolved. Never a reboot here; in the maintenance window a sign that holds opens nothing."""
        if sign.holds and in_window:
            return []
        checked_at = datetime.fromisoformat(finding.checked_at)
        theirs = [i for i in open_incidents if family(i.kind) == family(sign.kind)]
        obs = Observation(at=self.now, checked_at=checked_at, problem=sign.kind if sign.holds else None,
                          state=finding.state, error=sign_text(sign, checked_at, self.settings.language))  # fmt: skip
        # The streak is counted by fold(): the incident follows it, opening and resolving at once.
        step = observe(Counters(), theirs, obs, Policy(1, 1, self.settings.reminder_minutes,
                                                       self.settings.escalation_minutes),
                       finding.instance_id, finding.conn_id)  # fmt: skip
        return [replace(i, first_failed_at=sign.since, checks=max(i.checks, sign.checks)) if i.id is None else i
                for i in step.incidents]  # fmt: skip

    def run(self, findings: list[Finding], in_window: dict[str, bool]) -> AlertOutcome:
        """Incidents for the health check's findings: counted, saved, and their notices sent."""
        by_instance = {f.instance_id: f for f in findings}
        ids = list(by_instance)
        live: dict[str, list[Incident]] = {}
        for incident in self.store.live_incidents(ids):
            live.setdefault(incident.instance_id, []).append(incident)
        history = self.store.counters(ids)
        policy = policy_of(self.settings)
        counter_rows: list[InstanceHistory] = []
        changed: list[Incident] = []
        for instance_id, finding in by_instance.items():
            old = history.get(instance_id)
            if old and old.last_checked_at and old.last_checked_at >= self.now:
                continue  # this run's check is counted already (the step is run again): count it once
            current = Counters(old.failing_kind, old.consecutive_failures, old.consecutive_successes,
                               old.streak_started_at) if old else Counters()  # fmt: skip
            in_maintenance = in_window.get(instance_id, False)
            obs = observation(finding, self.now, in_maintenance)
            mine = [i for i in live.get(instance_id, []) if i.open]
            # A healthy state resolves the state's incidents only: the others follow their readings.
            step = observe(current, [i for i in mine if family(i.kind) not in BROKEN_FAMILIES], obs, policy,
                           instance_id, finding.conn_id)  # fmt: skip
            watch, signs = fold(old.watch if old else Watch(), finding.reading,
                                datetime.fromisoformat(finding.checked_at), limits_of(self.settings))  # fmt: skip
            for sign in signs:
                changed.extend(self._follow(sign, finding, mine, in_maintenance))
            state_since = old.state_since if old and old.last_state == finding.state else self.now
            counter_rows.append(InstanceHistory(
                instance_id, step.counters.failing_kind, step.counters.consecutive_failures,
                step.counters.consecutive_successes, finding.state, state_since,
                streak_started_at=step.counters.streak_started_at, last_checked_at=self.now, watch=watch,
            ))  # fmt: skip
            changed.extend(step.incidents)
        by_id = {i.id: i for group in live.values() for i in group}
        by_id.update({i.id: i for i in self.store.save(counter_rows, changed)})  # changed and new ones
        incidents = list(by_id.values())
        self.load_earlier([i.id for i in incidents if i.id is not None])
        if not self.contacts:  # why is already in self.problems
            self.undelivered += sum(1 for i in incidents if i.open and i.opening_notified_at is None)
        updated = []
        for incident in incidents:  # each of an instance checked this run (live_incidents(ids))
            finding = by_instance[incident.instance_id]
            # Not through the instance itself when it is what is broken (its queue, its socket...).
            healthy = (finding.alert is None and finding.status is not Status.RATE_LIMITED
                       and family(incident.kind) not in BROKEN_FAMILIES)  # fmt: skip
            senders = senders_for(incident.connection_id, healthy, self.settings)
            for notice in due(incident, self.now, self.levels, policy):
                notice = replace(notice, incident=incident)
                text = self._texts(notice, finding)
                accepted = self.deliver(text, notice.levels, senders, kind=notice.kind.value,
                                        incident_id=incident.id, instance_id=incident.instance_id,
                                        conn_id=incident.connection_id)  # fmt: skip
                if accepted:
                    incident = delivered(notice, self.now)
                    self.store.save([], [incident])  # marked sent now: a later stop cannot send it again
                else:
                    self.undelivered += 1
                    self.problems.append(
                        f"{notice.kind.value} of incident {incident.id} ({incident.kind.value}, instance "
                        f"{incident.instance_id}) reached no contact"
                    )
            updated.append(incident)
        self.store.save([], updated)
        return self.outcome({i.instance_id: i.id for i in updated if i.open and i.id is not None})


def untracked_alerts(
    findings: list[Finding], settings: Settings, now: datetime, told: dict[str, str], reason: str,
    sent_already: list[Delivery],
) -> AlertOutcome:  # fmt: skip
    """The alert step without the health database (no contacts, no incidents).

    Each failing instance's alert goes to ``fallback_chat_ids``, at most once per
    ``reminder_minutes`` for one instance and kind: ``told`` (carried from run to run in XCom)
    says when each was last sent. ``sent_already``: deliveries this run made before the database
    failed; an instance told then is not told again.
    """
    deliveries = list(sent_already)
    reached = {d.instance_id for d in deliveries if d.ok}
    problems = [f"{reason}: alerts went to fallback_chat_ids without incident tracking"]
    memo: dict[str, str] = {}
    undelivered = 0
    for finding in findings:
        if finding.alert is None or finding.status is Status.RATE_LIMITED:
            continue
        key = f"{finding.instance_id}:{finding.alert.value}"
        last = told.get(key)
        if finding.instance_id in reached or (
            last and now - datetime.fromisoformat(last) < timedelta(minutes=settings.reminder_minutes)
        ):
            memo[key] = last or now.isoformat()
            continue
        if not settings.fallback_chat_ids:
            undelivered += 1
            problems.append(f"alert {finding.alert.value} for instance {finding.instance_id} reached nobody: "
                            "the contacts are in the database and green_api_settings.fallback_chat_ids is empty")  # fmt: skip
            continue
        text = render_alert(finding.alert_facts(), settings.message_timezone, settings.language)
        text += UNTRACKED_NOTE[settings.language]
        senders = senders_for(finding.conn_id, False, settings)
        accepted = False
        for chat_id in settings.fallback_chat_ids:
            attempts = send_whatsapp(senders, chat_id, text, retries=settings.send_retries,
                                     backoff_seconds=settings.send_backoff_seconds) if senders else []  # fmt: skip
            deliveries.extend(_delivery(a, "opening", finding.instance_id, conn_id=finding.conn_id) for a in attempts)
            accepted = accepted or bool(attempts and attempts[-1].ok)
        if accepted:
            memo[key] = now.isoformat()
        else:
            undelivered += 1
            problems.append(f"alert {finding.alert.value} for instance {finding.instance_id} reached no fallback chat")
    return AlertOutcome(deliveries, problems, undelivered, untracked=memo)

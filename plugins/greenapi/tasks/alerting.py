"""Glue of the alert step: load the state, deliver what :mod:`greenapi.domain.alert_step` decides,
save it.

Each contact's delivery is stored as soon as it is made, and each notice marked sent as soon as a
contact accepted it. A contact that has a message already (:class:`MessageKey`) is not sent it
again: an alert step stopped (killed, cleared, retried) between two contacts and run again, or the
next run, completes the notice without repeating it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from greenapi.domain.alert_step import (
    MessageKey,
    alert_text,
    alert_unreached,
    failing,
    first_check,
    group_text,
    notice_text,
    outage_notice_text,
    outage_start,
    plan_incidents,
    plan_untracked,
    sender_conn_ids,
    through_instance,
    unreached,
    untracked_reason,
)
from greenapi.domain.alerts import policy_of
from greenapi.domain.config import too_many_contacts
from greenapi.domain.incidents import Incident, Notice, NoticeKind, delivered, due
from greenapi.domain.outages import CUT_OFF_NOTE, CUT_OFF_PROBLEM, Outage, inhibited, plan_outages
from greenapi.domain.records import AlertOutcome, Delivery, Told
from greenapi.hooks.green_api import UnusableConnection, open_hook
from greenapi.notifications.delivery import Attempt, send_email, send_whatsapp, smtp_configured

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from greenapi.domain.config import Settings
    from greenapi.domain.findings import Finding
    from greenapi.hooks.green_api import GreenApiHook
    from greenapi.store import Contact, IncidentStore
    from greenapi.tasks.context import TaskContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    """A notice to deliver: its incident's place in the run's list, the notice, the finding it
    reports on, its own text and its senders."""

    index: int
    notice: Notice
    finding: Finding | None  # None for a platform outage's notice
    text: str
    senders: list[GreenApiHook]


def open_senders(conn_ids: Sequence[str]) -> list[GreenApiHook]:
    """The hooks of the usable sender connections, in order."""
    hooks = []
    for conn_id in conn_ids:
        try:
            hooks.append(open_hook(conn_id))
        except UnusableConnection:
            continue
    return hooks


def delivery(attempt: Attempt, kind: str, instance_id: str, *, incident_id: int | None = None,
             contact_id: int | None = None, conn_id: str | None = None) -> Delivery:  # fmt: skip
    """One send attempt as the record stored in ``green_api_alert_deliveries``."""
    return Delivery(message_kind=kind, instance_id=instance_id, recipient=attempt.recipient, channel=attempt.channel,
                    sender=attempt.sender, attempt=attempt.attempt, ok=attempt.ok, at=attempt.at,
                    id_message=attempt.id_message, error=attempt.error, incident_id=incident_id,
                    contact_id=contact_id, conn_id=conn_id)  # fmt: skip


class AlertRun:
    """One run's alert step: state in, notices out, deliveries recorded."""

    def __init__(self, store: IncidentStore, ctx: TaskContext) -> None:
        self.store, self.ctx, self.settings = store, ctx, ctx.settings
        self.deliveries: list[Delivery] = []
        self.problems: list[str] = []
        self.undelivered = 0
        self.contacts: list[Contact] = store.contacts_with_email()
        refused = too_many_contacts(len(self.contacts), self.settings)
        if refused:
            self.contacts = []
            self.problems.append(refused)
        elif not self.contacts:
            self.problems.append("no active support contact in system_support_contacts: nobody can be alerted")
        self.levels = sorted({c.notification_priority for c in self.contacts})
        self.email_ok = smtp_configured(self.settings.smtp_conn_id)
        self.nothing_answered = False  # no instance answered this run (domain.outages.nothing_answered)
        self.earlier: dict[MessageKey, tuple[Delivery, str]] = {}

    def load_earlier(self, incident_ids: list[int]) -> None:
        """The messages contacts have already: these incidents' once-only notices (opening,
        escalation, resolution), from any run; any message of this run, from an earlier try."""
        for d, run_id in self.store.delivered(incident_ids, self.ctx.dag_id, self.ctx.run_id):
            self.earlier[MessageKey.of(d.message_kind, d.instance_id, d.incident_id, d.contact_id, run_id)] = (d, run_id)

    def deliver(self, text: str, levels: tuple[int, ...] | None, senders: list[GreenApiHook], *, kind: str,
                incident_id: int | None, instance_id: str, conn_id: str | None) -> int:  # fmt: skip
        """Send ``text`` to every contact of ``levels`` (None: all); returns how many accepted.

        Each contact's attempts are stored before the next contact is tried. A contact that has
        the message already counts as reached and is not sent it again.
        """
        accepted = 0
        for contact in self.contacts:
            if levels is not None and contact.notification_priority not in levels:
                continue
            if self.has_already(contact, kind, instance_id, incident_id):
                accepted += 1
                continue
            accepted += self.send_to(contact, text, senders, [(kind, instance_id, incident_id, conn_id)])
        return accepted

    def has_already(self, contact: Contact, kind: str, instance_id: str, incident_id: int | None) -> bool:
        """Whether ``contact`` has this message already (:class:`MessageKey`): then it counts as
        reached and is not sent again."""
        before = self.earlier.get(MessageKey.of(kind, instance_id, incident_id, contact.id, self.ctx.run_id))
        if before is None:
            return False
        sent, run_id = before
        log.info("%s about instance %s already sent to %s at %s: not sent again", kind, instance_id, sent.recipient,
                 sent.at)  # fmt: skip
        if run_id == self.ctx.run_id:  # this run's outcome, as its earlier try would have said it
            self.deliveries.append(sent)
        return True

    def send_to(self, contact: Contact, text: str, senders: list[GreenApiHook],
                about: list[tuple[str, str, int | None, str | None]]) -> bool:  # fmt: skip
        """Send ``text`` to ``contact`` (WhatsApp, else e-mail), and store the attempts at once:
        one delivery per message it carries (``about``: kind, instance id, incident id, connection
        id), so that each incident knows who has it. Returns whether the contact accepted it."""
        instance_id = about[0][1] if len(about) == 1 else f"{len(about)} instances"
        attempts = send_whatsapp(senders, contact.phone_number, text, retries=self.settings.send_retries,
                                 backoff_seconds=self.settings.send_backoff_seconds) if senders else []  # fmt: skip
        if not (attempts and attempts[-1].ok):
            # Nothing answered, not even the senders: the monitor's own network is the likely cause.
            cut_off = self.nothing_answered and all(a.http_status is None for a in attempts)
            if cut_off and CUT_OFF_PROBLEM not in self.problems:
                self.problems.append(CUT_OFF_PROBLEM)
                log.error(CUT_OFF_PROBLEM)
            if contact.email and self.email_ok:
                subject = f"Green API {instance_id}" + (": the monitor may be cut off" if cut_off else "")
                body = CUT_OFF_NOTE[self.settings.language] + text if cut_off else text
                attempts.append(send_email(self.settings.smtp_conn_id, contact.email, subject, body))
        made = [delivery(a, kind, instance, incident_id=incident, contact_id=contact.id, conn_id=conn)
                for kind, instance, incident, conn in about for a in attempts]  # fmt: skip
        self.deliveries.extend(made)
        self.store.record_deliveries(made, self.ctx.dag_id, self.ctx.run_id)
        return bool(attempts and attempts[-1].ok)

    def deliver_grouped(self, kind: NoticeKind, items: list[Pending], group_senders: list[GreenApiHook]) -> list[int]:
        """The notices of one kind, to each contact they are for: one by one, or, when a contact
        would get more than ``group_alerts_over`` of them, as one message listing them
        (:func:`~greenapi.domain.messages.render_group`). Returns how many contacts accepted each."""
        accepted = [0] * len(items)
        for contact in self.contacts:
            mine = []
            for n, item in enumerate(items):
                incident = item.notice.incident
                if contact.notification_priority not in item.notice.levels:
                    continue
                if self.has_already(contact, kind.value, incident.instance_id, incident.id):
                    accepted[n] += 1
                else:
                    mine.append(n)
            if len(mine) > self.settings.group_alerts_over:
                found = [f for n in mine if (f := items[n].finding) is not None]
                text = group_text(kind, [items[n].notice.incident for n in mine], self.ctx.now, found,
                                  self.settings)  # fmt: skip
                about = [(kind.value, items[n].notice.incident.instance_id, items[n].notice.incident.id,
                          items[n].notice.incident.connection_id) for n in mine]  # fmt: skip
                if self.send_to(contact, text, group_senders, about):
                    for n in mine:
                        accepted[n] += 1
                continue
            for n in mine:
                incident = items[n].notice.incident
                about = [(kind.value, incident.instance_id, incident.id, incident.connection_id)]
                accepted[n] += self.send_to(contact, items[n].text, items[n].senders, about)
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
            senders = open_senders(sender_conn_ids(finding.conn_id, through_instance(finding), self.settings))
            if not self.deliver(alert_text(finding, self.settings, origin), None, senders, kind="alert",
                                incident_id=None, instance_id=finding.instance_id, conn_id=finding.conn_id):  # fmt: skip
                self.undelivered += 1
                self.problems.append(alert_unreached(finding))
        return self.outcome()

    def run(self, findings: list[Finding], in_window: dict[str, bool], outages: Sequence[Outage] = ()) -> AlertOutcome:
        """Incidents for the health check's findings and the run's platform outages: counted,
        saved, and their notices sent."""
        by_instance = {f.instance_id: f for f in findings}
        ids = list(by_instance)
        live = self.store.live_incidents(ids)
        plan = plan_incidents(findings, self.store.counters(ids), live, self.settings, self.ctx.now, in_window,
                              inhibited(outages))  # fmt: skip
        by_id: dict[int | None, Incident] = {i.id: i for i in live}
        by_id.update({i.id: i for i in self.store.save(plan.counters, plan.incidents)})  # changed and new ones
        incidents = list(by_id.values())
        outage_incidents = self.plan_outages(findings, outages)
        self.load_earlier([i.id for i in incidents + outage_incidents if i.id is not None])
        if not self.contacts:  # why is already in self.problems
            self.undelivered += sum(1 for i in incidents if i.open and i.opening_notified_at is None)
        def prepare(notice: Notice) -> tuple[Finding | None, str, list[GreenApiHook]]:
            incident, finding = notice.incident, by_instance[notice.incident.instance_id]
            through = through_instance(finding, incident.kind)
            senders = open_senders(sender_conn_ids(incident.connection_id, through, self.settings))
            return finding, notice_text(notice, finding, self.settings), senders

        updated = self.notify(incidents, prepare)
        self.store.save([], updated)
        open_ids = {i.instance_id: i.id for i in updated if i.open and i.id is not None}
        # An outage's members without an incident of their own point to the outage's.
        for incident in self.notify_outages(findings, outages, outage_incidents):
            if incident.open and incident.id is not None:
                for member in incident.members or ():
                    open_ids.setdefault(member, incident.id)
        return self.outcome(open_ids)

    def notify(self, incidents: list[Incident],
               prepare: Callable[[Notice], tuple[Finding | None, str, list[GreenApiHook]]]) -> list[Incident]:  # fmt: skip
        """The incidents' due notices, kind by kind, grouped per contact when many
        (:meth:`deliver_grouped`); returns the incidents as marked sent. ``prepare``: a notice's
        finding (None for an outage's), text and senders. An incident with two notices due (an
        escalation and a reminder) has them in two rounds."""
        policy = policy_of(self.settings)
        current = list(incidents)
        queued = [list(due(incident, self.ctx.now, self.levels, policy)) for incident in incidents]
        group_senders: list[GreenApiHook] | None = None
        while any(queued):
            items: list[Pending] = []
            for n, notices in enumerate(queued):
                if notices:
                    incident, notice = current[n], notices.pop(0)
                    notice = replace(notice, incident=incident)  # as updated by the notices before it
                    items.append(Pending(n, notice, *prepare(notice)))
            for kind in NoticeKind:
                batch = [item for item in items if item.notice.kind is kind]
                if not batch:
                    continue
                if group_senders is None:  # never through an instance: the message is about many
                    group_senders = open_senders(sender_conn_ids(None, False, self.settings))
                for item, accepted in zip(batch, self.deliver_grouped(kind, batch, group_senders), strict=True):
                    if accepted:
                        current[item.index] = delivered(item.notice, self.ctx.now)
                        self.store.save([], [current[item.index]])  # marked sent now: never sent again
                    else:
                        self.undelivered += 1
                        self.problems.append(unreached(item.notice))
        return current

    def plan_outages(self, findings: list[Finding], outages: Sequence[Outage]) -> list[Incident]:
        """The platform outages' incidents, opened, followed or resolved, and saved; with those
        whose resolution is still to send."""
        checked_at = first_check(findings, self.ctx.now)
        started = {o.key: at for o in outages if (at := outage_start(o, findings)) is not None}
        live = self.store.live_outages()
        by_id: dict[int | None, Incident] = {i.id: i for i in live}
        changed = plan_outages(outages, live, self.ctx.now, checked_at, started)
        by_id.update({i.id: i for i in self.store.save([], changed)})
        for outage in outages:
            log.warning("%s: %s (they open no incident of their own while it lasts)", outage.describe(), outage.sample())
        return list(by_id.values())

    def notify_outages(self, findings: list[Finding], outages: Sequence[Outage], incidents: list[Incident],
                       ) -> list[Incident]:  # fmt: skip
        """Each outage incident's due notices, through the alert senders (never an instance)."""
        current = {o.key: o for o in outages}
        failing_now = failing(findings)
        checked_at = first_check(findings, self.ctx.now)
        link = next((f.dashboard_url for f in findings if f.dashboard_url), "")
        if not link:
            from greenapi.dashboard import dashboard_link

            link = dashboard_link()
        senders = open_senders(sender_conn_ids(None, False, self.settings)) if incidents else []

        def prepare(notice: Notice) -> tuple[Finding | None, str, list[GreenApiHook]]:
            outage = current.get(notice.incident.instance_id)
            return None, outage_notice_text(notice, outage, failing_now, checked_at, link, self.settings), senders

        # Many outages at once (many hosts down) go as one message per kind, like the instances'.
        return self.notify(incidents, prepare)


def untracked_alerts(findings: list[Finding], settings: Settings, now: datetime, told: list[Told], reason: str,
                     sent_already: list[Delivery]) -> AlertOutcome:  # fmt: skip
    """The alert step without the health database (no contacts, no incidents): each failing
    instance's alert to ``fallback_chat_ids``, as :func:`~greenapi.domain.alert_step.plan_untracked`
    says. ``sent_already``: deliveries this run made before the database failed."""
    deliveries = list(sent_already)
    plan = plan_untracked(findings, settings, now, told, {d.instance_id for d in deliveries if d.ok})
    kept, problems, undelivered = list(plan.kept), [untracked_reason(reason), *plan.problems], plan.undelivered
    for alert in plan.send:
        finding = alert.finding
        senders = open_senders(sender_conn_ids(finding.conn_id, through_instance(finding), settings))
        accepted = False
        for chat_id in settings.fallback_chat_ids:
            attempts = send_whatsapp(senders, chat_id, alert.text, retries=settings.send_retries,
                                     backoff_seconds=settings.send_backoff_seconds) if senders else []  # fmt: skip
            deliveries.extend(delivery(a, "opening", finding.instance_id, conn_id=finding.conn_id) for a in attempts)
            accepted = accepted or bool(attempts and attempts[-1].ok)
        if accepted:
            assert finding.alert is not None
            kept.append(Told(finding.instance_id, finding.alert, now))
        else:
            undelivered += 1
            problems.append(alert_unreached(finding, "fallback chat"))
    return AlertOutcome(deliveries, problems, undelivered, untracked=kept)

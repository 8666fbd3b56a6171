"""Glue of the alert step: findings -> incidents -> notices -> deliveries (recorded).

Who is told what is decided by :mod:`greenapi.domain.incidents`; here the state is loaded and
saved, texts rendered, and each notice delivered contact by contact. A notice is marked sent only
when at least one contact accepted it, so the next run tries again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from greenapi.domain.config import ALERTS_CONN_ID, Settings, too_many_contacts
from greenapi.domain.findings import Finding
from greenapi.domain.incidents import (
    Counters,
    Incident,
    Notice,
    NoticeKind,
    Observation,
    Policy,
    Severity,
    delivered,
    due,
    observe,
)  # fmt: skip
from greenapi.domain.messages import UNTRACKED_NOTE, AlertFacts, render_alert, render_follow_up
from greenapi.domain.rules import AlertKind, Status
from greenapi.notifications.delivery import Attempt, send_email, send_whatsapp, smtp_configured
from greenapi.tasks.common import UnusableConnection, open_hook

if TYPE_CHECKING:
    from greenapi.hooks.green_api import GreenApiHook
    from greenapi.store import IncidentStore

CRITICAL_KINDS = {AlertKind.REBOOT_LOOP}  # and the state "blocked" (vendor: account banned)


def observation(finding: Finding, at: datetime, in_window: bool) -> Observation:
    """How the incident engine sees one finding."""
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


def policy_of(settings: Settings) -> Policy:
    return Policy(
        failure_threshold=settings.failure_threshold,
        success_threshold=settings.success_threshold,
        reminder_minutes=settings.reminder_minutes,
        escalation_minutes=settings.escalation_minutes,
    )


def _incident(row: tuple[Any, ...]) -> Incident:
    (id_, instance_id, connection_id, kind, severity, opened_at, resolved_at, last_state, last_error, checks,
     reboots, reboots_ok, levels, opening_at, reminder_at, resolution_at, first_failed_at, recovered_at) = row  # fmt: skip
    return Incident(
        instance_id=instance_id, kind=AlertKind(kind), opened_at=opened_at, severity=Severity(severity), id=id_,
        connection_id=connection_id, resolved_at=resolved_at, last_state=last_state, last_error=last_error,
        checks=checks, reboots=reboots, reboots_ok=reboots_ok, levels_notified=levels,
        opening_notified_at=opening_at, last_reminder_at=reminder_at, resolution_notified_at=resolution_at,
        first_failed_at=first_failed_at, recovered_at=recovered_at,
    )  # fmt: skip


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


class AlertRun:
    """One run's alert step: state in, notices out, deliveries recorded."""

    def __init__(self, store: IncidentStore, settings: Settings, now: datetime, dag_id: str, run_id: str) -> None:
        self.store, self.settings, self.now = store, settings, now
        self.dag_id, self.run_id = dag_id, run_id
        self.contacts = store.contacts_with_email()  # (id, name, phone, priority, email)
        self.deliveries: list[dict[str, Any]] = []
        self.problems: list[str] = []
        refused = too_many_contacts(len(self.contacts), settings)
        if refused:
            self.contacts = []
            self.problems.append(refused)
        elif not self.contacts:
            self.problems.append("no active support contact in system_support_contacts: nobody can be alerted")
        self.levels = sorted({c[3] for c in self.contacts})
        self.undelivered = 0
        self.email_ok = smtp_configured(settings.smtp_conn_id)

    def _texts(self, notice: Notice, finding: Finding) -> str:
        """The notice's text, about this run's check of the instance (its real time is the header's)."""
        incident, lang, tz = notice.incident, self.settings.language, self.settings.message_timezone
        if finding.alert is not None:
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

    def _record(self, attempt: Attempt, notice_kind: str, incident_id: int | None, instance_id: str,
                contact_id: int, conn_id: str | None) -> None:
        self.deliveries.append({
            **attempt.to_dict(), "message_kind": notice_kind, "incident_id": incident_id,
            "instance_id": instance_id, "contact_id": contact_id, "conn_id": conn_id,
        })  # fmt: skip

    def deliver(self, text: str, levels: tuple[int, ...] | None, senders: list[GreenApiHook], *, kind: str,
                incident_id: int | None, instance_id: str, conn_id: str | None) -> int:
        """Send ``text`` to every contact of ``levels`` (None: all); returns how many accepted."""
        accepted = 0
        for contact_id, _name, phone, priority, email in self.contacts:
            if levels is not None and priority not in levels:
                continue
            attempts = send_whatsapp(
                senders, phone, text, retries=self.settings.send_retries,
                backoff_seconds=self.settings.send_backoff_seconds,
            ) if senders else []  # fmt: skip
            if not (attempts and attempts[-1].ok) and email and self.email_ok:
                attempts.append(send_email(self.settings.smtp_conn_id, email, f"Green API {instance_id}", text))
            for attempt in attempts:
                self._record(attempt, kind, incident_id, instance_id, contact_id, conn_id)
            accepted += bool(attempts and attempts[-1].ok)
        return accepted

    def delivery_rows(self) -> list[tuple[Any, ...]]:
        return [
            (d["incident_id"], d["instance_id"], self.dag_id, self.run_id, d["message_kind"], d["contact_id"],
             d["recipient"], d["channel"], d["sender"], d["attempt"], d["ok"], d["id_message"], d["error"], d["at"])
            for d in self.deliveries
        ]  # fmt: skip

    def run(self, findings: list[Finding], in_window: dict[str, bool]) -> dict[str, Any]:
        """Incidents for the health check's findings; returns deliveries and incident ids."""
        by_instance = {f.instance_id: f for f in findings}
        ids = list(by_instance)
        live: dict[str, list[Incident]] = {}
        for row in self.store.live_incidents(ids):
            incident = _incident(row)
            live.setdefault(incident.instance_id, []).append(incident)
        counters = {r[0]: r for r in self.store.counters(ids)}
        policy = policy_of(self.settings)
        counter_rows, changed = [], []
        for instance_id, finding in by_instance.items():
            old = counters.get(instance_id)
            current = Counters(*old[1:4], streak_started_at=old[7]) if old else Counters()
            obs = observation(finding, self.now, in_window.get(instance_id, False))
            step = observe(current, [i for i in live.get(instance_id, []) if i.open], obs, policy,
                           instance_id, finding.conn_id)  # fmt: skip
            state_since = old[5] if old and old[4] == finding.state else self.now
            counter_rows.append((instance_id, step.counters.failing_kind, step.counters.consecutive_failures,
                                 step.counters.consecutive_successes, finding.state, state_since, self.now,
                                 step.counters.streak_started_at))
            changed.extend(step.incidents)
        by_id = {i.id: i for group in live.values() for i in group}
        by_id.update({i.id: i for i in self.store.save(counter_rows, changed)})  # changed and new ones
        incidents = list(by_id.values())
        if not self.contacts:  # why is already in self.problems
            self.undelivered += sum(1 for i in incidents if i.open and i.opening_notified_at is None)
        updated = []
        for incident in incidents:  # each of an instance checked this run (live_incidents(ids))
            finding = by_instance[incident.instance_id]
            healthy = finding.alert is None and finding.status is not Status.RATE_LIMITED
            senders = senders_for(incident.connection_id, healthy, self.settings)
            for notice in due(incident, self.now, self.levels, policy):
                notice = replace(notice, incident=incident)
                text = self._texts(notice, finding)
                accepted = self.deliver(text, notice.levels, senders, kind=notice.kind.value,
                                        incident_id=incident.id, instance_id=incident.instance_id,
                                        conn_id=incident.connection_id)  # fmt: skip
                if accepted:
                    incident = delivered(notice, self.now)
                else:
                    self.undelivered += 1
                    self.problems.append(
                        f"{notice.kind.value} of incident {incident.id} ({incident.kind.value}, instance "
                        f"{incident.instance_id}) reached no contact"
                    )
            updated.append(incident)
        self.store.save([], updated)
        self.store.record_deliveries(self.delivery_rows())
        open_ids = {i.instance_id: i.id for i in updated if i.open}
        return {
            "deliveries": self.deliveries,
            "problems": self.problems,
            "undelivered": self.undelivered,
            "incident_ids": open_ids,
            "alerts": sum(1 for d in self.deliveries if d["ok"]),
        }


def untracked_alerts(
    findings: list[Finding], settings: Settings, now: datetime, told: dict[str, str], reason: str,
    sent_already: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The alert step without the health database (no contacts, no incidents).

    Each failing instance's alert goes to ``fallback_chat_ids``, at most once per
    ``reminder_minutes`` for one instance and kind: ``told`` (carried from run to run in XCom)
    says when each was last sent. ``sent_already``: deliveries this run made before the database
    failed; an instance told then is not told again.
    """
    deliveries = list(sent_already)
    reached = {d["instance_id"] for d in deliveries if d["ok"]}
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
            deliveries.extend({**a.to_dict(), "message_kind": "opening", "incident_id": None,
                               "instance_id": finding.instance_id, "contact_id": None, "conn_id": finding.conn_id}
                              for a in attempts)  # fmt: skip
            accepted = accepted or bool(attempts and attempts[-1].ok)
        if accepted:
            memo[key] = now.isoformat()
        else:
            undelivered += 1
            problems.append(f"alert {finding.alert.value} for instance {finding.instance_id} reached no fallback chat")
    return {
        "deliveries": deliveries, "problems": problems, "undelivered": undelivered, "incident_ids": {},
        "alerts": sum(1 for d in deliveries if d["ok"]), "untracked": memo,
    }  # fmt: skip

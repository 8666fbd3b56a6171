"""What the alert step decides, as pure functions: counted once, incidents, senders, messages, and
the policy while the health database is down. No Airflow, no database, no HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from greenapi.domain.alert_step import (
    MessageKey,
    counted_already,
    latest_told,
    notice_text,
    plan_incidents,
    plan_untracked,
    sender_conn_ids,
    settles,
    through_instance,
    unreached,
)
from greenapi.domain.broken import Reading, Watch
from greenapi.domain.config import Settings
from greenapi.domain.findings import Finding
from greenapi.domain.health import InstanceHistory
from greenapi.domain.incidents import Incident, Notice, NoticeKind
from greenapi.domain.records import Told
from greenapi.domain.rules import AlertKind, Status

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings()


def finding(status: Status = Status.HEALTHY, alert: AlertKind | None = None, state: str | None = "authorized",
            reading: Reading | None = None, instance_id: str = "1101", at: datetime = NOW) -> Finding:  # fmt: skip
    return Finding(conn_id=f"c{instance_id}", instance_id=instance_id, dashboard_url="https://d/", checked_at=at.isoformat(),
                   status=status, state=state, error=None if alert is None else "e", response_time_ms=12,
                   alert=alert, reading=reading)  # fmt: skip


UNLINKED = finding(Status.UNHEALTHY, AlertKind.INSTANCE_NOT_AUTHORIZED, "notAuthorized")


def history(**fields) -> InstanceHistory:
    base = {"instance_id": "1101", "consecutive_successes": 4, "last_state": "authorized",
            "state_since": NOW - timedelta(hours=1), "last_checked_at": NOW - timedelta(minutes=5)}  # fmt: skip
    return InstanceHistory(**{**base, **fields})


# ---- what makes two messages the same


def test_an_incidents_opening_is_one_message_whatever_the_run_a_reminder_one_per_run():
    assert MessageKey.of("opening", "1101", 7, 3, "run-1") == MessageKey.of("opening", "1101", 7, 3, "run-2")
    assert MessageKey.of("reminder", "1101", 7, 3, "run-1") != MessageKey.of("reminder", "1101", 7, 3, "run-2")
    assert MessageKey.of("opening", "1101", 7, 3, "run-1") != MessageKey.of("opening", "1101", 7, 4, "run-1")
    # without an incident (the reboot DAGs' alerts), one per run
    assert MessageKey.of("alert", "1101", None, 3, "run-1") != MessageKey.of("alert", "1101", None, 3, "run-2")


# ---- which senders


@pytest.mark.parametrize(("found", "kind", "through"), [
    (finding(), None, True),
    (finding(), AlertKind.INSTANCE_NOT_AUTHORIZED, True),  # healthy again: a resolution may go through it
    (finding(), AlertKind.SOCKET_OFFLINE, False),  # broken while authorized: never through itself
    (finding(), AlertKind.OUTGOING_QUEUE_STUCK, False),
    (UNLINKED, None, False),
    (finding(Status.RATE_LIMITED, state=None), None, False),
])  # fmt: skip
def test_a_message_goes_through_the_instance_itself_only_when_it_is_healthy(found, kind, through):
    assert through_instance(found, kind) is through


def test_senders_come_in_order_without_repeats_and_the_instance_last():
    settings = Settings(alert_senders=("green_api_backup", "green_api_alerts"))
    assert sender_conn_ids("c1101", True, settings) == ["green_api_alerts", "green_api_backup", "c1101"]
    assert sender_conn_ids("c1101", False, settings) == ["green_api_alerts", "green_api_backup"]
    assert sender_conn_ids(None, True, Settings()) == ["green_api_alerts"]


# ---- each check counted once


def test_a_check_of_this_run_already_counted_is_not_counted_again():
    assert counted_already(history(last_checked_at=NOW), NOW)
    assert not counted_already(history(), NOW)
    assert not counted_already(None, NOW)
    plan = plan_incidents([UNLINKED], {"1101": history(last_checked_at=NOW)}, [], SETTINGS, NOW, {})
    assert plan.counters == [] and plan.incidents == []


def test_a_failing_check_opens_an_incident_and_counts():
    plan = plan_incidents([UNLINKED], {"1101": history()}, [], SETTINGS, NOW, {})
    [counters] = plan.counters
    assert (counters.failing_kind, counters.consecutive_failures, counters.consecutive_successes) == ("not_authorized", 1, 0)
    assert (counters.last_state, counters.state_since, counters.last_checked_at) == ("notAuthorized", NOW, NOW)
    [opened] = plan.incidents
    assert (opened.kind, opened.opened_at, opened.id, opened.connection_id) == (
        AlertKind.INSTANCE_NOT_AUTHORIZED, NOW, None, "c1101")  # fmt: skip


def test_a_healthy_check_resolves_the_states_incident_but_not_a_reading_s():
    unlinked = Incident("1101", AlertKind.INSTANCE_NOT_AUTHORIZED, NOW - timedelta(hours=1), id=1, opening_notified_at=NOW)
    offline = Incident("1101", AlertKind.SOCKET_OFFLINE, NOW - timedelta(hours=1), id=2, opening_notified_at=NOW)
    plan = plan_incidents([finding()], {"1101": history(failing_kind="not_authorized", consecutive_failures=3,
                                                       last_state="notAuthorized")},
                          [unlinked, offline], SETTINGS, NOW, {})  # fmt: skip
    assert [(i.id, i.resolved_at) for i in plan.incidents] == [(1, NOW)]
    assert plan.counters[0].state_since == NOW  # authorized again since now


def test_a_socket_offline_for_three_checks_opens_its_own_incident_in_its_family():
    offline = Reading(socket="offline")
    plan = plan_incidents([finding(reading=offline)], {"1101": history(watch=Watch(socket_streak=2, socket_since=NOW))},
                          [], SETTINGS, NOW, {})  # fmt: skip
    [incident] = plan.incidents
    assert (incident.kind, incident.checks, incident.first_failed_at) == (AlertKind.SOCKET_OFFLINE, 3, NOW)
    assert plan.counters[0].watch.socket_streak == 3


def test_in_the_maintenance_window_a_failing_check_opens_nothing():
    plan = plan_incidents([UNLINKED], {"1101": history()}, [], SETTINGS, NOW, {"1101": True})
    assert plan.incidents == [] and plan.counters[0].consecutive_failures == 0


# ---- which healthy checks a check task settles itself


@pytest.mark.parametrize(("found", "seen", "incident", "settled"), [
    (finding(), history(), False, True),
    (finding(reading=Reading(socket="online", queue=3)), history(), False, True),
    (finding(), None, False, False),  # never seen: the alert step writes its first row
    (finding(), history(failing_kind="not_authorized", consecutive_failures=1), False, False),
    (finding(), history(watch=Watch(queue_streak=1)), False, False),
    (finding(), history(watch=Watch(socket_streak=2)), False, False),
    (finding(), history(), True, False),  # an incident to follow up
    (finding(), history(last_checked_at=NOW), False, False),  # counted already
    (finding(reading=Reading(socket="offline")), history(), False, False),
    (finding(reading=Reading(queue=50)), history(), False, False),  # at the threshold
    (UNLINKED, history(), False, False),
])  # fmt: skip
def test_a_check_task_settles_only_the_quiet_healthy_checks(found, seen, incident, settled):
    assert settles(found, seen, incident, NOW, SETTINGS) is settled


def test_settled_counters_are_those_the_alert_step_would_save():
    plan = plan_incidents([finding()], {"1101": history()}, [], SETTINGS, NOW, {})
    [counters] = plan.counters
    assert (counters.consecutive_successes, counters.last_checked_at, counters.state_since) == (
        5, NOW, NOW - timedelta(hours=1))  # fmt: skip
    assert plan.incidents == []


# ---- texts


def test_a_notice_reports_on_this_runs_check_and_an_unreached_one_is_named():
    incident = Incident("1101", AlertKind.INSTANCE_NOT_AUTHORIZED, NOW, id=9, connection_id="c1101")
    text = notice_text(Notice(NoticeKind.OPENING, incident, (1,)), UNLINKED, SETTINGS)
    assert text.startswith("🚨 *ALERTE GREEN API* 🚨") and "⚠️ *INSTANCE NON AUTORISÉE*" in text
    assert "📱 Instance: 1101" in text and text.endswith("🔗 Dashboard: https://d/")
    assert unreached(Notice(NoticeKind.REMINDER, incident, (1,))) == (
        "reminder of incident 9 (instance_not_authorized, instance 1101) reached no contact")  # fmt: skip


# ---- without the health database


FALLBACK = Settings(fallback_chat_ids=("33600000077@c.us",), reminder_minutes=60)


def test_without_the_database_an_alert_goes_to_the_fallback_chats_once_per_reminder_interval():
    first = plan_untracked([UNLINKED], FALLBACK, NOW, [], set())
    [sent] = first.send
    assert sent.finding == UNLINKED and "sans suivi d'incident" in sent.text
    told = [Told("1101", AlertKind.INSTANCE_NOT_AUTHORIZED, NOW)]
    later = plan_untracked([UNLINKED], FALLBACK, NOW + timedelta(minutes=59), told, set())
    assert later.send == [] and later.kept == told  # remembered at its first time
    again = plan_untracked([UNLINKED], FALLBACK, NOW + timedelta(minutes=60), told, set())
    assert [a.finding.instance_id for a in again.send] == ["1101"]


def test_without_the_database_an_instance_told_before_the_failure_and_a_healthy_one_are_not_sent():
    plan = plan_untracked([UNLINKED, finding(instance_id="1102")], FALLBACK, NOW, [], {"1101"})
    assert plan.send == [] and plan.kept == [Told("1101", AlertKind.INSTANCE_NOT_AUTHORIZED, NOW)]


def test_without_the_database_and_without_fallback_chats_the_alert_reaches_nobody_by_name():
    plan = plan_untracked([UNLINKED], SETTINGS, NOW, [], set())
    assert (plan.send, plan.undelivered) == ([], 1)
    assert plan.problems == ["alert instance_not_authorized for instance 1101 reached nobody: the contacts are in the "
                             "database and green_api_settings.fallback_chat_ids is empty"]  # fmt: skip


def test_the_carry_keeps_the_latest_time_of_each_instance_and_kind():
    early, late = Told("1", AlertKind.COMPLETE_FAILURE, NOW), Told("1", AlertKind.COMPLETE_FAILURE, NOW + timedelta(1))
    other = Told("1", AlertKind.INSTANCE_NOT_AUTHORIZED, NOW)
    assert sorted(latest_told([early, other], [late]), key=lambda t: t.kind) == [late, other]
    assert latest_told() == []
    assert replace(early, at=late.at) == late

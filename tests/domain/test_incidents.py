"""The incident engine, as pure functions over simulated time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from greenapi.domain.incidents import (
    Counters,
    Incident,
    NoticeKind,
    Observation,
    Policy,
    Severity,
    delivered,
    due,
    format_duration,
    observe,
)  # fmt: skip
from greenapi.domain.rules import AlertKind, reboot_allowed

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LEVELS = [1, 2, 3]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def real(minutes: float, seconds: float = 0) -> datetime:
    """A check's real time: runs start late, and checks take time."""
    return at(minutes) + timedelta(seconds=seconds)


def failing(minutes: float, kind: AlertKind = AlertKind.INSTANCE_NOT_AUTHORIZED, late: float = 0) -> Observation:
    return Observation(at=at(minutes), checked_at=real(minutes, late), problem=kind, state="notAuthorized", error="e")


def healthy(minutes: float, late: float = 0, **more: Any) -> Observation:
    return Observation(at=at(minutes), checked_at=real(minutes, late), problem=None, **more)


def test_threshold_of_two_opens_on_the_second_failure():
    policy = Policy(failure_threshold=2)
    step = observe(Counters(), [], failing(0), policy, "1")
    assert step.incidents == [] and step.counters.consecutive_failures == 1
    step = observe(step.counters, [], failing(5), policy, "1")
    assert [i.opened_at for i in step.incidents] == [at(5)]


def test_one_outage_is_one_incident_even_when_its_symptoms_change():
    step = observe(Counters(), [], failing(0, AlertKind.REBOOT_NOT_BACK), Policy(), "1")
    [incident] = step.incidents
    step = observe(step.counters, [incident], failing(5, AlertKind.COMPLETE_FAILURE), Policy(), "1")
    assert [i.kind for i in step.incidents] == [AlertKind.REBOOT_NOT_BACK] and step.incidents[0].checks == 2


def test_notices_over_time_opening_escalations_reminders_resolution():
    incident = Incident("1", AlertKind.INSTANCE_NOT_AUTHORIZED, at(0))
    policy = Policy(reminder_minutes=60, escalation_minutes=15)
    [opening] = due(incident, at(0), LEVELS, policy)
    assert (opening.kind, opening.levels) == (NoticeKind.OPENING, (1,))
    incident = delivered(opening, at(0))
    assert due(incident, at(14), LEVELS, policy) == []
    [escalation] = due(incident, at(15), LEVELS, policy)
    assert (escalation.kind, escalation.levels, escalation.level_number) == (NoticeKind.ESCALATION, (2,), 2)
    incident = delivered(escalation, at(15))
    [third] = due(incident, at(30), LEVELS, policy)
    incident = delivered(third, at(30))
    assert incident.levels_notified == 3
    [reminder] = due(incident, at(60), LEVELS, policy)
    assert (reminder.kind, reminder.levels) == (NoticeKind.REMINDER, (1, 2, 3))
    incident = delivered(reminder, at(60))
    assert due(incident, at(119), LEVELS, policy) == []
    resolved = observe(Counters(), [incident], healthy(125), policy, "1").incidents[0]
    [resolution] = due(resolved, at(125), LEVELS, policy)
    assert (resolution.kind, resolution.levels) == (NoticeKind.RESOLUTION, (1, 2, 3))
    assert due(delivered(resolution, at(125)), at(130), LEVELS, policy) == []


def test_an_undelivered_opening_is_due_again():
    incident = Incident("1", AlertKind.COMPLETE_FAILURE, at(0))
    assert [n.kind for n in due(incident, at(5), LEVELS, Policy())] == [NoticeKind.OPENING]


def test_rate_limited_checks_neither_open_nor_resolve():
    counters = Counters("not_authorized", 1, 0)
    step = observe(counters, [], healthy(0, counts=False), Policy(), "1")
    assert step.counters == counters and step.incidents == []


def test_a_successful_reboot_is_counted_in_the_resolution():
    incident = Incident("1", AlertKind.INSTANCE_NOT_AUTHORIZED, at(0), severity=Severity.WARNING)
    [resolved] = observe(Counters(), [incident], healthy(6, reboot_ok=True), Policy(), "1").incidents
    assert (resolved.reboots, resolved.reboots_ok, resolved.resolved_at) == (1, 1, at(6))


def test_the_incident_starts_at_the_real_time_of_its_streaks_first_failing_check():
    policy = Policy(failure_threshold=2)
    step = observe(Counters(), [], failing(0, late=182), policy, "1")  # run of 12:00, checked at 12:03:02
    assert step.counters.streak_started_at == real(0, 182) and step.incidents == []
    [incident] = observe(step.counters, [], failing(5, late=3), policy, "1").incidents
    assert (incident.opened_at, incident.first_failed_at, incident.started) == (at(5), real(0, 182), real(0, 182))


def test_a_resolution_ends_at_the_real_time_of_the_first_healthy_check():
    policy = Policy(success_threshold=2)
    [incident] = observe(Counters(), [], failing(0, late=182), policy, "1").incidents
    step = observe(Counters(), [incident], healthy(10, late=5), policy, "1")  # 12:10:05, not yet resolved
    assert step.incidents == [] and step.counters.streak_started_at == real(10, 5)
    [resolved] = observe(step.counters, [incident], healthy(15, late=1), policy, "1").incidents
    assert (resolved.resolved_at, resolved.recovered_at, resolved.ended) == (at(15), real(10, 5), real(10, 5))
    assert resolved.ended - resolved.started == timedelta(minutes=7, seconds=3)


@pytest.mark.parametrize(
    ("before", "check", "streak_from"),
    [
        (Counters("not_authorized", 1, 0, real(0, 182)), failing(5), real(0, 182)),  # the streak goes on
        (Counters("unreachable", 1, 0, real(0, 182)), failing(5), real(5)),  # another problem: a new streak
        (Counters(None, 0, 2, real(0)), failing(5), real(5)),  # the first failure after healthy checks
        (Counters("not_authorized", 1, 0, real(0, 182)), healthy(5, counts=False), real(0, 182)),  # not counted
        (Counters("not_authorized", 2, 0, None), failing(5), real(5)),  # stored before the real times were kept
    ],
)
def test_the_streak_start_is_kept_until_the_streak_breaks(before, check, streak_from):
    assert observe(before, [], check, Policy(failure_threshold=5), "1").counters.streak_started_at == streak_from


def test_incidents_stored_before_the_real_times_use_their_logical_ones():
    incident = Incident("1", AlertKind.COMPLETE_FAILURE, at(0), resolved_at=at(10))
    assert (incident.started, incident.ended) == (at(0), at(10))


def test_escalation_and_reminders_follow_logical_time_not_the_real_one():
    [incident] = observe(Counters(), [], failing(0, late=600), Policy(), "1").incidents  # checked 10 min late
    incident = delivered(due(incident, at(0), LEVELS, Policy())[0], at(0))
    assert due(incident, at(14), LEVELS, Policy()) == []
    assert [n.kind for n in due(incident, at(15), LEVELS, Policy())] == [NoticeKind.ESCALATION]


def test_cooldown_and_cap():
    assert reboot_allowed([], at(0), cooldown_minutes=30, daily_cap=3) is None
    assert reboot_allowed([at(0)], at(10), cooldown_minutes=30, daily_cap=3) == "cooldown"
    assert reboot_allowed([at(0)], at(30), cooldown_minutes=30, daily_cap=3) is None
    assert reboot_allowed([at(0), at(30), at(60)], at(90), cooldown_minutes=30, daily_cap=3) == "cap"
    assert reboot_allowed([at(0), at(30), at(60)], at(24 * 60 + 1), cooldown_minutes=30, daily_cap=3) is None


def test_durations_read_naturally():
    assert format_duration(timedelta(minutes=15)) == "15 min"
    assert format_duration(timedelta(minutes=65)) == "1 h 05 min"
    assert format_duration(timedelta(days=2, hours=3)) == "2 j 3 h"
    assert format_duration(timedelta(days=2, hours=3), "en") == "2 d 3 h"


def test_an_incident_keeps_every_problem_it_went_through_and_its_resolution_names_each():
    """Issue 28: not authorized at 08:13, then no answer and a reboot, then back: the resolution
    names both problems in order, what was done about each, and each time with its zone."""
    from greenapi.domain.messages import render_follow_up

    t = datetime(2026, 1, 15, 7, 13, tzinfo=UTC)  # 08:13 in Paris, in winter (CET)

    def obs(minutes: int, problem: AlertKind | None, state: str | None, **more: Any) -> Observation:
        moment = t + timedelta(minutes=minutes)
        return Observation(at=moment, checked_at=moment, problem=problem, state=state, **more)

    step = observe(Counters(), [], obs(0, AlertKind.INSTANCE_NOT_AUTHORIZED, "notAuthorized"), Policy(), "1101")
    [opened] = step.incidents
    # 08:18: no answer; the reboot this run made worked, so the check counts as healthy
    step = observe(step.counters, [opened], obs(5, None, None, reboot_ok=True), Policy(), "1101")
    [resolved] = step.incidents
    assert [(e.problem, e.at, e.reboot_ok) for e in resolved.course] == [
        ("instance_not_authorized", t, None), ("no_answer", t + timedelta(minutes=5), True)]  # fmt: skip
    texts = {language: render_follow_up("resolution", resolved, checked_at=t + timedelta(minutes=5),
                                        dashboard_url="https://x", timezone="Europe/Paris", language=language)
             for language in ("fr", "en")}  # fmt: skip
    assert texts["fr"] == (
        "✅ *GREEN API* ✅\n\n⏰ 15/01/2026 08:18:00 CET\n📱 Instance: 1101\n\n✅ *INCIDENT RÉSOLU*\n\n"
        "Problème: instance non autorisée → pas de réponse\n"
        "Durée totale: 5 min (du 15/01/2026 08:13:00 CET au 15/01/2026 08:18:00 CET)\n"
        "Actions: 1 reboot(s) automatique(s), 1 réussi(s)\n\n"
        "Déroulé:\n"
        "1. 08:13 CET: instance non autorisée (notAuthorized); aucun reboot\n"
        "2. 08:18 CET: pas de réponse; reboot automatique, réussi\n"
        "3. 08:18 CET: rétablie\n\n"
        "🔗 Dashboard: https://x"
    )
    assert "Problem: instance not authorized → no answer\n" in texts["en"]
    assert ("Course:\n1. 08:13 CET: instance not authorized (notAuthorized); no reboot\n"
            "2. 08:18 CET: no answer; automatic reboot, successful\n3. 08:18 CET: back") in texts["en"]  # fmt: skip


def test_a_lasting_problem_adds_nothing_to_the_course_and_other_open_incidents_follow_a_new_one():
    step = observe(Counters(), [], failing(0), Policy(), "1")
    [opened] = step.incidents
    step = observe(step.counters, [opened], failing(5), Policy(), "1")
    [same] = step.incidents
    assert [e.problem for e in same.course] == ["instance_not_authorized"]
    # a second family opens its own incident; the first one's course names it too
    step = observe(step.counters, [same], failing(10, AlertKind.COMPLETE_FAILURE), Policy(), "1")
    new, followed = sorted(step.incidents, key=lambda i: i.kind != AlertKind.COMPLETE_FAILURE)
    assert [e.problem for e in new.course] == ["complete_failure"]
    assert [e.problem for e in followed.course] == ["instance_not_authorized", "complete_failure"]

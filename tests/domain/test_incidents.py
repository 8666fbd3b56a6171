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

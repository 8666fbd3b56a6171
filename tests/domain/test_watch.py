"""What the state watch makes of its looks (issue 27): pure, no Airflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from greenapi.domain.results import ApiResult, ResultKind
from greenapi.domain.watch import NO_ANSWER, Change, WatchRound, changes, parse_watch, seen, watch_problem

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)


def result(kind: ResultKind = ResultKind.OK, status: int | None = 200, state: str | None = "authorized") -> ApiResult:
    data = {"stateInstance": state} if kind is ResultKind.OK else {}
    return ApiResult(method="getStateInstance", kind=kind, response_time_ms=40, http_status=status, data=data)


@pytest.mark.parametrize(("look", "said"), [
    (result(), "authorized"),
    (result(state="notAuthorized"), "notAuthorized"),
    (result(kind=ResultKind.TIMEOUT, status=None), NO_ANSWER),
    (result(kind=ResultKind.CONNECTION_ERROR, status=None), NO_ANSWER),
    (result(kind=ResultKind.HTTP_ERROR, status=502), NO_ANSWER),
    (result(kind=ResultKind.HTTP_ERROR, status=401), "refused (HTTP 401)"),
    (result(kind=ResultKind.HTTP_ERROR, status=429), None),  # the API's limit says nothing of the instance
    (ApiResult(method="getStateInstance", kind=ResultKind.MALFORMED, response_time_ms=40), "unreadable answer (malformed)"),
])  # fmt: skip
def test_a_look_says_a_state_no_answer_a_refusal_or_nothing(look, said):
    assert seen(look) == said


def test_only_a_change_is_a_change_and_the_first_look_sets_what_is_known():
    known, found, doubtful = changes({}, {"a": ("1", "authorized"), "b": ("2", "notAuthorized")}, AT)
    assert found == [] and known == {"a": "authorized", "b": "notAuthorized"} and doubtful == set()
    known, found, doubtful = changes(known, {"a": ("1", "authorized"), "b": ("2", "notAuthorized")}, AT, doubtful)
    assert found == []  # lasting states: nothing, however long they last
    known, found, doubtful = changes(known, {"a": ("1", NO_ANSWER), "b": ("2", None)}, AT, doubtful)
    assert found == [] and doubtful == {"a"}  # no answer once: not yet
    assert known["b"] == "notAuthorized"  # a 429 keeps what was known
    known, found, doubtful = changes(known, {"a": ("1", NO_ANSWER), "b": ("2", "blocked")}, AT, doubtful)
    assert found == [Change("a", "1", "authorized", NO_ANSWER, AT.isoformat()),
                     Change("b", "2", "notAuthorized", "blocked", AT.isoformat())]  # fmt: skip
    known, found, doubtful = changes(known, {"a": ("1", NO_ANSWER)}, AT, doubtful)
    assert found == [] and doubtful == set()  # lasting
    known, found, doubtful = changes(known, {"a": ("1", "authorized")}, AT, doubtful)
    assert [(c.old, c.new) for c in found] == [(NO_ANSWER, "authorized")]


def test_one_lost_answer_changes_nothing_and_a_first_look_with_no_answer_is_no_change():
    known, found, doubtful = changes({}, {"a": ("1", NO_ANSWER), "b": ("2", "authorized")}, AT)
    assert (known, found, doubtful) == ({"b": "authorized"}, [], {"a"})
    known, found, doubtful = changes(known, {"a": ("1", "authorized"), "b": ("2", NO_ANSWER)}, AT, doubtful)
    assert (found, doubtful) == ([], {"b"})  # a's first answer; b's lost call, not yet a change
    known, found, doubtful = changes(known, {"a": ("1", "authorized"), "b": ("2", None)}, AT, doubtful)
    assert (found, doubtful) == ([], {"b"})  # a 429 neither confirms nor clears it
    known, found, doubtful = changes(known, {"a": ("1", "authorized"), "b": ("2", "authorized")}, AT, doubtful)
    assert (found, doubtful) == ([], set())  # it answered again: nothing happened


def test_the_watch_is_off_unless_the_variable_turns_it_on():
    assert not parse_watch(None).enabled and parse_watch(None).watch_seconds == 20
    assert parse_watch('{"enabled": true}').enabled
    assert parse_watch({"enabled": True, "watch_seconds": 5}).watch_seconds == 5


def last_round(ago: float, watch_seconds: float = 20, round_ms: int = 300) -> WatchRound:
    return WatchRound("green_api_state_watch", AT - timedelta(hours=1), AT - timedelta(seconds=ago), watch_seconds,
                      100, 100, 0, 0, 180, 2, round_ms)  # fmt: skip


@pytest.mark.parametrize(("ago", "watch_seconds", "round_ms", "stopped"), [
    (20, 20, 300, False),
    (89, 20, 300, False),  # never under 90 s: a scheduler's hiccup is no stopped watch
    (91, 20, 300, True),
    (170, 60, 300, False),  # three rounds of 60 s
    (181, 60, 300, True),
    (200, 20, 80_000, False),  # rounds of 80 s (a large fleet): three of them
])  # fmt: skip
def test_a_watch_counts_as_stopped_after_three_rounds_and_never_under_90_seconds(ago, watch_seconds, round_ms, stopped):
    assert (watch_problem(last_round(ago, watch_seconds, round_ms), AT) is not None) is stopped


def test_a_stopped_watch_is_named_with_when_it_last_looked_and_no_row_is_no_problem_yet():
    problem = watch_problem(last_round(600), AT)
    assert problem == ("the state watch green_api_state_watch has not looked since 2026-12-05 11:50:00 UTC (600 s ago,"
                       " every 20 s expected): is the Airflow triggerer running? The 5-minute checks go on")
    assert watch_problem(None, AT) is None  # before its first round

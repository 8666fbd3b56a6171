"""What the state watch makes of its looks (issue 27): pure, no Airflow."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from greenapi.domain.results import ApiResult, ResultKind
from greenapi.domain.watch import NO_ANSWER, Change, changes, parse_watch, seen

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
    known, found = changes({}, {"a": ("1", "authorized"), "b": ("2", "notAuthorized")}, AT)
    assert found == [] and known == {"a": "authorized", "b": "notAuthorized"}
    known, found = changes(known, {"a": ("1", "authorized"), "b": ("2", "notAuthorized")}, AT)
    assert found == []  # lasting states: nothing, however long they last
    known, found = changes(known, {"a": ("1", NO_ANSWER), "b": ("2", None)}, AT)
    assert found == [Change("a", "1", "authorized", NO_ANSWER, AT.isoformat())]
    assert known["b"] == "notAuthorized"  # a 429 keeps what was known
    known, found = changes(known, {"a": ("1", "authorized")}, AT)
    assert [(c.old, c.new) for c in found] == [(NO_ANSWER, "authorized")]


def test_the_watch_is_off_unless_the_variable_turns_it_on():
    assert not parse_watch(None).enabled and parse_watch(None).watch_seconds == 20
    assert parse_watch('{"enabled": true}').enabled
    assert parse_watch({"enabled": True, "watch_seconds": 5}).watch_seconds == 5

"""The seed's decision table, as pure functions (no Airflow, no HTTP)."""

from __future__ import annotations

import pytest

from greenapi.domain.results import ApiResult, ResultKind
from greenapi.domain.rules import AlertKind, Status, after_reboot, classify_check, trigger_type_for


def ok(data, method="getStateInstance"):
    return ApiResult(method, ResultKind.OK, 120, 200, data)


def http(status, detail=None):
    return ApiResult("getStateInstance", ResultKind.HTTP_ERROR, 50, status, {}, detail, f"HTTP {status}")


@pytest.mark.parametrize(
    ("result", "status", "state", "reboot", "alert"),
    [
        (ok({"stateInstance": "authorized"}), Status.HEALTHY, "authorized", False, None),
        (ok({"stateInstance": "notAuthorized"}), Status.UNHEALTHY, "notAuthorized", False, AlertKind.INSTANCE_NOT_AUTHORIZED),
        (ok({"stateInstance": "blocked"}), Status.UNHEALTHY, "blocked", False, AlertKind.INSTANCE_NOT_AUTHORIZED),
        (ok({"stateInstance": "yellowCard"}), Status.UNHEALTHY, "yellowCard", False, AlertKind.INSTANCE_NOT_AUTHORIZED),
        (ok({}), Status.UNHEALTHY, None, False, AlertKind.INSTANCE_NOT_AUTHORIZED),
        (ApiResult("getStateInstance", ResultKind.NULL_BODY, 5), Status.UNHEALTHY, None, False, AlertKind.INSTANCE_NOT_AUTHORIZED),
        (ApiResult("getStateInstance", ResultKind.TIMEOUT, 10000, error="Connection timeout"), Status.CRITICAL_FAILURE, None, True, None),
        (ApiResult("getStateInstance", ResultKind.CONNECTION_ERROR, 3, error="Connection error: x"), Status.CRITICAL_FAILURE, None, True, None),
        (http(500), Status.CRITICAL_FAILURE, None, True, None),
        (http(502, "Bad Gateway"), Status.CRITICAL_FAILURE, None, True, None),
        (http(400, "instance in starting process try later"), Status.UNHEALTHY, "starting", False, AlertKind.INSTANCE_NOT_AUTHORIZED),
        (http(400, "instance account not authorized"), Status.UNHEALTHY, "notAuthorized", False, AlertKind.INSTANCE_NOT_AUTHORIZED),
        (http(400, "bad request data"), Status.UNHEALTHY, None, False, AlertKind.CONFIGURATION_ERROR),
        (http(401), Status.UNHEALTHY, None, False, AlertKind.CONFIGURATION_ERROR),
        (http(403), Status.UNHEALTHY, None, False, AlertKind.CONFIGURATION_ERROR),
        (http(466, "QUOTE_EXCEEDED"), Status.UNHEALTHY, None, False, AlertKind.CONFIGURATION_ERROR),
        (http(429), Status.RATE_LIMITED, None, False, None),
        (http(499), Status.UNHEALTHY, None, False, AlertKind.INVALID_RESPONSE),
        (ApiResult("getStateInstance", ResultKind.MALFORMED, 5, 200, error="Malformed answer"), Status.UNHEALTHY, None, False, AlertKind.INVALID_RESPONSE),
    ],
)
def test_decision_table(result, status, state, reboot, alert):
    verdict = classify_check(result)
    assert (verdict.status, verdict.state, verdict.reboot, verdict.alert) == (status, state, reboot, alert)


def test_never_reboot_unless_the_instance_did_not_answer():
    for state in ("notAuthorized", "blocked", "sleepMode", "starting", "yellowCard", None, "x"):
        assert not classify_check(ok({"stateInstance": state})).reboot


def test_configuration_errors_say_what_to_fix():
    assert "Password" in (classify_check(http(401)).fix or "")
    assert "Login" in (classify_check(http(403)).fix or "")
    assert "quota" in (classify_check(http(466)).fix or "")


def test_reboot_accepted_means_rebooted_without_alert():
    verdict = after_reboot(classify_check(http(500)), ok({"isReboot": True}, "reboot"))
    assert (verdict.status, verdict.reboot_success, verdict.alert) == (Status.REBOOTED, True, None)


def test_reboot_refused_is_timeout_and_reboot_failed():
    primary = ApiResult("getStateInstance", ResultKind.TIMEOUT, 10000, error="Connection timeout")
    verdict = after_reboot(classify_check(primary), ok({"isReboot": False}, "reboot"))
    assert (verdict.status, verdict.reboot_success) == (Status.CRITICAL_FAILURE, False)
    assert verdict.alert is AlertKind.TIMEOUT_AND_REBOOT_FAILED
    assert verdict.error == "Connection timeout | Reboot refused (isReboot=False)"


@pytest.mark.parametrize(
    ("reboot", "text"),
    [
        (ApiResult("reboot", ResultKind.HTTP_ERROR, 4, 500, error="HTTP 500"), "HTTP 500"),
        (ApiResult("reboot", ResultKind.TIMEOUT, 30000, error="Connection timeout"), "Connection timeout"),
        (ApiResult("reboot", ResultKind.MALFORMED, 4, 200, error="Malformed answer: body is not valid JSON"), "Malformed answer: body is not valid JSON"),
    ],
)
def test_reboot_request_failing_is_complete_failure(reboot, text):
    primary = ApiResult("getStateInstance", ResultKind.TIMEOUT, 10000, error="Connection timeout")
    verdict = after_reboot(classify_check(primary), reboot)
    assert verdict.alert is AlertKind.COMPLETE_FAILURE
    assert verdict.error == f"Primary: Connection timeout | Reboot: {text}"


@pytest.mark.parametrize(("run_type", "expected"), [("manual", "manual"), ("scheduled", "automatic"), ("backfill", "automatic"), (None, "automatic")])
def test_trigger_type(run_type, expected):
    assert trigger_type_for(run_type) == expected


def test_reboot_reasons_follow_the_vendor_advice():
    from datetime import UTC, datetime, timedelta

    from greenapi.domain.rules import reboot_reason

    now = datetime(2026, 1, 1, tzinfo=UTC)
    starting = classify_check(ok({"stateInstance": "starting"}))
    yellow = classify_check(ok({"stateInstance": "yellowCard"}))
    kwargs = {"starting_reboot_minutes": 5, "reboot_on_yellow_card": False}
    assert reboot_reason(starting, now - timedelta(minutes=4), now, **kwargs) is None
    assert reboot_reason(starting, now - timedelta(minutes=6), now, **kwargs) == "starting for 6 min"
    assert reboot_reason(yellow, now, now, **kwargs) is None
    assert reboot_reason(yellow, now, now, **{**kwargs, "reboot_on_yellow_card": True}) == "yellowCard"
    for state in ("notAuthorized", "blocked"):  # never: a person must act
        assert reboot_reason(classify_check(ok({"stateInstance": state})), now - timedelta(days=1), now,
                             starting_reboot_minutes=5, reboot_on_yellow_card=True) is None

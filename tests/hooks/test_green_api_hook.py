"""GreenApiHook against the simulator over real HTTP: every outcome the domain tells apart."""

from __future__ import annotations

import json
import time

import pytest

from greenapi.domain.config import ConfigError
from greenapi.domain.results import ResultKind
from greenapi.hooks.green_api import GreenApiHook


@pytest.fixture
def hook_for(make_instance):
    def build(**config):
        inst = make_instance("green_api_hooktest", **config)
        return GreenApiHook("green_api_hooktest"), inst

    return build


@pytest.mark.parametrize("state", ["authorized", "notAuthorized", "blocked", "sleepMode", "starting", "yellowCard", "odd"])
def test_state_values_are_returned_as_data(hook_for, state):
    hook, _ = hook_for(state=state)
    result = hook.get_state_instance()
    assert (result.kind, result.http_status, result.data) == (ResultKind.OK, 200, {"stateInstance": state})


def test_null_body_is_its_own_outcome(hook_for):
    hook, _ = hook_for(state=None)
    result = hook.get_state_instance()
    assert result.kind is ResultKind.NULL_BODY


def test_latency_is_measured(hook_for):
    hook, _ = hook_for(latency_ms=300)
    result = hook.get_state_instance()
    assert result.ok and 300 <= result.response_time_ms < 900


def test_hang_is_a_timeout_after_the_configured_seconds(hook_for):
    hook, _ = hook_for(faults={"getStateInstance": {"mode": "hang", "seconds": 5}})
    started = time.monotonic()
    result = hook.get_state_instance()
    elapsed = time.monotonic() - started
    assert result.kind is ResultKind.TIMEOUT and result.error == "Connection timeout"
    assert 0.9 <= elapsed < 2.0  # state_timeout is 1 s in the test connections


def test_connection_refused(monkeypatch):
    conn = {"conn_type": "greenapi", "host": "http://127.0.0.1:9", "login": "1", "password": "TOKEN-SECRET-x"}
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_REFUSED", json.dumps(conn))
    result = GreenApiHook("green_api_refused").get_state_instance()
    assert (result.kind, result.error) == (ResultKind.CONNECTION_ERROR, "Connection error: connection refused")


def test_connection_reset(hook_for):
    hook, _ = hook_for(faults={"getStateInstance": {"mode": "reset"}})
    result = hook.get_state_instance()
    assert result.kind is ResultKind.CONNECTION_ERROR
    assert result.error == "Connection error: connection reset by peer"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "detail"),
    [
        (400, "instance in starting process try later", "text/plain", "instance in starting process try later"),
        (400, '{"message": "instance account not authorized"}', "application/json", "instance account not authorized"),
        (401, None, None, None),
        (403, None, None, None),
        (429, None, None, None),
        (466, '{"invokeStatus": {"status": "QUOTE_EXCEEDED"}, "correspondentsStatus": {}}', "application/json", "QUOTE_EXCEEDED"),
        (500, '{"message": "Internal Server Error"}', "application/json", "Internal Server Error"),
        (502, "<html><head><title>502</title></head><body><h1>Bad Gateway</h1></body></html>", "text/html", "502 Bad Gateway"),
    ],
)
def test_http_errors_carry_their_code_and_the_body_meaning(hook_for, status, body, content_type, detail):
    fault = {"mode": "http", "status": status}
    if body is not None:
        fault |= {"body": body, "content_type": content_type}
    hook, _ = hook_for(faults={"getStateInstance": fault})
    result = hook.get_state_instance()
    assert (result.kind, result.http_status) == (ResultKind.HTTP_ERROR, status)
    if detail is not None:
        assert result.detail == detail
    assert result.error.startswith(f"HTTP {status}")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"mode": "malformed"}, "Malformed answer: body is not valid JSON"),
        ({"mode": "non_utf8"}, "Malformed answer: body is not UTF-8"),
        ({"mode": "big", "bytes": 3_000_000}, "response body larger than 1048576 bytes"),
    ],
)
def test_unreadable_bodies_are_malformed(hook_for, fault, error):
    hook, _ = hook_for(faults={"getStateInstance": fault})
    result = hook.get_state_instance()
    assert (result.kind, result.error) == (ResultKind.MALFORMED, error)


def test_a_body_trickling_past_the_deadline_is_a_timeout(hook_for):
    hook, _ = hook_for(faults={"getStateInstance": {"mode": "trickle", "interval_ms": 300}})
    started = time.monotonic()
    result = hook.get_state_instance()
    assert result.kind is ResultKind.TIMEOUT
    assert time.monotonic() - started < 2.5


def test_redirects_are_not_followed(hook_for, sim):
    hook, inst = hook_for(faults={"getStateInstance": {"mode": "redirect"}})
    result = hook.get_state_instance()
    assert (result.kind, result.http_status, result.detail) == (ResultKind.HTTP_ERROR, 302, "redirect refused")


@pytest.mark.parametrize("accepted", [True, False])
def test_reboot_reports_is_reboot(hook_for, sim, accepted):
    hook, inst = hook_for(reboot_result=accepted)
    result = hook.reboot()
    assert result.ok and result.data == {"isReboot": accepted}
    assert len(sim.requests_log(inst.instance_id, "reboot")) == 1


def test_send_message_returns_the_message_id(hook_for, sim):
    hook, inst = hook_for()
    result = hook.send_message("33600000001@c.us", "*bonjour* 🚨")
    assert result.ok and result.data["idMessage"]
    [message] = sim.messages(inst.instance_id)
    assert (message["chatId"], message["message"], message["idMessage"]) == (
        "33600000001@c.us", "*bonjour* 🚨", result.data["idMessage"],
    )


def test_calls_are_paced_under_the_one_per_second_limit(hook_for, sim):
    hook, inst = hook_for()
    results = [hook.get_state_instance() for _ in range(3)]
    assert all(r.ok for r in results)  # the simulator enforces 1 request/s: no 429
    times = [r["at"] for r in sim.requests_log(inst.instance_id, "getStateInstance")]
    assert all(b - a >= 1.0 for a, b in zip(times, times[1:], strict=False))


def test_token_appears_in_no_result_and_no_repr(hook_for):
    for fault in ({"mode": "hang", "seconds": 3}, {"mode": "reset"}, {"mode": "http", "status": 500}):
        hook, inst = hook_for(faults={"getStateInstance": fault})
        result = hook.get_state_instance()
        assert inst.token not in json.dumps(result.to_dict())
        assert inst.token not in repr(hook) and inst.token not in repr(hook.config)


def test_error_body_echoing_the_token_is_redacted(make_instance, sim):
    inst = make_instance("green_api_hooktest")
    body = f"bad path /waInstance{inst.instance_id}/getStateInstance/{inst.token}"
    sim.configure(inst.instance_id, faults={"getStateInstance": {"mode": "http", "status": 500, "body": body}})
    result = GreenApiHook("green_api_hooktest").get_state_instance()
    assert inst.token not in json.dumps(result.to_dict())
    assert result.detail == f"bad path /waInstance{inst.instance_id}/getStateInstance/***"


def test_test_connection_reports_the_state(hook_for):
    hook, inst = hook_for(state="authorized")
    ok, message = hook.test_connection()
    assert ok and f"Instance {inst.instance_id} answered" in message and "'authorized'" in message


def test_test_connection_reports_a_wrong_token(hook_for):
    hook, inst = hook_for(faults={"getStateInstance": {"mode": "http", "status": 401}})
    ok, message = hook.test_connection()
    assert not ok and message.startswith(f"Instance {inst.instance_id}: HTTP 401")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"host": "7105.api.greenapi.com"}, "host must be the instance's apiUrl"),
        ({"host": "ftp://x"}, "host must be the instance's apiUrl"),
        ({"login": "12a; DROP"}, "login must be the numeric idInstance, got '12a; DROP'"),
        ({"password": ""}, "password (apiTokenInstance) is empty"),
        ({"password": "abc/def"}, "contains characters a token never has"),
        ({"extra": {"state_timeout": -1}}, "extra state_timeout must be a number of seconds in (0, 600], got -1"),
        ({"extra": {"state_timeout": "soon"}}, "extra state_timeout must be a number of seconds in (0, 600], got 'soon'"),
    ],
)
def test_bad_connections_are_refused_by_name(monkeypatch, fields, named):
    conn = {"conn_type": "greenapi", "host": "https://api.green-api.com", "login": "1101", "password": "TOKEN-SECRET-1"}
    conn |= fields
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_BAD", json.dumps(conn))
    with pytest.raises(ConfigError) as err:
        GreenApiHook("green_api_bad").config  # noqa: B018
    assert "Connection green_api_bad" in str(err.value) and named in str(err.value)
    assert "TOKEN-SECRET-1" not in str(err.value)
    ok, message = GreenApiHook("green_api_bad").test_connection()
    assert not ok and named in message


# ---- what an authorized instance shows beyond its state (issue 15)

EXPECTED = {"webhookUrl": "https://bot.example.com/hook", "incomingWebhook": "yes", "webhookUrlToken": "tok-secret-77"}


def test_compare_settings_lists_the_drift_and_masks_the_secrets(hook_for):
    hook, _ = hook_for(settings={**EXPECTED, "incomingWebhook": "no", "webhookUrlToken": "other-secret-88"},
                       extra={"expected_settings": EXPECTED})  # fmt: skip
    result = hook.compare_settings()
    assert result.ok and result.data["webhookUrlToken"] == "***"
    assert [(d["key"], d["expected"], d["actual"], d["secret"]) for d in result.data["drift"]] == [
        ("incomingWebhook", "yes", "no", False), ("webhookUrlToken", None, None, True)]
    assert "secret-77" not in json.dumps(result.to_dict()) and "secret-88" not in json.dumps(result.to_dict())


@pytest.mark.parametrize(("actual", "ok", "said"), [
    (EXPECTED, True, "the 3 expected setting(s) match"),
    ({**EXPECTED, "webhookUrl": ""}, False, 'webhookUrl: expected "https://bot.example.com/hook", actual ""'),
    ({**EXPECTED, "webhookUrlToken": "changed"}, False, "webhookUrlToken: differs from the expected value (secret"),
])  # fmt: skip
def test_test_connection_compares_the_expected_settings(hook_for, actual, ok, said):
    hook, _ = hook_for(settings=actual, extra={"expected_settings": json.dumps(EXPECTED)})
    passed, message = hook.test_connection()
    assert passed is ok and said in message and "tok-secret" not in message


def test_test_connection_refuses_a_key_get_settings_does_not_return(hook_for):
    hook, _ = hook_for(extra={"expected_settings": {"incomingWebhook": "yes", "webhookUrll": "https://x"}})
    ok, said = hook.test_connection()
    assert not ok and said.endswith("extra expected_settings names key(s) that getSettings does not return: webhookUrll")


def test_a_connection_of_the_former_type_name_still_works(make_instance, sim, monkeypatch):
    """Connections saved as ``green_api`` before the type became ``greenapi`` keep working until the
    next start migrates them (scripts/import_env.py)."""
    inst = make_instance()
    conn = {"conn_type": "green_api", "host": sim.url, "login": inst.instance_id, "password": inst.token}
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_FORMER", json.dumps(conn))
    result = GreenApiHook("green_api_former").get_state_instance()
    assert result.ok and result.data["stateInstance"] == "authorized"

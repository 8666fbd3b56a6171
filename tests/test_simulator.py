"""The Green API simulator, as its HTTP clients see it."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from greenapi_simulator import GreenApiSimulator

INSTANCE = "1101000001"
TOKEN = "tok-3f9a7c1e5b2d4a6c8e0f"
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


@pytest.fixture
def sim() -> Iterator[GreenApiSimulator]:
    with GreenApiSimulator() as simulator:
        yield simulator


@pytest.fixture
def client() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # never route 127.0.0.1 through an environment proxy
    yield session
    session.close()


@pytest.fixture
def instance(sim: GreenApiSimulator) -> str:
    """An authorized instance without rate limits, so tests can call it freely."""
    sim.add_instance(INSTANCE, TOKEN, rate_limits=False)
    return INSTANCE


def api(sim: GreenApiSimulator, method: str, instance: str = INSTANCE, token: str = TOKEN) -> str:
    return f"{sim.url}/waInstance{instance}/{method}/{token}"


def state_of(client: requests.Session, sim: GreenApiSimulator) -> Any:
    response = client.get(api(sim, "getStateInstance"), timeout=5)
    assert response.status_code == 200
    return response.json()


# --------------------------------------------------------------------------- Green API answers


@pytest.mark.parametrize(
    "state",
    ["authorized", "notAuthorized", "blocked", "sleepMode", "starting", "yellowCard", "brandNewState"],
)
def test_get_state_instance_answers_the_configured_state(
    sim: GreenApiSimulator, client: requests.Session, instance: str, state: str
) -> None:
    sim.configure(instance, state=state)
    response = client.get(api(sim, "getStateInstance"), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"stateInstance": state}


def test_get_state_instance_answers_json_null_while_instance_is_created(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, state=None)
    response = client.get(api(sim, "getStateInstance"), timeout=5)
    assert response.status_code == 200
    assert response.text == "null"
    assert response.json() is None


def test_status_and_settings_follow_the_state(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    assert client.get(api(sim, "getStatusInstance"), timeout=5).json() == {"statusInstance": "online"}
    sim.configure(instance, state="blocked")
    assert client.get(api(sim, "getStatusInstance"), timeout=5).json() == {"statusInstance": "offline"}
    assert client.get(api(sim, "getWaSettings"), timeout=5).json() == {
        "avatar": "",
        "phone": INSTANCE,
        "stateInstance": "blocked",
        "deviceId": "sim",
    }
    settings = client.get(api(sim, "getSettings"), timeout=5).json()
    assert settings["webhookUrl"] == ""
    assert settings["stateWebhook"] == "no"
    assert settings["delaySendMessagesMilliseconds"] == 500
    assert "wid" in settings


@pytest.mark.parametrize(
    ("verb", "method", "instance_id", "token", "status"),
    [
        ("GET", "getStateInstance", INSTANCE, "wrong-token", 401),
        ("GET", "getStateInstance", "9999999999", TOKEN, 403),
        ("GET", "logout", INSTANCE, TOKEN, 404),
        ("GET", "noSuchMethod", INSTANCE, TOKEN, 404),
        ("POST", "getStateInstance", INSTANCE, TOKEN, 404),
        ("GET", "sendMessage", INSTANCE, TOKEN, 404),
    ],
)
def test_auth_and_routing_errors(
    sim: GreenApiSimulator,
    client: requests.Session,
    instance: str,
    verb: str,
    method: str,
    instance_id: str,
    token: str,
    status: int,
) -> None:
    response = client.request(verb, api(sim, method, instance_id, token), json={}, timeout=5)
    assert response.status_code == status
    assert isinstance(response.json(), dict)
    assert sim.reboots() == [] and sim.messages() == []


# --------------------------------------------------------------------------- reboot


def test_reboot_passes_through_starting_then_becomes_authorized(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, state="yellowCard", starting_seconds=0.5)
    response = client.get(api(sim, "reboot"), timeout=5)
    assert response.status_code == 200
    assert response.json() == {"isReboot": True}
    assert state_of(client, sim) == {"stateInstance": "starting"}
    sim.advance(0.4)
    assert state_of(client, sim) == {"stateInstance": "starting"}  # not yet: 0.4 of 0.5 s
    sim.advance(0.2)
    assert state_of(client, sim) == {"stateInstance": "authorized"}
    assert sim.instance(instance)["state"] == "authorized"
    assert [r["isReboot"] for r in sim.reboots(instance)] == [True]


def test_reboot_goes_to_the_configured_state_after_reboot(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, state="starting", state_after_reboot="notAuthorized")
    assert client.get(api(sim, "reboot"), timeout=5).json() == {"isReboot": True}
    assert state_of(client, sim) == {"stateInstance": "notAuthorized"}


def test_failed_reboot_changes_nothing(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, state="starting", reboot_result=False, starting_seconds=5)
    assert client.get(api(sim, "reboot"), timeout=5).json() == {"isReboot": False}
    assert state_of(client, sim) == {"stateInstance": "starting"}
    assert [r["isReboot"] for r in sim.reboots()] == [False]


def test_refused_reboot_is_not_listed_as_a_reboot(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    assert client.get(api(sim, "reboot", token="nope"), timeout=5).status_code == 401
    assert sim.reboots() == []


# --------------------------------------------------------------------------- sendMessage


def test_send_message_returns_an_id_and_stores_the_message(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    body = {"chatId": "33612345678@c.us", "message": "*Alert* instance down 🚨"}
    response = client.post(api(sim, "sendMessage"), json=body, timeout=5)
    assert response.status_code == 200
    id_message = response.json()["idMessage"]
    assert re.fullmatch(r"[0-9A-F]{20}", id_message)
    [stored] = sim.messages(instance)
    assert stored["chatId"] == body["chatId"]
    assert stored["message"] == body["message"]
    assert stored["idMessage"] == id_message
    assert stored["delivered"] is True


def test_send_message_through_a_yellow_card_instance_is_accepted_but_not_delivered(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, state="yellowCard")
    body = {"chatId": "120363025@g.us", "message": "hello"}
    response = client.post(api(sim, "sendMessage"), json=body, timeout=5)
    assert response.status_code == 200
    assert [m["delivered"] for m in sim.messages()] == [False]


@pytest.mark.parametrize(
    "body",
    [
        {"chatId": "+33612345678@c.us", "message": "x"},
        {"chatId": "33612345678", "message": "x"},
        {"chatId": "33612345678@c.us\n", "message": "x"},
        {"chatId": "abc@g.us", "message": "x"},
        {"chatId": "33612345678@c.us", "message": ""},
        {"chatId": "33612345678@c.us", "message": "x" * 20001},
        {"chatId": "33612345678@c.us"},
        {"message": "x"},
        ["not", "an", "object"],
        "not json at all",
    ],
)
def test_send_message_rejects_bad_request_data(
    sim: GreenApiSimulator, client: requests.Session, instance: str, body: Any
) -> None:
    if isinstance(body, str):
        response = client.post(api(sim, "sendMessage"), data=body, timeout=5)
    else:
        response = client.post(api(sim, "sendMessage"), json=body, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"message": "bad request data"}
    assert sim.messages() == []


def test_send_message_accepts_the_maximum_length(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    body = {"chatId": "33612345678@c.us", "message": "é" * 20000}
    assert client.post(api(sim, "sendMessage"), json=body, timeout=5).status_code == 200


# --------------------------------------------------------------------------- rate limits


def test_second_get_state_within_a_second_is_rate_limited(
    sim: GreenApiSimulator, client: requests.Session
) -> None:
    sim.add_instance(INSTANCE, TOKEN)
    assert client.get(api(sim, "getStateInstance"), timeout=5).status_code == 200
    refused = client.get(api(sim, "getStateInstance"), timeout=5)
    assert refused.status_code == 429
    assert refused.json() == {"message": "Too Many Requests"}
    # Limits are per method: another 1/s method is still allowed.
    assert client.get(api(sim, "getStatusInstance"), timeout=5).status_code == 200
    sim.advance(1.05)
    assert client.get(api(sim, "getStateInstance"), timeout=5).status_code == 200
    statuses = [r["status"] for r in sim.requests_log(method="getStateInstance")]
    assert statuses == [200, 429, 200]


def test_the_clock_moves_on_through_the_control_api(sim: GreenApiSimulator, client: requests.Session) -> None:
    sim.add_instance(INSTANCE, TOKEN)
    assert client.get(api(sim, "getStateInstance"), timeout=5).status_code == 200
    assert client.get(api(sim, "getStateInstance"), timeout=5).status_code == 429
    moved = client.post(f"{sim.url}/_sim/clock", json={"advance": 1.0}, timeout=5)
    assert moved.status_code == 200 and moved.json() == {"advanced": 1.0}
    assert client.get(api(sim, "getStateInstance"), timeout=5).status_code == 200
    for bad in ({"advance": -1}, {"advance": "soon"}, {"advance": True}, ["advance"]):
        refused = client.post(f"{sim.url}/_sim/clock", json=bad, timeout=5)
        assert refused.status_code == 400 and "advance: seconds must be a number" in refused.text, bad


def test_rate_limits_are_per_instance(sim: GreenApiSimulator, client: requests.Session) -> None:
    sim.add_instance("1", "t1")
    sim.add_instance("2", "t2")
    assert client.get(api(sim, "getStateInstance", "1", "t1"), timeout=5).status_code == 200
    assert client.get(api(sim, "getStateInstance", "2", "t2"), timeout=5).status_code == 200


def test_send_message_allows_a_burst_of_fifty(sim: GreenApiSimulator, client: requests.Session) -> None:
    sim.add_instance(INSTANCE, TOKEN)
    body = {"chatId": "33612345678@c.us", "message": "burst"}
    started = time.monotonic()
    statuses = [client.post(api(sim, "sendMessage"), json=body, timeout=5).status_code for _ in range(51)]
    assert time.monotonic() - started < 1.0, "the burst must fit in the 1 s window"
    assert statuses == [200] * 50 + [429]
    assert len(sim.messages()) == 50


def test_rate_limits_can_be_turned_off(sim: GreenApiSimulator, client: requests.Session) -> None:
    sim.add_instance(INSTANCE, TOKEN, rate_limits=False)
    assert {client.get(api(sim, "getStateInstance"), timeout=5).status_code for _ in range(5)} == {200}


# --------------------------------------------------------------------------- faults


def test_hang_makes_a_client_time_out(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, faults={"getStateInstance": {"mode": "hang"}})
    with pytest.raises(requests.Timeout):
        client.get(api(sim, "getStateInstance"), timeout=0.5)
    # Other requests are still served while the first one hangs.
    assert client.get(api(sim, "getStatusInstance"), timeout=5).status_code == 200
    [record] = sim.requests_log(method="getStateInstance")
    assert record["fault"] == "hang" and record["status"] is None


def test_reset_gives_a_connection_error(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, faults={"*": {"mode": "reset"}})
    with pytest.raises(requests.ConnectionError):
        client.get(api(sim, "getStateInstance"), timeout=5)
    [record] = sim.requests_log()
    assert record["fault"] == "reset" and record["status"] is None


@pytest.mark.parametrize(
    ("spec", "status", "text", "content_type"),
    [
        (
            {"status": 400, "body": "instance in starting process try later"},
            400,
            "instance in starting process try later",
            "application/json",
        ),
        ({"status": 401}, 401, '{"message": "Unauthorized"}', "application/json"),
        ({"status": 403}, 403, '{"message": "Forbidden"}', "application/json"),
        ({"status": 429}, 429, '{"message": "Too Many Requests"}', "application/json"),
        (
            {
                "status": 466,
                "body": {
                    "invokeStatus": {"status": "QUOTE_EXCEEDED", "description": "Monthly quota exceeded"},
                    "correspondentsStatus": {},
                },
            },
            466,
            '{"invokeStatus": {"status": "QUOTE_EXCEEDED", "description": "Monthly quota exceeded"}, '
            '"correspondentsStatus": {}}',
            "application/json",
        ),
        ({"status": 500}, 500, '{"message": "Internal Server Error"}', "application/json"),
        (
            {
                "status": 502,
                "body": "<html><body><h1>502 Bad Gateway</h1></body></html>",
                "content_type": "text/html",
            },
            502,
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            "text/html",
        ),
    ],
)
def test_http_fault_answers_the_given_status_and_body(
    sim: GreenApiSimulator,
    client: requests.Session,
    instance: str,
    spec: dict[str, Any],
    status: int,
    text: str,
    content_type: str,
) -> None:
    sim.configure(instance, faults={"getStateInstance": {"mode": "http", **spec}})
    response = client.get(api(sim, "getStateInstance"), timeout=5)
    assert response.status_code == status
    assert response.text == text
    assert response.headers["Content-Type"] == content_type
    [record] = sim.requests_log()
    assert record["status"] == status and record["fault"] == "http"


def test_http_fault_on_send_message_stores_nothing(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, faults={"sendMessage": {"mode": "http", "status": 500}})
    body = {"chatId": "33612345678@c.us", "message": "hi"}
    assert client.post(api(sim, "sendMessage"), json=body, timeout=5).status_code == 500
    assert sim.messages() == []
    assert sim.requests_log()[0]["body"] == body


def test_processed_hang_stores_the_message_although_the_client_times_out(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, faults={"sendMessage": {"mode": "hang", "process": True, "seconds": 5}})
    with pytest.raises(requests.Timeout):
        client.post(api(sim, "sendMessage"), json={"chatId": "1@c.us", "message": "hi"}, timeout=0.5)
    assert [m["message"] for m in sim.messages()] == ["hi"]


def test_malformed_answers_truncated_json(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, faults={"getStateInstance": {"mode": "malformed"}})
    response = client.get(api(sim, "getStateInstance"), timeout=5)
    assert response.status_code == 200
    assert response.text.startswith('{"stateInstance": "aut')
    with pytest.raises(ValueError):
        json.loads(response.text)


def test_delay_answers_normally_after_the_delay(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, faults={"getStateInstance": {"mode": "delay", "ms": 300}})
    started = time.monotonic()
    response = client.get(api(sim, "getStateInstance"), timeout=5)
    assert time.monotonic() - started >= 0.3
    assert response.json() == {"stateInstance": "authorized"}
    with pytest.raises(requests.Timeout):
        client.get(api(sim, "getStateInstance"), timeout=0.1)


def test_latency_is_added_to_every_answer(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, latency_ms=200)
    started = time.monotonic()
    assert client.get(api(sim, "getStatusInstance"), timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    assert client.get(f"{sim.url}/_sim/health", timeout=5).json() == {"ok": True}
    assert time.monotonic() - started < 0.2, "latency never applies to the control API"


def test_trickle_defeats_a_per_read_timeout_but_not_a_total_deadline(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, faults={"getStateInstance": {"mode": "trickle", "interval_ms": 25}})
    started = time.monotonic()
    response = client.get(api(sim, "getStateInstance"), timeout=0.3)
    elapsed = time.monotonic() - started
    assert response.json() == {"stateInstance": "authorized"}
    assert elapsed > 0.5, "each byte arrived within the read timeout, the whole body did not"

    sim.configure(instance, faults={"getStateInstance": {"mode": "trickle", "interval_ms": 100}})
    deadline = time.monotonic() + 0.5
    received = b""
    with client.get(api(sim, "getStateInstance"), timeout=5, stream=True) as streamed:
        for chunk in streamed.iter_content(chunk_size=1):
            received += chunk
            if time.monotonic() > deadline:
                break
    assert 0 < len(received) < len(b'{"stateInstance": "authorized"}')


def test_big_streams_a_large_valid_json_body(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, faults={"getStateInstance": {"mode": "big", "bytes": 300_000}})
    response = client.get(api(sim, "getStateInstance"), timeout=5)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == 300_000
    assert len(response.content) == 300_000
    assert response.json()["stateInstance"] == "authorized"


def test_non_utf8_body(sim: GreenApiSimulator, client: requests.Session, instance: str) -> None:
    sim.configure(instance, faults={"getStateInstance": {"mode": "non_utf8"}})
    response = client.get(api(sim, "getStateInstance"), timeout=5)
    assert response.status_code == 200
    with pytest.raises(UnicodeDecodeError):
        response.content.decode("utf-8")


def test_redirect_is_answered_without_being_followed(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(instance, faults={"getStateInstance": {"mode": "redirect"}})
    response = client.get(api(sim, "getStateInstance"), timeout=5, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "http://127.0.0.2:9/elsewhere"


def test_fault_with_times_expires(sim: GreenApiSimulator, client: requests.Session, instance: str) -> None:
    sim.configure(instance, faults={"getStateInstance": {"mode": "http", "status": 502, "times": 2}})
    statuses = [client.get(api(sim, "getStateInstance"), timeout=5).status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    assert sim.instance(instance)["faults"] == {}
    assert [r["fault"] for r in sim.requests_log()] == ["http", "http", None]


def test_method_specific_fault_wins_over_wildcard(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    sim.configure(
        instance,
        faults={"*": {"mode": "http", "status": 500}, "getStateInstance": {"mode": "http", "status": 502}},
    )
    assert client.get(api(sim, "getStateInstance"), timeout=5).status_code == 502
    assert client.get(api(sim, "getStatusInstance"), timeout=5).status_code == 500


# --------------------------------------------------------------------------- cycle


def test_cycle_phases_repeat(sim: GreenApiSimulator, client: requests.Session) -> None:
    sim.add_instance(
        INSTANCE,
        TOKEN,
        rate_limits=False,
        cycle=[
            {"seconds": 0.5, "state": "authorized"},
            {"seconds": 0.5, "faults": {"getStateInstance": {"mode": "http", "status": 502}}},
            {"seconds": 0.5, "state": "notAuthorized"},
        ],
    )

    def observed_after(seconds: float) -> Any:
        sim.advance(seconds)
        response = client.get(api(sim, "getStateInstance"), timeout=5)
        return response.json() if response.status_code == 200 else response.status_code

    assert observed_after(0.25) == {"stateInstance": "authorized"}
    assert observed_after(0.5) == 502  # at 0.75 s
    assert observed_after(0.5) == {"stateInstance": "notAuthorized"}  # at 1.25 s
    assert observed_after(0.5) == {"stateInstance": "authorized"}  # at 1.75 s: the cycle again


# --------------------------------------------------------------------------- records and secrecy


def test_records_and_logs_never_contain_the_token(
    sim: GreenApiSimulator, client: requests.Session, instance: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="greenapi_simulator")
    client.get(api(sim, "getStateInstance"), timeout=5)
    client.get(api(sim, "getStateInstance", token="wrong-" + TOKEN), timeout=5)
    client.get(api(sim, "reboot"), timeout=5)
    client.post(api(sim, "sendMessage"), json={"chatId": "1@c.us", "message": "m"}, timeout=5)
    client.get(f"{sim.url}/waInstance{INSTANCE}/getStateInstance/{TOKEN} HTTP/1.1 junk", timeout=5)

    records = [sim.requests_log(), sim.messages(), sim.reboots(), sim.instances()]
    controls = [client.get(f"{sim.url}/_sim/{path}", timeout=5).text for path in ("requests", "instances")]
    assert TOKEN not in json.dumps(records) + "".join(controls)
    assert TOKEN not in caplog.text
    assert "getStateInstance" in caplog.text
    assert [r["token_ok"] for r in sim.requests_log()][:4] == [True, False, True, True]
    assert sim.instance(instance)["token"] == "***"


def test_request_record_shape(sim: GreenApiSimulator, client: requests.Session, instance: str) -> None:
    client.post(api(sim, "sendMessage"), json={"chatId": "1@c.us", "message": "m"}, timeout=5)
    [record] = client.get(f"{sim.url}/_sim/requests", params={"instance": INSTANCE}, timeout=5).json()
    assert set(record) == {
        "seq",
        "at",
        "instance_id",
        "method",
        "http_method",
        "status",
        "token_ok",
        "body",
        "fault",
    }
    assert record["method"] == "sendMessage" and record["http_method"] == "POST"
    assert record["status"] == 200 and record["body"] == {"chatId": "1@c.us", "message": "m"}
    assert abs(record["at"] - time.time()) < 5
    [message] = client.get(f"{sim.url}/_sim/messages", params={"instance": INSTANCE}, timeout=5).json()
    assert message["seq"] == record["seq"]
    assert client.get(f"{sim.url}/_sim/messages", params={"instance": "other"}, timeout=5).json() == []


# --------------------------------------------------------------------------- control API


def test_control_api_creates_patches_and_deletes_instances(
    sim: GreenApiSimulator, client: requests.Session
) -> None:
    base = f"{sim.url}/_sim/instances/42"
    created = client.put(base, json={"token": "t42", "state": "blocked", "rate_limits": False}, timeout=5)
    assert created.status_code == 200
    assert created.json()["token"] == "***" and created.json()["effective_state"] == "blocked"
    assert client.get(api(sim, "getStateInstance", "42", "t42"), timeout=5).json() == {
        "stateInstance": "blocked"
    }

    patched = client.patch(base, json={"state": "sleepMode"}, timeout=5).json()
    assert patched["effective_state"] == "sleepMode" and patched["rate_limits"] is False
    assert [i["instance_id"] for i in client.get(f"{sim.url}/_sim/instances", timeout=5).json()] == ["42"]

    client.get(api(sim, "getStateInstance", "42", "t42"), timeout=5)
    assert client.delete(f"{sim.url}/_sim/requests", timeout=5).status_code == 200
    assert sim.requests_log() == []

    assert client.delete(base, timeout=5).status_code == 200
    assert client.get(api(sim, "getStateInstance", "42", "t42"), timeout=5).status_code == 403
    assert client.get(base, timeout=5).status_code == 404


def test_control_api_reset_forgets_everything(
    sim: GreenApiSimulator, client: requests.Session, instance: str
) -> None:
    client.get(api(sim, "getStateInstance"), timeout=5)
    assert client.post(f"{sim.url}/_sim/reset", timeout=5).status_code == 200
    assert sim.instances() == [] and sim.requests_log() == []


@pytest.mark.parametrize(
    ("verb", "path", "body", "status", "named"),
    [
        ("PUT", "/_sim/instances/7", {"state": "authorized"}, 400, "token"),
        (
            "PUT",
            "/_sim/instances/7",
            {"token": "t", "faults": {"getStateInstance": {"mode": "hnag"}}},
            400,
            "hnag",
        ),
        ("PUT", "/_sim/instances/7", {"token": "t", "latncy_ms": 5}, 400, "latncy_ms"),
        ("PUT", "/_sim/instances/7", {"token": "t", "latency_ms": -1}, 400, "latency_ms"),
        ("PUT", "/_sim/instances/7", {"token": "t", "queue_growth": 1.5}, 400, "queue_growth"),
        ("PUT", "/_sim/instances/7", {"token": "t", "socket_status": "up"}, 400, "socket_status"),
        (
            "PUT",
            "/_sim/instances/7",
            {"token": "t", "faults": {"getStatus": {"mode": "hang"}}},
            400,
            "getStatus",
        ),
        (
            "PUT",
            "/_sim/instances/7",
            {"token": "t", "faults": {"*": {"mode": "http", "status": 9}}},
            400,
            "status",
        ),
        ("PUT", "/_sim/instances/7", {"token": "t", "cycle": [{"state": "blocked"}]}, 400, "seconds"),
        ("PUT", "/_sim/instances/7", "{not json", 400, "JSON"),
        ("PATCH", "/_sim/instances/unknown", {"state": "blocked"}, 404, "unknown"),
        ("GET", "/_sim/instances/unknown", None, 404, "unknown"),
        ("DELETE", "/_sim/instances/unknown", None, 404, "unknown"),
        ("GET", "/_sim/nothing-here", None, 404, "nothing-here"),
        ("POST", "/_sim/health", None, 405, "POST"),
    ],
)
def test_control_api_errors_name_the_problem(
    sim: GreenApiSimulator, client: requests.Session, verb: str, path: str, body: Any, status: int, named: str
) -> None:
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, str) else {"json": body}
    response = client.request(verb, f"{sim.url}{path}", timeout=5, **kwargs)
    assert response.status_code == status
    assert named in response.json()["error"]
    assert sim.instances() == []


def test_in_process_configuration_errors_raise(sim: GreenApiSimulator) -> None:
    with pytest.raises(ValueError, match="hnag"):
        sim.add_instance(INSTANCE, TOKEN, faults={"reboot": {"mode": "hnag"}})
    with pytest.raises(KeyError):
        sim.configure("unknown", state="blocked")


# --------------------------------------------------------------------------- partner API


PARTNER_TOKEN = "ptok-9c41d7e2a8b64f03"
UTC3 = timezone(timedelta(hours=3))  # the partner API's naive times are UTC+3 wall time
NAIVE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
NOT_DELETED = "0001-01-01T00:00:00"
LISTED_TYPES: dict[str, type] = {
    "idInstance": int,
    "name": str,
    "typeInstance": str,
    "typeAccount": str,
    "partnerUserUiid": str,
    "timeCreated": str,
    "timeDeleted": str,
    "apiTokenInstance": str,
    "deleted": bool,
    "tariff": str,
    "isFree": bool,
    "isPartner": bool,
    "expirationDate": str,
    "isExpired": bool,
}


def partner_api(sim: GreenApiSimulator, method: str, token: str = PARTNER_TOKEN) -> str:
    return f"{sim.url}/partner/{method}/{token}"


def listing(client: requests.Session, sim: GreenApiSimulator) -> list[dict[str, Any]]:
    response = client.get(partner_api(sim, "getInstances"), timeout=5)
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_get_instances_lists_the_accounts_instances_with_the_vendors_fields(
    sim: GreenApiSimulator, client: requests.Session
) -> None:
    ids = sim.add_partner(PARTNER_TOKEN, count=2, id_start=1107000001)
    assert ids == ["1107000001", "1107000002"]
    sim.delete_partner_instance(PARTNER_TOKEN, ids[1])

    live, gone = listing(client, sim)
    for row in (live, gone):
        assert {key: type(value) for key, value in row.items()} == LISTED_TYPES
        assert all(NAIVE_TIME.fullmatch(row[key]) for key in ("timeCreated", "timeDeleted", "expirationDate"))
    assert (live["idInstance"], live["name"], gone["idInstance"], gone["name"]) == (
        1107000001, "Client 001", 1107000002, "Client 002"
    )  # fmt: skip
    plan = (live["typeInstance"], live["tariff"], live["isFree"], live["isPartner"])
    assert plan == ("whatsapp", "Business", False, True)
    assert (live["deleted"], live["timeDeleted"], live["isExpired"]) == (False, NOT_DELETED, False)
    assert gone["deleted"] is True and gone["timeDeleted"] != NOT_DELETED
    created = datetime.fromisoformat(live["timeCreated"])
    assert abs(created - datetime.now(UTC3).replace(tzinfo=None)) < timedelta(minutes=1)
    assert datetime.fromisoformat(live["expirationDate"]) - created == timedelta(days=30)
    # The listed token is the instance's own.
    state = client.get(api(sim, "getStateInstance", ids[0], live["apiTokenInstance"]), timeout=5)
    assert state.json() == {"stateInstance": "authorized"}


def test_create_instance_answers_a_token_that_works_on_the_instance_routes(
    sim: GreenApiSimulator, client: requests.Session
) -> None:
    sim.add_partner(PARTNER_TOKEN, id_start=1107000001, rate_limits=False)
    hook = "https://bot.example.com/hook"
    body = {"name": "Shop", "webhookUrl": hook}
    response = client.post(partner_api(sim, "createInstance"), json=body, timeout=5)
    assert response.status_code == 200
    created = response.json()
    assert created["idInstance"] == 1107000001 and created["typeInstance"] == "whatsapp"
    assert created["apiUrl"] == created["mediaUrl"] == sim.url

    token = created["apiTokenInstance"]
    assert client.get(api(sim, "getStateInstance", "1107000001", token), timeout=5).json() == {
        "stateInstance": "authorized"
    }
    assert client.get(api(sim, "getSettings", "1107000001", token), timeout=5).json()["webhookUrl"] == hook
    [row] = listing(client, sim)
    assert (row["name"], row["apiTokenInstance"], row["deleted"]) == ("Shop", token, False)


def test_delete_instance_account_keeps_it_listed_as_deleted(
    sim: GreenApiSimulator, client: requests.Session
) -> None:
    [instance_id] = sim.add_partner(PARTNER_TOKEN, count=1)
    [row] = listing(client, sim)
    sim.advance(3600)
    delete = partner_api(sim, "deleteInstanceAccount")
    response = client.post(delete, json={"idInstance": int(instance_id)}, timeout=5)
    assert response.status_code == 200 and response.json() == {"deleteInstanceAccount": True}

    [deleted] = listing(client, sim)
    assert deleted["deleted"] is True
    lifetime = datetime.fromisoformat(deleted["timeDeleted"]) - datetime.fromisoformat(row["timeCreated"])
    assert timedelta(hours=1) <= lifetime < timedelta(hours=1, minutes=1)  # the simulator's clock
    state = api(sim, "getStateInstance", instance_id, row["apiTokenInstance"])
    assert client.get(state, timeout=5).status_code == 403
    # Deleted already, or never there: the vendor's "Not found", in a 200.
    for id_instance in (int(instance_id), 1234567890):
        again = client.post(delete, json={"idInstance": id_instance}, timeout=5)
        assert (again.status_code, again.json()) == (200, {"code": 404, "description": "Not found"})
    bad = client.post(delete, json={"idInstance": "soon"}, timeout=5)
    assert bad.status_code == 400 and "idInstance" in bad.json()["message"]


def test_expiry_and_the_three_months_of_deleted_instances_follow_the_simulators_clock(
    sim: GreenApiSimulator, client: requests.Session
) -> None:
    ids = sim.add_partner(PARTNER_TOKEN, count=2)
    created = datetime.fromisoformat(listing(client, sim)[0]["timeCreated"])
    sim.set_partner_instance(ids[0], expiration_date=(created + timedelta(days=2)).isoformat())
    sim.delete_partner_instance(PARTNER_TOKEN, ids[1])
    for _ in range(2):
        sim.advance(86400)
    assert [row["isExpired"] for row in listing(client, sim)] == [True, False]
    for _ in range(89):
        sim.advance(86400)
    assert [row["idInstance"] for row in listing(client, sim)] == [int(ids[0])]  # deleted 91 days ago


@pytest.mark.parametrize(
    ("verb", "method", "body"),
    [
        ("GET", "getInstances", None),
        ("POST", "createInstance", {}),
        ("POST", "deleteInstanceAccount", {"idInstance": 1107000001}),
    ],
)
def test_a_wrong_partner_token_is_unauthorized(
    sim: GreenApiSimulator, client: requests.Session, verb: str, method: str, body: Any
) -> None:
    sim.add_partner(PARTNER_TOKEN, count=1, id_start=1107000001)
    response = client.request(verb, partner_api(sim, method, "wrong-" + PARTNER_TOKEN), json=body, timeout=5)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert [row["deleted"] for row in listing(client, sim)] == [False]
    assert sim.requests_log(method=method)[0]["token_ok"] is False


@pytest.mark.parametrize(
    ("spec", "failure"),
    [
        ({"mode": "http", "status": 500}, 500),
        ({"mode": "http", "status": 429}, 429),
        ({"mode": "malformed"}, ValueError),
        ({"mode": "hang", "seconds": 2}, requests.Timeout),
        ({"mode": "reset"}, requests.ConnectionError),
    ],
)
def test_a_scripted_get_instances_failure_then_a_normal_answer(
    sim: GreenApiSimulator, client: requests.Session, spec: dict[str, Any], failure: Any
) -> None:
    sim.add_partner(PARTNER_TOKEN, count=1, faults={"getInstances": {**spec, "times": 1}})
    if isinstance(failure, int):
        assert client.get(partner_api(sim, "getInstances"), timeout=5).status_code == failure
    else:
        with pytest.raises(failure):
            client.get(partner_api(sim, "getInstances"), timeout=0.2).json()
    assert len(listing(client, sim)) == 1
    failed, answered = sim.requests_log(method="getInstances")
    assert failed["fault"] == spec["mode"] and (answered["fault"], answered["status"]) == (None, 200)


def test_a_failed_create_instance_creates_nothing_unless_the_fault_processes_it(
    sim: GreenApiSimulator, client: requests.Session
) -> None:
    sim.add_partner(PARTNER_TOKEN, faults={"createInstance": {"mode": "http", "status": 500, "times": 1}})
    create = partner_api(sim, "createInstance")
    assert client.post(create, json={"name": "lost"}, timeout=5).status_code == 500
    assert listing(client, sim) == []

    processed_hang = {"mode": "hang", "seconds": 2, "process": True, "times": 1}
    sim.patch_partner(PARTNER_TOKEN, {"faults": {"*": processed_hang}})
    with pytest.raises(requests.Timeout):
        client.post(create, json={"name": "late"}, timeout=0.2)
    assert [row["name"] for row in listing(client, sim)] == ["late"]  # created although the client gave up


def test_the_partner_token_never_appears_in_records_or_logs(
    sim: GreenApiSimulator, client: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="greenapi_simulator")
    control = f"{sim.url}/_sim/partners/{PARTNER_TOKEN}"
    client.put(control, json={"count": 1}, timeout=5)
    client.get(partner_api(sim, "getInstances"), timeout=5)
    created = client.post(partner_api(sim, "createInstance"), json={"name": "n"}, timeout=5).json()
    client.post(
        partner_api(sim, "deleteInstanceAccount"), json={"idInstance": created["idInstance"]}, timeout=5
    )
    client.get(partner_api(sim, "getInstances", "wrong-" + PARTNER_TOKEN), timeout=5)
    client.get(partner_api(sim, "noSuchMethod"), timeout=5)

    answers = [
        client.get(f"{sim.url}/_sim/requests", timeout=5).text,
        client.get(control, timeout=5).text,
        client.get(f"{control}/nowhere", timeout=5).text,  # 404, naming the route
        client.post(control, timeout=5).text,  # 405, naming the route
    ]
    assert PARTNER_TOKEN not in json.dumps(sim.requests_log()) + "".join(answers)
    assert PARTNER_TOKEN not in caplog.text
    assert "partner/getInstances" in caplog.text and "/_sim/partners/***" in caplog.text
    records = sim.requests_log()
    assert [(r["method"], r["status"], r["token_ok"]) for r in records] == [
        ("getInstances", 200, True),
        ("createInstance", 200, True),
        ("deleteInstanceAccount", 200, True),
        ("getInstances", 401, False),
        ("noSuchMethod", 404, True),
    ]
    assert {r["instance_id"] for r in records} == {None}


def test_control_api_creates_scripts_and_deletes_a_partner_account(
    sim: GreenApiSimulator, client: requests.Session
) -> None:
    base = f"{sim.url}/_sim/partners/{PARTNER_TOKEN}"
    config = {"count": 2, "id_start": 1107000001, "state": "notAuthorized", "rate_limits": False}
    view = client.put(base, json=config, timeout=5).json()
    assert view["token"] == "***" and {row["apiTokenInstance"] for row in view["instances"]} == {"***"}
    assert [row["idInstance"] for row in view["instances"]] == [1107000001, 1107000002]
    assert view["instance_config"] == {"state": "notAuthorized", "rate_limits": False}
    assert client.get(base, timeout=5).json() == view
    tokens = {row["idInstance"]: row["apiTokenInstance"] for row in listing(client, sim)}
    state = api(sim, "getStateInstance", "1107000001", tokens[1107000001])
    assert client.get(state, timeout=5).json() == {"stateInstance": "notAuthorized"}

    faults = {"getInstances": {"mode": "http", "status": 500, "times": 1}}
    assert client.patch(base, json={"faults": faults}, timeout=5).json()["faults"] == faults
    assert client.get(partner_api(sim, "getInstances"), timeout=5).status_code == 500

    one = f"{base}/instances/1107000001"
    fields = {"name": "Shop", "tariff": "Partner", "expiration_date": "2020-01-01"}
    row = client.patch(one, json=fields, timeout=5).json()
    assert (row["name"], row["tariff"], row["expirationDate"], row["isExpired"]) == (
        "Shop", "Partner", "2020-01-01T00:00:00", True
    )  # fmt: skip
    assert client.patch(one, json={"is_expired": False}, timeout=5).json()["isExpired"] is False
    gone = client.patch(one, json={"deleted": True}, timeout=5).json()
    assert gone["deleted"] is True and gone["timeDeleted"] != NOT_DELETED
    assert client.get(state, timeout=5).status_code == 403
    back = client.patch(one, json={"deleted": False}, timeout=5).json()
    assert (back["deleted"], back["timeDeleted"]) == (False, NOT_DELETED)
    assert client.get(state, timeout=5).json() == {"stateInstance": "notAuthorized"}

    assert client.delete(base, timeout=5).status_code == 200
    assert client.get(base, timeout=5).status_code == 404
    assert client.get(partner_api(sim, "getInstances"), timeout=5).status_code == 401
    assert client.get(state, timeout=5).status_code == 403
    assert sim.instances() == []


@pytest.mark.parametrize(
    ("verb", "path", "body", "status", "named"),
    [
        ("PUT", "", {"count": -1}, 400, "count"),
        ("PUT", "", {"cuont": 3}, 400, "cuont"),
        ("PUT", "", {"token": "t"}, 400, "token"),
        ("PUT", "", {"type_instance": ""}, 400, "type_instance"),
        ("PUT", "", {"latency_ms": -1}, 400, "latency_ms"),
        ("PUT", "", {"faults": {"getInstance": {"mode": "http"}}}, 400, "getInstance"),
        ("PUT", "", {"faults": {"getInstances": {"mode": "hnag"}}}, 400, "hnag"),
        ("PUT", "", {"faults": {"getInstances": {"mode": "http", "status": 9}}}, 400, "status"),
        ("PUT", "", "{not json", 400, "JSON"),
        ("PATCH", "", {"count": 3}, 400, "count"),
        ("PATCH", "/instances/1107000001", {"nmae": "x"}, 400, "nmae"),
        (
            "PATCH",
            "/instances/1107000001",
            {"expiration_date": "2025-01-01T00:00:00+03:00"},
            400,
            "expiration_date",
        ),
        ("PATCH", "/instances/1107000001", {"expiration_date": "soon"}, 400, "expiration_date"),
        ("PATCH", "/instances/1107000001", {"deleted": "yes"}, 400, "deleted"),
        ("PATCH", "/instances/1107000001", {"is_expired": 1}, 400, "is_expired"),
        ("PATCH", "/instances/1107000009", {"name": "x"}, 404, "1107000009"),
        ("GET", "/instances/1107000001", None, 405, "GET"),
        ("POST", "", None, 405, "POST"),
    ],
)
def test_partner_control_api_errors_name_the_problem(
    sim: GreenApiSimulator, client: requests.Session, verb: str, path: str, body: Any, status: int, named: str
) -> None:
    sim.add_partner(PARTNER_TOKEN, count=1, id_start=1107000001)
    before = sim.partner(PARTNER_TOKEN)
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, str) else {"json": body}
    response = client.request(verb, f"{sim.url}/_sim/partners/{PARTNER_TOKEN}{path}", timeout=5, **kwargs)
    assert response.status_code == status
    assert named in response.json()["error"]
    assert sim.partner(PARTNER_TOKEN) == before


@pytest.mark.parametrize("verb", ["GET", "PATCH", "DELETE"])
def test_an_unknown_partner_account_is_not_found(
    sim: GreenApiSimulator, client: requests.Session, verb: str
) -> None:
    response = client.request(verb, f"{sim.url}/_sim/partners/{PARTNER_TOKEN}", json={}, timeout=5)
    assert response.status_code == 404 and "unknown partner account" in response.json()["error"]


def test_partner_accounts_in_process(sim: GreenApiSimulator) -> None:
    assert sim.add_partner(PARTNER_TOKEN, count=2, id_start=1107000001) == ["1107000001", "1107000002"]
    hook = "https://bot.example.com/hook"
    created = sim.create_partner_instance(PARTNER_TOKEN, name="Shop", webhookUrl=hook)
    assert (created["idInstance"], created["typeInstance"], created["apiUrl"]) == (
        1107000003,
        "whatsapp",
        sim.url,
    )
    assert sim.instance("1107000003")["settings"] == {"webhookUrl": hook}
    with pytest.raises(ValueError, match="id_instance"):
        sim.create_partner_instance(PARTNER_TOKEN, id_instance=1107000001)
    # Another account's ids never clash with this one's.
    assert sim.add_partner("second-partner", count=1, id_start=1107000001) == ["1107000004"]

    assert sim.delete_partner_instance(PARTNER_TOKEN, "1107000003") is True
    assert sim.delete_partner_instance(PARTNER_TOKEN, "1107000003") is False
    with pytest.raises(KeyError):
        sim.instance("1107000003")
    assert sim.set_partner_instance("1107000003", deleted=False)["deleted"] is False
    assert sim.instance("1107000003")["settings"] == {"webhookUrl": hook}  # back, as it was
    with pytest.raises(ValueError, match="tariff"):
        sim.set_partner_instance("1107000001", tariff=3)
    with pytest.raises(KeyError):
        sim.set_partner_instance(INSTANCE, name="not a partner's")
    with pytest.raises(KeyError):
        sim.create_partner_instance("no-such-partner")

    sim.remove_instance("1107000002")  # gone from the simulator: gone from the listing too
    assert [row["idInstance"] for row in sim.partner(PARTNER_TOKEN)["instances"]] == [1107000001, 1107000003]
    sim.reset()
    with pytest.raises(KeyError):
        sim.partner(PARTNER_TOKEN)
    assert sim.instances() == []


# --------------------------------------------------------------------------- lifecycle and CLI


def test_stop_returns_quickly_while_a_request_hangs(client: requests.Session) -> None:
    sim = GreenApiSimulator().start()
    sim.add_instance(INSTANCE, TOKEN, faults={"getStateInstance": {"mode": "hang"}})
    errors: list[BaseException] = []

    def hanging_call() -> None:
        try:
            client.get(api(sim, "getStateInstance"), timeout=30)
        except requests.RequestException as exc:
            errors.append(exc)

    caller = threading.Thread(target=hanging_call)
    caller.start()
    sim.wait_for_requests(1)
    url = sim.url
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 2
    caller.join(timeout=2)
    assert not caller.is_alive() and len(errors) == 1
    with pytest.raises(requests.ConnectionError):
        client.get(f"{url}/_sim/health", timeout=1)


def test_cli_serves_until_terminated() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(PLUGINS),
        "GREENAPI_DEMO_TOKEN_9": "demo-secret-9",
        "GREENAPI_DEMO_PARTNER_TOKEN": "demo-partner-secret",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenapi_simulator",
            "--port",
            "0",
            "--instance",
            "77:cli-secret-token",
            "--partner",
            "cli-partner-secret:2",
            "--demo",
            "--verbose",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first_line)
        assert match, first_line
        url = match.group(0)
        session = requests.Session()
        session.trust_env = False
        assert session.get(f"{url}/_sim/health", timeout=5).json() == {"ok": True}
        assert session.get(f"{url}/waInstance77/getStateInstance/cli-secret-token", timeout=5).json() == {
            "stateInstance": "authorized"
        }
        instances = {i["instance_id"]: i for i in session.get(f"{url}/_sim/instances", timeout=5).json()}
        partner_ids = {"1101100001", "1101100002", "1101100003", "1103000001", "1103000002"}
        assert set(instances) == {"77", "1101000001", "1101000002", "1101000009"} | partner_ids
        assert instances["1101000002"]["cycle"] is not None
        assert session.get(f"{url}/waInstance1101000009/getStateInstance/demo-secret-9", timeout=5).ok
        assert len(session.get(f"{url}/partner/getInstances/cli-partner-secret", timeout=5).json()) == 2
        demo = session.get(f"{url}/partner/getInstances/demo-partner-secret", timeout=5).json()
        assert [(row["idInstance"], row["name"], row["apiTokenInstance"]) for row in demo] == [
            (1101100001, "Client 001", "demo-token-p1"),
            (1101100002, "Client 002", "demo-token-p2"),
            (1101100003, "Client 003", "demo-token-p3"),
        ]
        terms = [
            datetime.fromisoformat(r["expirationDate"]) - datetime.fromisoformat(r["timeCreated"])
            for r in demo
        ]
        assert terms[:2] == [timedelta(days=30)] * 2
        assert timedelta(days=2) - terms[2] < timedelta(seconds=5)  # the last one expires in 2 days
        session.close()
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=5)
    assert process.returncode == 0, stderr
    output = first_line + stdout + stderr
    assert "1101000002" in output
    assert "getStateInstance" in stderr  # --verbose logged the request ...
    for secret in (
        "cli-secret-token",
        "demo-secret-9",
        "demo-token-1",
        "cli-partner-secret",
        "demo-partner-secret",
    ):
        assert secret not in output  # ... but never a token

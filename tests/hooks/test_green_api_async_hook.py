"""The methods the next checks build on, and GreenApiAsyncHook: against the simulator over HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from greenapi.domain.results import ResultKind
from greenapi.hooks.green_api import GreenApiAsyncHook, GreenApiHook

CONN = "green_api_asynctest"


@pytest.fixture
def inst(make_instance):
    def build(**config):
        return make_instance(CONN, **config)

    return build


def test_status_settings_and_queue(inst):
    made = inst(state="authorized", queue_length=3,
                settings={"webhookUrl": "https://bot.example.com/hook", "webhookUrlToken": "TOKEN-SECRET-0123456789abcdef",
                          "proxyInstance": "10.0.0.1:3128:user:pass"})  # fmt: skip
    hook = GreenApiHook(CONN)
    assert hook.get_status_instance().data == {"statusInstance": "online"}
    settings = hook.get_settings()
    assert settings.ok and settings.data["webhookUrl"] == "https://bot.example.com/hook"
    assert settings.data["wid"] == f"{made.instance_id}@c.us"
    # Secrets never leave the hook: not in data, not in what a task would return or log.
    assert settings.data["webhookUrlToken"] == "***" and settings.data["proxyInstance"] == "***"
    assert "TOKEN-SECRET" not in json.dumps(settings.to_dict()) and "user:pass" not in json.dumps(settings.to_dict())
    queue = hook.show_messages_queue()
    assert queue.ok and [m["type"] for m in queue.data["messages"]] == ["sendMessage"] * 3


def test_empty_secret_settings_stay_empty(inst):
    inst()
    data = GreenApiHook(CONN).get_settings().data
    assert (data["webhookUrlToken"], data["proxyInstance"]) == ("", "")


def test_async_hook_reads_like_the_sync_one(inst):
    inst(state="notAuthorized")

    async def calls():
        hook = GreenApiAsyncHook(CONN)
        return await hook.get_state_instance(), await hook.get_status_instance(), await hook.show_messages_queue()

    state, status, queue = asyncio.run(calls())
    assert (state.kind, state.http_status, state.data) == (ResultKind.OK, 200, {"stateInstance": "notAuthorized"})
    assert status.data == {"statusInstance": "offline"} and queue.data == {"messages": []}


@pytest.mark.parametrize(
    ("fault", "kind", "error"),
    [
        ({"mode": "hang", "seconds": 5}, ResultKind.TIMEOUT, "Connection timeout"),
        ({"mode": "http", "status": 500}, ResultKind.HTTP_ERROR, "HTTP 500"),
        ({"mode": "malformed"}, ResultKind.MALFORMED, "Malformed answer: body is not valid JSON"),
        ({"mode": "reset"}, ResultKind.CONNECTION_ERROR, "Connection error"),
    ],
)
def test_async_hook_failures_are_results(inst, fault, kind, error):
    inst(faults={"getStateInstance": fault})
    started = time.monotonic()
    result = asyncio.run(GreenApiAsyncHook(CONN).get_state_instance())
    assert result.kind is kind and result.error.startswith(error), result
    # state_timeout is 1 s in the test connections: well before the 5 s hang ends, with room for a
    # loaded machine (four test processes beside Airflow's services).
    assert time.monotonic() - started < 3.0


def test_async_hook_never_shows_the_token(inst, sim):
    made = inst()
    body = f"bad path /waInstance{made.instance_id}/getStateInstance/{made.token}"
    sim.configure(made.instance_id, faults={"getStateInstance": {"mode": "http", "status": 401, "body": body}})
    result = asyncio.run(GreenApiAsyncHook(CONN).get_state_instance())
    assert result.http_status == 401 and made.token not in json.dumps(result.to_dict())
    assert result.detail == f"bad path /waInstance{made.instance_id}/getStateInstance/***"


def test_async_hook_keeps_the_rate_limit(inst, sim):
    """Several waits on one instance in one triggerer: 1 getStateInstance per second, no 429."""
    made = inst()

    async def many():
        return await asyncio.gather(*(GreenApiAsyncHook(CONN).get_state_instance() for _ in range(4)))

    started = time.monotonic()
    results = asyncio.run(many())
    assert all(r.ok for r in results), results
    assert time.monotonic() - started >= 3.0
    assert len(sim.requests_log(made.instance_id, "getStateInstance")) == 4


def test_the_async_hook_has_every_call_of_the_sync_hook():
    """What one can do with GreenApiHook, one can await with GreenApiAsyncHook (``config`` is
    ``aconfig`` there: reading a connection in the triggerer is a call)."""
    import inspect

    from airflow.sdk import BaseHook

    def own(hook: type) -> set[str]:
        return {name for name in dir(hook) if not name.startswith("_") and name not in dir(BaseHook)
                and callable(getattr(hook, name))}  # fmt: skip

    sync_calls = own(GreenApiHook) - {"config", "pace"}
    missing = {name for name in sync_calls if not inspect.iscoroutinefunction(getattr(GreenApiAsyncHook, name, None))}
    assert missing == {"use_connection"}  # loading a given connection waits on nothing: a plain method in both
    assert inspect.iscoroutinefunction(GreenApiAsyncHook.aconfig)
    assert callable(GreenApiAsyncHook.use_connection) and callable(GreenApiAsyncHook.test_connection)


def test_the_async_hook_compares_settings_and_tests_the_connection(inst):
    made = inst(settings={"webhookUrl": "https://bot.example.com/other", "webhookUrlToken": "TOKEN-SECRET-0123456789abcdef"},
                extra={"expected_settings": json.dumps({"webhookUrl": "https://bot.example.com/hook",
                                                        "webhookUrlToken": "TOKEN-SECRET-0123456789abcdef"})})  # fmt: skip

    async def both() -> tuple:
        hook = GreenApiAsyncHook(CONN)
        return await hook.compare_settings(), await hook.test_connection()

    compared, (ok, said) = asyncio.run(both())
    assert compared.data["drift"] == [{"key": "webhookUrl", "expected": "https://bot.example.com/hook",
                                       "actual": "https://bot.example.com/other", "secret": False, "missing": False}]  # fmt: skip
    assert "TOKEN-SECRET" not in json.dumps(compared.to_dict())
    in_ms = re.compile(r"answered in \d+ ms")
    # The sync hook paces its own calls, not the async hook's: the instance's 1 request a second is
    # kept by waiting out the second of the async hook's last call.
    time.sleep(1.1)
    sync_ok, sync_said = GreenApiHook(CONN).test_connection()
    assert (ok, in_ms.sub("", said)) == (sync_ok, in_ms.sub("", sync_said))  # the same verdict as the sync hook's
    assert not ok and said.startswith(f"Instance {made.instance_id} answered in ")
    assert said.endswith('settings differ from expected_settings: webhookUrl: expected "https://bot.example.com/hook", '
                         'actual "https://bot.example.com/other"')  # fmt: skip

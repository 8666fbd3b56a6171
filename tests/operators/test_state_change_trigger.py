"""GreenApiStateChangeTrigger (issue 27) alone, against the simulator over HTTP: it fires on a
change of state or reachability, never for a state that lasts, and survives what instances do."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import greenapi
from greenapi.triggers.green_api import GreenApiStateChangeTrigger

ROUND = 1.0  # seconds between rounds (each instance's calls are paced ~1.25 s apart anyway)


class Watch:
    """The trigger's event stream, read round by round in one event loop."""

    def __init__(self, trigger: GreenApiStateChangeTrigger) -> None:
        self.events: AsyncIterator[Any] = trigger.run()

    async def next(self, within: float) -> dict[str, Any] | None:
        """The next event's payload, or None when none comes within ``within`` seconds."""
        try:
            event = await asyncio.wait_for(asyncio.shield(self._pending()), within)
        except TimeoutError:
            return None
        self._task = None
        return event.payload

    def _pending(self) -> asyncio.Task[Any]:
        if getattr(self, "_task", None) is None:
            self._task = asyncio.ensure_future(anext(self.events))
        return self._task


def changes_of(payload: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    return [(c["instance_id"], c["old"], c["new"]) for c in (payload or {}).get("changes", [])]


def test_it_fires_on_a_change_not_on_a_lasting_state_and_again_on_the_way_back(make_instance, sim):
    shop = make_instance("green_api_shop")
    other = make_instance("green_api_other", state="notAuthorized")  # lasting from the start: never an event

    async def scenario() -> list[Any]:
        watch = Watch(GreenApiStateChangeTrigger(green_api_conn_ids=["green_api_shop", "green_api_other"],
                                                 watch_seconds=ROUND))  # fmt: skip
        seen = [await watch.next(within=3 * ROUND)]  # the first round only sets what is known
        sim.configure(shop.instance_id, state="notAuthorized")
        seen.append(await watch.next(within=4 * ROUND))
        seen.append(await watch.next(within=3 * ROUND))  # still notAuthorized: nothing
        sim.configure(shop.instance_id, faults={"*": {"mode": "hang", "seconds": 5}})
        seen.append(await watch.next(within=6 * ROUND))  # no answer within the connection's 1 s
        sim.configure(shop.instance_id, state="authorized", faults={})
        seen.append(await watch.next(within=6 * ROUND))
        return seen

    first, gone, lasting, hung, back = asyncio.run(scenario())
    assert first is None and lasting is None
    assert changes_of(gone) == [(shop.instance_id, "authorized", "notAuthorized")]
    assert changes_of(hung) == [(shop.instance_id, "notAuthorized", "no answer")]
    assert changes_of(back) == [(shop.instance_id, "no answer", "authorized")]
    assert gone["watched"] == 2 and gone["changes"][0]["conn_id"] == "green_api_shop"
    assert other.instance_id not in json.dumps([gone, hung, back])
    assert shop.token not in json.dumps([gone, hung, back])


def test_a_429_a_wrong_token_and_a_missing_connection_change_nothing_and_crash_nothing(make_instance, sim, monkeypatch):
    busy = make_instance("green_api_busy")
    wrong = make_instance("green_api_wrong")
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_WRONG", json.dumps(
        {"conn_type": "greenapi", "host": sim.url, "login": wrong.instance_id, "password": "TOKEN-SECRET-wrongwrongwrong0",
         "extra": {"state_timeout": 1}}))  # fmt: skip

    async def scenario() -> list[Any]:
        watch = Watch(GreenApiStateChangeTrigger(
            green_api_conn_ids=["green_api_busy", "green_api_wrong", "green_api_missing"], watch_seconds=ROUND))
        seen = [await watch.next(within=3 * ROUND)]
        sim.configure(busy.instance_id, faults={"getWaSettings": {"mode": "http", "status": 429, "times": 2}})
        seen.append(await watch.next(within=5 * ROUND))  # rate limited twice: the state is kept, no event
        sim.configure(busy.instance_id, state="blocked")
        seen.append(await watch.next(within=4 * ROUND))
        return seen

    first, limited, blocked = asyncio.run(scenario())
    assert first is None and limited is None
    # The wrong token's lasting refusal and the missing connection never fired; the others are still watched.
    assert changes_of(blocked) == [(busy.instance_id, "authorized", "blocked")]
    assert sim.requests_log(wrong.instance_id, "getWaSettings")  # it was looked at, and refused


CHECKS = """
from greenapi.hooks.green_api import GreenApiHook
results = [GreenApiHook("green_api_shop").get_state_instance() for _ in range(3)]
raise SystemExit(0 if all(r.ok for r in results) else 1)
"""


@pytest.mark.parametrize(("state_method", "limited"), [("getWaSettings", False), ("getStateInstance", True)])
def test_by_default_the_watch_leaves_getstateinstance_to_the_checks(make_instance, sim, state_method, limited):
    """The health check calls getStateInstance from another process (a task), paced 1.25 s apart;
    a watch looking every second with the same method lands in the same second, and one of them
    gets a 429."""
    shop = make_instance("green_api_shop")
    plugins = str(Path(greenapi.__file__).parents[1])

    async def scenario() -> int:
        watch = Watch(GreenApiStateChangeTrigger(green_api_conn_ids=["green_api_shop"], watch_seconds=ROUND,
                                                 state_method=state_method))  # fmt: skip
        checks = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHECKS, env={**os.environ, "PYTHONPATH": plugins})
        waited = asyncio.ensure_future(checks.wait())
        while not waited.done():
            await watch.next(within=0.5)
        return waited.result()

    answered = asyncio.run(scenario()) == 0
    assert answered or limited  # the checks got every answer, unless they shared the method with the watch
    checked = sim.requests_log(shop.instance_id, "getStateInstance")
    watched = sim.requests_log(shop.instance_id, state_method)
    assert len(watched) >= 4 and len(checked) >= 3
    assert (429 in {r["status"] for r in checked + watched}) is limited


def test_with_no_instance_it_watches_nothing_and_fires_nothing():
    async def scenario() -> Any:  # nor does a record it cannot write stop it
        return await Watch(GreenApiStateChangeTrigger(green_api_conn_ids=[], watch_seconds=ROUND,
                                                      record_round="greenapi.nowhere.record_round")).next(within=2.5)

    assert asyncio.run(scenario()) is None


def test_a_partner_accounts_instances_are_watched_as_the_account_changes(make_partner, sim, monkeypatch):
    from greenapi.hooks.green_api import LISTINGS

    account = make_partner(count=3)
    first, second, third = account.instances
    # Listed both ways: watched once, under its own connection.
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_OWN", json.dumps({"conn_type": "greenapi", "host": sim.url, "login": third,
                                                                 "password": account.instances[third]}))  # fmt: skip

    async def scenario() -> list[Any]:
        watch = Watch(GreenApiStateChangeTrigger(green_api_conn_ids=["green_api_own"], watch_seconds=ROUND,
                                                 green_api_partner_conn_ids=[account.conn_id]))  # fmt: skip
        seen = [await watch.next(within=2.5 * ROUND)]
        sim.configure(first, state="notAuthorized")
        seen.append(await watch.next(within=4 * ROUND))
        created = 1109990000 + os.getpid() % 10000
        sim.create_partner_instance(account.token, id_instance=created, api_token="TOKEN-SECRET-created000000000")
        sim.delete_partner_instance(account.token, second)
        LISTINGS.clear()  # as 2 minutes later: the account is listed again
        seen.append(await watch.next(within=3 * ROUND))  # the new one's first look, the deleted one gone: nothing
        sim.configure(str(created), state="blocked")
        seen.append(await watch.next(within=4 * ROUND))
        return [*seen, created]

    start, gone, relisted, blocked, created = asyncio.run(scenario())
    assert start is None
    # A round in flight when the instance was deleted may see its 403 before the account is
    # listed again (a loaded machine): only the deleted one may change there.
    assert relisted is None or {c["conn_id"] for c in relisted["changes"]} == {account.key(second)}, relisted
    assert [c["conn_id"] for c in gone["changes"]] == [account.key(first)]
    # Watched: the first, the one listed both ways and the new one; the deleted one no longer.
    assert changes_of(blocked) == [(str(created), "authorized", "blocked")] and blocked["watched"] == 3
    looked = [r["instance_id"] for r in sim.requests_log(method="getWaSettings")]
    assert looked.count(third) == looked.count(first)  # once a round, as any other
    assert account.token not in json.dumps([gone, blocked])


def test_each_round_is_recorded_and_a_round_that_fails_does_not_stop_the_watch(make_instance, sim, db, monkeypatch):
    from greenapi.hooks.green_api import GreenApiAsyncHook

    shop = make_instance("green_api_shop")
    real, calls = GreenApiAsyncHook.get_wa_settings, []

    async def second_call_fails(self: Any, timeout: float | None = None) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("a bug in the second round")
        return await real(self, timeout)

    monkeypatch.setattr(GreenApiAsyncHook, "get_wa_settings", second_call_fails)

    async def scenario() -> Any:
        watch = Watch(GreenApiStateChangeTrigger(green_api_conn_ids=["green_api_shop", "green_api_missing"],
                                                 watch_seconds=ROUND, record_round="greenapi.store.record_round",
                                                 watch_name="test_watch"))  # fmt: skip
        assert await watch.next(within=2.5 * ROUND) is None  # the second round failed, the third went on
        sim.configure(shop.instance_id, state="blocked")
        changed = await watch.next(within=4 * ROUND)
        await asyncio.sleep(0.5)  # its round's record
        return changed

    assert changes_of(asyncio.run(scenario())) == [(shop.instance_id, "authorized", "blocked")]
    [row] = db.execute("SELECT watch_name, watched, answered, rate_limited, unusable, rounds, changes, watch_seconds,"
                       " last_round_at > started_at, now() - last_round_at < interval '5 s' FROM green_api_state_watch"
                       ).fetchall()  # fmt: skip
    name, watched, answered, limited, unusable, rounds, changed, seconds, *fresh = row
    assert (name, watched, answered, limited, unusable, changed, seconds, fresh) == (
        "test_watch", 2, 1, 0, 1, 1, ROUND, [True, True])
    assert rounds == len(calls) - 1 >= 3  # every round but the one that failed


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"green_api_conn_ids": ["a"], "watch_seconds": 0.5}, "watch_seconds must be at least 1"),
    ({"green_api_conn_ids": ["a", "a"]}, "green_api_conn_ids lists a more than once"),
    ({"green_api_conn_ids": "a"}, "green_api_conn_ids must be a list of connection ids"),
    ({"green_api_conn_ids": ["a"], "state_method": "getSettings"}, "state_method must be one of getWaSettings, "),
    ({"green_api_conn_ids": ["a"], "record_round": "record"}, "record_round must be the dotted path of a function"),
    ({"green_api_conn_ids": ["a"], "watch_name": ""}, "watch_name must be a non-empty string"),
    ({"green_api_conn_ids": [], "green_api_partner_conn_ids": "p"}, "green_api_partner_conn_ids must be a list"),
    ({"green_api_conn_ids": [], "type_instance": "WhatsApp"}, "type_instance must be an instance type"),
])  # fmt: skip
def test_bad_arguments_are_refused_by_name(kwargs, named):
    with pytest.raises(ValueError, match=named):
        GreenApiStateChangeTrigger(**kwargs)


def test_it_serializes_to_what_rebuilds_it():
    trigger = GreenApiStateChangeTrigger(green_api_conn_ids=["green_api_shop"], watch_seconds=20)
    path, kwargs = trigger.serialize()
    assert path == "greenapi.triggers.green_api.GreenApiStateChangeTrigger"
    assert GreenApiStateChangeTrigger(**kwargs).serialize() == (path, kwargs)

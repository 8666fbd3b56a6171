"""GreenApiStateChangeTrigger (issue 27) alone, against the simulator over HTTP: it fires on a
change of state or reachability, never for a state that lasts, and survives what instances do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

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
        sim.configure(shop.instance_id, faults={"getStateInstance": {"mode": "hang", "seconds": 5}})
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
        {"conn_type": "green_api", "host": sim.url, "login": wrong.instance_id, "password": "TOKEN-SECRET-wrongwrongwrong0",
         "extra": {"state_timeout": 1}}))  # fmt: skip

    async def scenario() -> list[Any]:
        watch = Watch(GreenApiStateChangeTrigger(
            green_api_conn_ids=["green_api_busy", "green_api_wrong", "green_api_missing"], watch_seconds=ROUND))
        seen = [await watch.next(within=3 * ROUND)]
        sim.configure(busy.instance_id, faults={"getStateInstance": {"mode": "http", "status": 429, "times": 2}})
        seen.append(await watch.next(within=5 * ROUND))  # rate limited twice: the state is kept, no event
        sim.configure(busy.instance_id, state="blocked")
        seen.append(await watch.next(within=4 * ROUND))
        return seen

    first, limited, blocked = asyncio.run(scenario())
    assert first is None and limited is None
    # The wrong token's lasting refusal and the missing connection never fired; the others are still watched.
    assert changes_of(blocked) == [(busy.instance_id, "authorized", "blocked")]
    assert sim.requests_log(wrong.instance_id, "getStateInstance")  # it was looked at, and refused


def test_with_no_instance_it_watches_nothing_and_fires_nothing():
    async def scenario() -> Any:
        return await Watch(GreenApiStateChangeTrigger(green_api_conn_ids=[], watch_seconds=ROUND)).next(within=2.5)

    assert asyncio.run(scenario()) is None


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"green_api_conn_ids": ["a"], "watch_seconds": 0.5}, "watch_seconds must be at least 1"),
    ({"green_api_conn_ids": ["a", "a"]}, "green_api_conn_ids lists a more than once"),
    ({"green_api_conn_ids": "a"}, "green_api_conn_ids must be a list of connection ids"),
])  # fmt: skip
def test_bad_arguments_are_refused_by_name(kwargs, named):
    with pytest.raises(ValueError, match=named):
        GreenApiStateChangeTrigger(**kwargs)


def test_it_serializes_to_what_rebuilds_it():
    trigger = GreenApiStateChangeTrigger(green_api_conn_ids=["green_api_shop"], watch_seconds=20)
    path, kwargs = trigger.serialize()
    assert path == "greenapi.triggers.green_api.GreenApiStateChangeTrigger"
    assert GreenApiStateChangeTrigger(**kwargs).serialize() == (path, kwargs)

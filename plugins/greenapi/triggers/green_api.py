"""GreenApiStateTrigger: waits until an instance reports one of some states;
GreenApiFleetStateTrigger: the same wait for a set of instances at once;
GreenApiStateChangeTrigger: watches a set of instances and fires on each change of state.

The wait (look, decide, sleep) is written once, here: the trigger runs it in the triggerer, and
:class:`~greenapi.operators.green_api.GreenApiRebootOperator` runs the same trigger in its own
process when it is not deferrable. :func:`wait_step` is the decision after each look, which
:class:`~greenapi.sensors.green_api.GreenApiStateSensor` also makes at each poke.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from greenapi.domain.records import InstanceCheck
from greenapi.domain.results import ApiResult, ResultKind

MIN_POKE_INTERVAL = 1.0  # getStateInstance allows 1 request/s per instance


def check_states(target_states: Sequence[str]) -> tuple[str, ...]:
    """The states to wait for, validated: a non-empty list of non-empty strings."""
    states = (target_states,) if isinstance(target_states, str) else tuple(target_states or ())
    if not states or not all(isinstance(s, str) and s for s in states):
        raise ValueError(f"target_states must be a non-empty list of state names, got {target_states!r}")
    return states


def check_interval(poke_interval: float) -> float:
    """The seconds between looks, validated: at least 1 (the API's limit per instance)."""
    if not isinstance(poke_interval, int | float) or poke_interval < MIN_POKE_INTERVAL:
        raise ValueError(
            f"poke_interval must be at least {MIN_POKE_INTERVAL} s (getStateInstance: 1 request/s per instance), "
            f"got {poke_interval!r}"
        )
    return float(poke_interval)


def state_seen(look: InstanceCheck) -> str | None:
    """The state a look read (None when the call failed)."""
    return look.result.data.get("stateInstance") if look.result.ok else None


@dataclass(frozen=True)
class WaitStep:
    """What to do after a look: ``status`` ``success`` or ``timeout`` ends the wait; None: look
    again. ``message`` says it (an event's message)."""

    status: str | None
    message: str = ""


def wait_step(look: InstanceCheck, target_states: Sequence[str], end_at: datetime, poke_interval: float,
              now: datetime) -> WaitStep:  # fmt: skip
    """The decision after one look: the state came, the next look would come after ``end_at``,
    or wait ``poke_interval`` and look again."""
    state = state_seen(look)
    if state in target_states:
        return WaitStep("success", f"instance {look.instance_id} is {state}")
    if now + timedelta(seconds=poke_interval) > end_at:
        return WaitStep("timeout", f"instance {look.instance_id} did not reach {' or '.join(target_states)} by "
                                   f"{end_at.isoformat()}; last seen: {state or look.result.error}")  # fmt: skip
    return WaitStep(None)


class GreenApiStateTrigger(BaseTrigger):
    """Polls ``getStateInstance`` every ``poke_interval`` seconds until the state is one of
    ``target_states`` or ``end_at`` passes.

    Fires one event: ``{"status": "success" | "timeout" | "error", "check": InstanceCheck JSON of the last
    look (or null), "message": str}``. Calls go through :class:`GreenApiAsyncHook`, paced per
    instance within the API's 1 request/s, however many triggers wait on one instance.

    :param green_api_conn_id: the instance's connection.
    :param target_states: the states that end the wait.
    :param poke_interval: seconds between looks (at least 1).
    :param end_at: ISO 8601 moment when the wait gives up (``status: timeout``).
    :param first_look_at: ISO 8601 moment of the first look (default at once): after a reboot, an
        instance may still answer from before its restart.
    """

    def __init__(
        self,
        *,
        green_api_conn_id: str,
        target_states: Sequence[str],
        poke_interval: float,
        end_at: str,
        first_look_at: str | None = None,
    ) -> None:
        super().__init__()
        self.green_api_conn_id = green_api_conn_id
        self.target_states = list(check_states(target_states))
        self.poke_interval = check_interval(poke_interval)
        self.end_at = end_at
        self.first_look_at = first_look_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The trigger's class path and arguments, from which the triggerer rebuilds it."""
        return (
            class_path(self),
            {
                "green_api_conn_id": self.green_api_conn_id,
                "target_states": self.target_states,
                "poke_interval": self.poke_interval,
                "end_at": self.end_at,
                "first_look_at": self.first_look_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Look, decide (:func:`wait_step`), sleep, until the state comes or the time is up."""
        from greenapi.hooks.green_api import GreenApiAsyncHook

        hook = GreenApiAsyncHook(self.green_api_conn_id)
        try:
            cfg = await hook.aconfig()
        except Exception as exc:  # noqa: BLE001 - a missing or bad connection ends the wait, by name
            yield TriggerEvent({"status": "error", "check": None,
                                "message": f"connection {self.green_api_conn_id!r} unusable: {exc}"})  # fmt: skip
            return
        end = datetime.fromisoformat(self.end_at)
        if self.first_look_at:
            await _sleep_until(min(datetime.fromisoformat(self.first_look_at), end))
        while True:
            checked_at = datetime.now(UTC)
            result = await hook.get_state_instance()
            look = InstanceCheck(self.green_api_conn_id, cfg.instance_id, checked_at.isoformat(), result)
            self.log.info("%s: %s", self.green_api_conn_id, state_seen(look) or result.error)
            step = wait_step(look, self.target_states, end, self.poke_interval, datetime.now(UTC))
            if step.status is not None:
                yield TriggerEvent({"status": step.status, "check": look.to_dict(), "message": step.message})
                return
            await asyncio.sleep(self.poke_interval)


@dataclass(frozen=True)
class FleetWaitStep:
    """What to do after a round of looks at a set of instances. ``status``: None, look again at
    ``waiting``; otherwise the wait ends: ``success`` (every instance reached a target state),
    ``timeout`` (the next round would come after the deadline) or ``error`` (the others reached
    one, but some connections could not be used). ``missed``: the instances that did not get there."""

    status: str | None
    waiting: tuple[str, ...]
    missed: tuple[str, ...] = ()
    message: str = ""


def _some(ids: Sequence[str], shown: int = 10) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def fleet_wait_step(last: dict[str, InstanceCheck], unusable: set[str], target_states: Sequence[str],
                    end_at: datetime, poke_interval: float, now: datetime) -> FleetWaitStep:  # fmt: skip
    """The decision after a round of looks (``last``: each instance's latest look, by connection
    id; ``unusable``: connections that could not be used, not looked at again)."""
    missed = tuple(c for c, look in last.items() if c in unusable or state_seen(look) not in target_states)
    waiting = tuple(c for c in missed if c not in unusable)
    targets = " or ".join(target_states)
    reached = f"{len(last) - len(missed)} of {len(last)} instance(s) reached {targets}"
    bad = f"; connection(s) unusable: {_some(sorted(unusable))}" if unusable else ""
    if not missed:
        return FleetWaitStep("success", (), (), f"all {len(last)} instance(s) reached {targets}")
    if not waiting:
        return FleetWaitStep("error", (), missed, reached + bad)
    if now + timedelta(seconds=poke_interval) > end_at:
        return FleetWaitStep("timeout", waiting, missed,
                             f"{reached} by {end_at.isoformat()}; still not: {_some(waiting)}{bad}")  # fmt: skip
    return FleetWaitStep(None, waiting, missed)


class GreenApiFleetStateTrigger(BaseTrigger):
    """Polls ``getStateInstance`` of a set of instances every ``poke_interval`` seconds until each
    one's state is one of ``target_states`` or ``end_at`` passes: one trigger, one event, however
    many instances (an instance that got there is not asked again).

    Fires one event: ``{"status": "success" | "timeout" | "error", "checks": [InstanceCheck JSON:
    each instance's last look, in the order of green_api_conn_ids], "waiting": [connection ids that
    did not get there], "message": str}`` (see :class:`FleetWaitStep`). A connection that cannot be
    used is a look with a ``connection_error`` result naming it, and is not looked at again. Calls
    go through :class:`GreenApiAsyncHook`, at most ``max_concurrency`` at once, each instance paced
    within the API's 1 request/s. With no connection ids, it fires ``success`` at once.

    :param green_api_conn_ids: the instances' connections.
    :param target_states: the states that end each instance's wait.
    :param poke_interval: seconds between looks (at least 1).
    :param end_at: ISO 8601 moment when the wait gives up (``status: timeout``).
    :param first_look_at: ISO 8601 moment of the first looks (default at once).
    :param max_concurrency: calls in flight at once.
    """

    def __init__(
        self,
        *,
        green_api_conn_ids: Sequence[str],
        target_states: Sequence[str],
        poke_interval: float,
        end_at: str,
        first_look_at: str | None = None,
        max_concurrency: int = 64,
    ) -> None:
        super().__init__()
        self.green_api_conn_ids = list(check_conn_ids(green_api_conn_ids))
        self.target_states = list(check_states(target_states))
        self.poke_interval = check_interval(poke_interval)
        self.end_at = end_at
        self.first_look_at = first_look_at
        self.max_concurrency = check_concurrency(max_concurrency)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The trigger's class path and arguments, from which the triggerer rebuilds it."""
        return (
            class_path(self),
            {
                "green_api_conn_ids": self.green_api_conn_ids,
                "target_states": self.target_states,
                "poke_interval": self.poke_interval,
                "end_at": self.end_at,
                "first_look_at": self.first_look_at,
                "max_concurrency": self.max_concurrency,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Rounds of looks at the instances still waiting (:func:`fleet_wait_step`), until none is
        or the time is up."""
        from greenapi.hooks.green_api import GreenApiAsyncHook

        gate = asyncio.Semaphore(self.max_concurrency)
        hooks = {c: GreenApiAsyncHook(c) for c in self.green_api_conn_ids}
        last: dict[str, InstanceCheck] = {}
        unusable: set[str] = set()

        async def look(conn_id: str) -> None:
            async with gate:
                checked_at = datetime.now(UTC)
                try:
                    cfg = await hooks[conn_id].aconfig()
                except Exception as exc:  # noqa: BLE001 - that instance's wait ends, by name
                    unusable.add(conn_id)
                    error = f"connection {conn_id!r} unusable: {exc}"
                    result = ApiResult(method="getStateInstance", kind=ResultKind.CONNECTION_ERROR,
                                       response_time_ms=0, error=error)  # fmt: skip
                    last[conn_id] = InstanceCheck(conn_id, "", checked_at.isoformat(), result)
                    return
                result = await hooks[conn_id].get_state_instance()
                last[conn_id] = InstanceCheck(conn_id, cfg.instance_id, checked_at.isoformat(), result)

        end = datetime.fromisoformat(self.end_at)
        if self.first_look_at:
            await _sleep_until(min(datetime.fromisoformat(self.first_look_at), end))
        waiting: Sequence[str] = self.green_api_conn_ids
        while True:
            await asyncio.gather(*(look(c) for c in waiting))
            step = fleet_wait_step({c: last[c] for c in self.green_api_conn_ids}, unusable, self.target_states,
                                   end, self.poke_interval, datetime.now(UTC))  # fmt: skip
            self.log.info(
                "%d of %d instance(s) still waiting", len(step.waiting), len(self.green_api_conn_ids)
            )
            if step.status is not None:
                yield TriggerEvent({"status": step.status, "message": step.message, "waiting": list(step.missed),
                                    "checks": [last[c].to_dict() for c in self.green_api_conn_ids]})  # fmt: skip
                return
            waiting = step.waiting
            await asyncio.sleep(self.poke_interval)


DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")  # a function's dotted path


class GreenApiStateChangeTrigger(BaseEventTrigger):
    """Watches the state of a set of instances, every ``watch_seconds``, and fires an event on
    each **change** of state or reachability (``authorized`` to anything else, to no answer, and
    back), never for a state that lasts: as an asset watcher's trigger it starts a run only when
    something happened.

    The state is read with ``getWaSettings`` by default: it answers the same ``stateInstance`` as
    ``getStateInstance``, whose 1 request/s per instance the health check, the reboots and their
    waits use from other processes; a watch on it makes HTTP 429s for them whenever the two land
    in the same second (``state_method="getStateInstance"`` to watch it all the same).

    An event: ``{"changes": [Change JSON: conn_id, instance_id, old, new, at], "watched": int,
    "at": ISO 8601}``, one per round that saw changes; no token. An instance's first look only
    sets what is known. A 429 says nothing (the state is kept); a connection that cannot be used
    is logged once and tried again each round; with no instance at all, it watches nothing and
    fires nothing; a round that fails for any other reason is logged and the next one starts on
    time (the triggerer would restart a trigger that ends, at once and without a word in the UI).
    Calls go through :class:`GreenApiAsyncHook`, at most ``max_concurrency`` at once, each
    instance paced within the API's 1 request/s.

    ``green_api_partner_conn_ids`` adds every live instance of type ``type_instance`` of partner
    accounts (their connections, type ``greenapipartner``): each account is listed again every 2
    minutes (one ``getInstances``, shared by the process), an instance created is watched from then
    on (its first look is no change), one deleted is dropped, one listed both ways is watched once,
    under its connection; an account that cannot be listed keeps its last listing and is logged once.

    With ``record_round`` (the dotted path of an ``async`` function taking a
    :class:`~greenapi.domain.watch.WatchRound`), each round is handed to it, named ``watch_name``,
    without holding the rounds up (one call at a time; a failure is logged and the watch goes on):
    this package's health check records them in its database, and its scheduled runs fail,
    naming the watch, when it stopped looking.

    :param green_api_conn_ids: the instances' connections (or partner keys ``<partner>/<idInstance>``).
    :param green_api_partner_conn_ids: partner accounts' connections, their live instances watched.
    :param type_instance: the partner instances' type watched (default ``whatsapp``).
    :param watch_seconds: seconds from one round's start to the next (at least 1; default 20).
    :param max_concurrency: calls in flight at once.
    :param state_method: ``getWaSettings`` (default) or ``getStateInstance``.
    :param record_round: ``"package.module.function"``, called with each round (None: not called).
    :param watch_name: the watch's name in its rounds.
    """

    def __init__(self, green_api_conn_ids: Sequence[str], watch_seconds: float = 20, max_concurrency: int = 64,
                 state_method: str = "getWaSettings", record_round: str | None = None,
                 watch_name: str = "green_api_state_watch", green_api_partner_conn_ids: Sequence[str] = (),
                 type_instance: str = "whatsapp") -> None:  # fmt: skip
        # Every argument is a string, a number or a list of strings: Airflow 3.3 identifies an asset
        # watcher's trigger by a hash of its arguments that a dict does not survive (the watcher
        # would never be registered).
        from greenapi.domain.watch import check_state_method, check_watch_seconds

        super().__init__()
        self.green_api_conn_ids = list(check_conn_ids(green_api_conn_ids))
        self.green_api_partner_conn_ids = list(check_conn_ids(green_api_partner_conn_ids, "green_api_partner_conn_ids"))
        if not (isinstance(type_instance, str) and re.fullmatch(r"[a-z]{1,30}", type_instance)):
            raise ValueError(f'type_instance must be an instance type such as "whatsapp", got {type_instance!r}')
        self.type_instance = type_instance
        self.watch_seconds = check_watch_seconds(watch_seconds)
        self.max_concurrency = check_concurrency(max_concurrency)
        self.state_method = check_state_method(state_method)
        if record_round is not None and not (isinstance(record_round, str) and DOTTED.fullmatch(record_round)):
            raise ValueError(f"record_round must be the dotted path of a function or None, got {record_round!r}")
        if not (isinstance(watch_name, str) and watch_name):
            raise ValueError(f"watch_name must be a non-empty string, got {watch_name!r}")
        self.record_round = record_round
        self.watch_name = watch_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The trigger's class path and arguments, from which the triggerer rebuilds it."""
        return (
            class_path(self),
            {"green_api_conn_ids": self.green_api_conn_ids, "watch_seconds": self.watch_seconds,
             "max_concurrency": self.max_concurrency, "state_method": self.state_method,
             "record_round": self.record_round, "watch_name": self.watch_name,
             "green_api_partner_conn_ids": self.green_api_partner_conn_ids, "type_instance": self.type_instance},
        )  # fmt: skip

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Rounds of looks, every ``watch_seconds``; an event for each round that saw a change."""
        import time

        from greenapi.domain.watch import WatchRound, changes, seen
        from greenapi.hooks.green_api import GreenApiAsyncHook

        gate = asyncio.Semaphore(self.max_concurrency)
        hooks: dict[str, GreenApiAsyncHook] = {}
        accounts = _Accounts(self.green_api_partner_conn_ids, self.type_instance, self.log)
        unusable: set[str] = set()
        own_ids: set[str] = set()  # the idInstance of the connections: their partner keys are not watched again
        known: dict[str, str] = {}
        doubtful: set[str] = set()  # no answer once: a change only if the next look says it again
        heartbeat = _Recorder(self.record_round, self.log)
        started_at, rounds, changed, limited = datetime.now(UTC), 0, 0, 0
        partners = self.green_api_partner_conn_ids
        self.log.info("watching %d instance(s)%s every %g s with %s", len(self.green_api_conn_ids),
                      f" and the {self.type_instance} instances of {len(partners)} partner account(s)" if partners else "",
                      self.watch_seconds, self.state_method)  # fmt: skip

        async def look(key: str) -> tuple[str, str | None] | None:
            nonlocal limited
            hook = hooks.setdefault(key, GreenApiAsyncHook(key))
            async with gate:
                try:
                    cfg = await hook.aconfig()
                except Exception as exc:  # noqa: BLE001 - that instance is left out until it can be used
                    if key not in unusable:
                        unusable.add(key)
                        self.log.warning("connection %r cannot be watched: %s", key, exc)
                    return None
                unusable.discard(key)
                if key in self.green_api_conn_ids:
                    own_ids.add(cfg.instance_id)
                read = hook.get_wa_settings if self.state_method == "getWaSettings" else hook.get_state_instance
                result = await read()
                limited += result.http_status == 429
                return cfg.instance_id, seen(result)

        async def own_id(conn_id: str) -> None:
            with contextlib.suppress(Exception):  # a connection that cannot be used is logged at its look
                own_ids.add((await hooks.setdefault(conn_id, GreenApiAsyncHook(conn_id)).aconfig()).instance_id)

        if partners:  # before the first listing: an instance listed both ways is looked at once
            await asyncio.gather(*(own_id(c) for c in self.green_api_conn_ids))
        while True:
            began = time.monotonic()
            limited = 0
            found: list[Any] = []
            keys: list[str] = []
            try:
                keys = [*self.green_api_conn_ids, *await accounts.keys(own_ids)]
                for gone in set(hooks) - set(keys):  # deleted from its account: forgotten (a return is a first look)
                    hooks.pop(gone)
                    known.pop(gone, None)
                    doubtful.discard(gone)
                    unusable.discard(gone)
                results = await asyncio.gather(*(look(k) for k in keys))
                at = datetime.now(UTC)
                looks = {k: r for k, r in zip(keys, results, strict=True) if r is not None}
                known, found, doubtful = changes(known, looks, at, doubtful)
                rounds += 1
                changed += len(found)
                heartbeat.beat(WatchRound(
                    self.watch_name, started_at, at, self.watch_seconds, len(keys),
                    sum(1 for r in looks.values() if r[1] is not None), limited, len(unusable), rounds, changed,
                    int((time.monotonic() - began) * 1000)))  # fmt: skip
            except Exception:
                self.log.exception("a round of the state watch failed; the next one starts on time")
            if found:
                self.log.info("%d change(s): %s", len(found), "; ".join(f"{c.instance_id} {c.old} -> {c.new}"
                                                                        for c in found[:10]))  # fmt: skip
                yield TriggerEvent({"changes": [c.to_dict() for c in found], "watched": len(keys),
                                    "at": at.isoformat()})  # fmt: skip
            await asyncio.sleep(max(0.0, self.watch_seconds - (time.monotonic() - began)))


class _Accounts:
    """The partner keys a watch looks at: each account's live instances, listed again when its
    listing is 2 minutes old; an account that cannot be listed keeps its last keys."""

    def __init__(self, conn_ids: Sequence[str], type_instance: str, log: Any) -> None:
        self.conn_ids = conn_ids
        self.type_instance = type_instance
        self.log = log
        self.listed: dict[str, list[tuple[str, str]]] = {}  # partner connection id -> [(key, idInstance)]
        self.failing: set[str] = set()

    async def keys(self, own_ids: set[str]) -> list[str]:
        from greenapi.domain.partner import live, partner_key
        from greenapi.hooks.green_api import LISTINGS, GreenApiPartnerHook

        keys: list[str] = []
        for conn_id in self.conn_ids:
            try:
                account = await GreenApiPartnerHook(conn_id).aaccount()
            except Exception as exc:  # noqa: BLE001 - the last listing is watched meanwhile
                if conn_id not in self.failing:
                    self.log.warning("partner account %r could not be listed: %s (its last listing is watched)",
                                     conn_id, exc)  # fmt: skip
                self.failing.add(conn_id)
            else:
                self.failing.discard(conn_id)
                watched = live(list(account.instances), self.type_instance)
                # Masked in one update here, not one per instance as each hook would (that costs
                # the square of the tokens: minutes of CPU for the first round at 10,000).
                LISTINGS.mask([i.token for i in watched])
                self.listed[conn_id] = [(partner_key(conn_id, i.instance_id), i.instance_id) for i in watched]
            keys.extend(key for key, instance_id in self.listed.get(conn_id, []) if instance_id not in own_ids)
        return list(dict.fromkeys(keys))


class _Recorder:
    """Hands a watch's rounds to ``record_round`` without holding the rounds up: one call at a
    time, in the background, the newest round winning; a call that fails is logged (once until one
    succeeds) and the watch goes on."""

    def __init__(self, path: str | None, log: Any) -> None:
        self.path = path
        self.log = log
        self.record: Callable[[Any], Awaitable[None]] | None = None
        self.pending: asyncio.Task[None] | None = None
        self.failing = False

    def beat(self, last: Any) -> None:
        if self.path is None or (self.pending is not None and not self.pending.done()):
            return
        self.pending = asyncio.ensure_future(self._call(last))

    async def _call(self, last: Any) -> None:
        try:
            if self.record is None:
                module, _, name = str(self.path).rpartition(".")
                self.record = getattr(importlib.import_module(module), name)
            await self.record(last)
        except Exception as exc:  # noqa: BLE001 - the watch matters more than its record
            if not self.failing:
                self.log.warning("the state watch's round could not be recorded by %s: %s", self.path, exc)
            self.failing = True
        else:
            if self.failing:
                self.log.info("the state watch's rounds are recorded again by %s", self.path)
            self.failing = False


def check_concurrency(max_concurrency: int) -> int:
    """The calls in flight at once, validated: a positive integer."""
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
    return max_concurrency


def class_path(trigger: BaseTrigger) -> str:
    """Where the triggerer finds a trigger's class (its ``serialize()``'s first half)."""
    return f"{type(trigger).__module__}.{type(trigger).__qualname__}"


def check_conn_ids(conn_ids: Sequence[str], name: str = "green_api_conn_ids") -> tuple[str, ...]:
    """The connection ids to wait on, validated: a list (possibly empty) of non-empty strings, no
    repeats."""
    if isinstance(conn_ids, str) or not all(isinstance(c, str) and c for c in conn_ids or ()):
        raise ValueError(f"{name} must be a list of connection ids, got {conn_ids!r}")
    ids = tuple(conn_ids or ())
    repeated = sorted({c for c in ids if ids.count(c) > 1})
    if repeated:
        raise ValueError(f"{name} lists {', '.join(repeated)} more than once")
    return ids


def run_here(trigger: BaseTrigger) -> dict[str, Any]:
    """Run ``trigger`` in this process until its first event, and return the event's payload:
    the same wait as in the triggerer, for an operator that is not deferred."""

    async def first_event() -> TriggerEvent | None:
        return await anext(trigger.run(), None)

    event = asyncio.run(first_event())
    return event.payload if event is not None else {"status": "error", "check": None, "message": "no event"}


async def _sleep_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)

"""GreenApiStateTrigger: waits until an instance reports one of some states.

The wait (look, decide, sleep) is written once, here: the trigger runs it in the triggerer, and
:class:`~greenapi.operators.green_api.GreenApiRebootOperator` runs the same trigger in its own
process when it is not deferrable. :func:`wait_step` is the decision after each look, which
:class:`~greenapi.sensors.green_api.GreenApiStateSensor` also makes at each poke.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from greenapi.domain.records import InstanceCheck

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
            f"{type(self).__module__}.{type(self).__qualname__}",
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

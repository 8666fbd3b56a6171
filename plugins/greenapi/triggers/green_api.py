"""GreenApiStateTrigger: waits in the triggerer until an instance reports one of some states."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
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
    if not isinstance(poke_interval, int | float) or poke_interval < MIN_POKE_INTERVAL:
        raise ValueError(
            f"poke_interval must be at least {MIN_POKE_INTERVAL} s (getStateInstance: 1 request/s per instance), "
            f"got {poke_interval!r}"
        )
    return float(poke_interval)


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
            last = InstanceCheck(self.green_api_conn_id, cfg.instance_id, checked_at.isoformat(), result)
            state = result.data.get("stateInstance") if result.ok else None
            self.log.info("%s: %s", self.green_api_conn_id, state or result.error)
            if state in self.target_states:
                yield TriggerEvent({"status": "success", "check": last.to_dict(),
                                    "message": f"instance {cfg.instance_id} is {state}"})  # fmt: skip
                return
            if datetime.now(UTC) + timedelta(seconds=self.poke_interval) > end:
                seen = state or result.error
                yield TriggerEvent({"status": "timeout", "check": last.to_dict(),
                                    "message": f"instance {cfg.instance_id} did not reach {' or '.join(self.target_states)} "
                                               f"by {self.end_at}; last seen: {seen}"})  # fmt: skip
                return
            await asyncio.sleep(self.poke_interval)


async def _sleep_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)

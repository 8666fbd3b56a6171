"""GreenApiStateSensor: waits until a Green API instance reports one of some states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from greenapi.triggers.green_api import GreenApiStateTrigger, check_interval, check_states, state_seen

if TYPE_CHECKING:
    from airflow.sdk import Context


class GreenApiStateSensor(BaseSensorOperator):
    """Waits until ``getStateInstance`` answers one of ``target_states``.

    Returns (XCom) the last look: ``{"conn_id", "instance_id", "checked_at", "result"}`` (an
    ``InstanceCheck`` as JSON), so the next task sees the state and when it was read. A call that
    fails (timeout, HTTP error) is a look like any other: the sensor keeps waiting.

    :param green_api_conn_id: the instance's connection (templated).
    :param target_states: the states that end the wait (default ``("authorized",)``).
    :param poke_interval: seconds between looks, at least 1 (the API allows 1 request/s).
    :param timeout: seconds before the sensor fails, or is skipped with ``soft_fail=True``, as for
        every sensor. With ``soft_fail``, an unusable connection skips it too.
    :param first_look_after_interval: make the first look one ``poke_interval`` after the start:
        an instance just rebooted may still answer from before its restart.
    :param deferrable: wait in the triggerer (:class:`GreenApiStateTrigger`), holding no worker slot;
        by default ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("green_api_conn_id",)
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        green_api_conn_id: str = "green_api_default",
        target_states: Sequence[str] = ("authorized",),
        first_look_after_interval: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.green_api_conn_id = green_api_conn_id
        self.target_states = check_states(target_states)
        check_interval(self.poke_interval)
        self.first_look_after_interval = first_look_after_interval
        self.deferrable = deferrable
        self._looked = False

    def execute(self, context: Context) -> Any:
        """Poke (or reschedule) as any sensor, or defer to :class:`GreenApiStateTrigger`."""
        if not self.deferrable:
            return super().execute(context)
        now = datetime.now(UTC)
        first = now + timedelta(seconds=self.poke_interval) if self.first_look_after_interval else None
        self.defer(
            trigger=GreenApiStateTrigger(
                green_api_conn_id=self.green_api_conn_id,
                target_states=self.target_states,
                poke_interval=self.poke_interval,
                end_at=(now + timedelta(seconds=self.timeout)).isoformat(),
                first_look_at=first.isoformat() if first else None,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 60),  # a safety net: the trigger ends at end_at
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Back from the triggerer: the look that ended the wait, or the timeout."""
        if event.get("status") == "success":
            self.log.info("%s", event.get("message"))
            return event.get("check")
        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(event.get("message"))
        raise AirflowFailException(event.get("message") or f"unexpected event from the trigger: {event!r}")

    def poke(self, context: Context) -> PokeReturnValue:
        """One look; done when its state is one of ``target_states``. The look is the XCom."""
        from greenapi.domain.records import InstanceCheck
        from greenapi.hooks.green_api import UnusableConnection, open_hook

        if self.first_look_after_interval and self._first_poke(context):
            self.log.info("First look in %s s", self.poke_interval)
            return PokeReturnValue(is_done=False)
        try:
            hook = open_hook(self.green_api_conn_id)
        except UnusableConnection as exc:  # waiting will not fix it (skipped with soft_fail)
            raise AirflowFailException(str(exc)) from None
        checked_at = datetime.now(UTC).isoformat()
        result = hook.get_state_instance()
        check = InstanceCheck(self.green_api_conn_id, hook.config.instance_id, checked_at, result)
        state = state_seen(check)
        done = state in self.target_states
        self.log.info("%s: %s%s", self.green_api_conn_id, state or result.error, "" if done else " (waiting)")
        return PokeReturnValue(is_done=done, xcom_value=check.to_dict())

    def _first_poke(self, context: Context) -> bool:
        if self.reschedule:  # each poke is a new process: the first has no earlier reschedule
            return context["ti"].get_first_reschedule_date(context) is None
        first, self._looked = not self._looked, True
        return first

"""GreenApiStateSensor: waits until a Green API instance reports one of some states;
GreenApiFleetStateSensor: until each of a set of instances does, in one task."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from greenapi.triggers.green_api import (
    GreenApiFleetStateTrigger,
    GreenApiStateTrigger,
    check_interval,
    check_states,
    run_here,
    state_seen,
)

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


class GreenApiFleetStateSensor(BaseSensorOperator):
    """Waits until each of a set of instances answers one of ``target_states``: one task and one
    trigger (:class:`GreenApiFleetStateTrigger`) for the whole set, however many instances.

    Returns (XCom) each instance's last look, in the order of ``green_api_conn_ids``: a list of
    ``InstanceCheck`` JSON (``{"conn_id", "instance_id", "checked_at", "result"}``).

    :param green_api_conn_ids: the instances' connections (templated; an empty list returns at once).
    :param target_states: the states that end an instance's wait (default ``("authorized",)``).
    :param poke_interval: seconds between looks, at least 1 (the API allows 1 request/s per instance).
    :param timeout: seconds before the sensor gives up: it fails naming the instances still waiting
        (skipped with ``soft_fail=True``), or, with ``fail_on_timeout=False``, returns the last looks
        and leaves the verdict to the next task. An unusable connection is treated the same way.
    :param first_look_after_interval: make the first looks one ``poke_interval`` after the start:
        instances just rebooted may still answer from before their restart.
    :param fail_on_timeout: see ``timeout``.
    :param max_concurrency: calls in flight at once.
    :param deferrable: wait in the triggerer, holding no worker slot; by default ``[operators]
        default_deferrable``. Otherwise the same trigger runs in the task's process (``mode`` is
        not used: a wait in reschedule mode would make a task process per round).
    """

    template_fields: Sequence[str] = ("green_api_conn_ids",)
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        green_api_conn_ids: Sequence[str] | str,
        target_states: Sequence[str] = ("authorized",),
        first_look_after_interval: bool = False,
        fail_on_timeout: bool = True,
        max_concurrency: int = 64,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.green_api_conn_ids = green_api_conn_ids
        self.target_states = check_states(target_states)
        check_interval(self.poke_interval)
        self.first_look_after_interval = first_look_after_interval
        self.fail_on_timeout = fail_on_timeout
        self.max_concurrency = max_concurrency
        self.deferrable = deferrable

    def execute(self, context: Context) -> Any:
        """Defer to :class:`GreenApiFleetStateTrigger`, or run it here."""
        conn_ids = self.green_api_conn_ids
        if isinstance(conn_ids, str):  # a template that rendered to text, not a list
            raise AirflowFailException(
                f"green_api_conn_ids must be a list of connection ids, got {conn_ids!r}"
            )
        now = datetime.now(UTC)
        first = now + timedelta(seconds=self.poke_interval) if self.first_look_after_interval else None
        trigger = GreenApiFleetStateTrigger(
            green_api_conn_ids=conn_ids,
            target_states=self.target_states,
            poke_interval=self.poke_interval,
            end_at=(now + timedelta(seconds=self.timeout)).isoformat(),
            first_look_at=first.isoformat() if first and conn_ids else None,
            max_concurrency=self.max_concurrency,
        )
        if not self.deferrable or not conn_ids:
            try:
                return self.execute_complete(context, run_here(trigger))
            except AirflowSensorTimeout as exc:  # as a deferred sensor's resume does
                if self.soft_fail:
                    raise AirflowSkipException(str(exc)) from None
                raise
        self.defer(trigger=trigger, method_name="execute_complete",
                   timeout=timedelta(seconds=self.timeout + 60))  # fmt: skip

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Back from the triggerer: every last look, or the timeout naming who did not get there."""
        status, message = event.get("status"), event.get("message")
        if status == "success" or (status in ("timeout", "error") and not self.fail_on_timeout):
            self.log.info("%s", message)
            return event.get("checks")
        if status in ("timeout", "error"):
            raise AirflowSensorTimeout(message)
        raise AirflowFailException(message or f"unexpected event from the trigger: {event!r}")

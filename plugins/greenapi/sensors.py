"""RecoverySensor: waits for rebooted instances to come back, without holding a worker slot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, Variable

from greenapi.domain.config import SETTINGS_VARIABLE, parse_settings

if TYPE_CHECKING:
    from airflow.sdk import Context


class RecoverySensor(BaseSensorOperator):
    """Polls ``getStateInstance`` of every instance the upstream task rebooted (reschedule mode).

    The poll interval and the deadline come from Variable ``green_api_settings``
    (``reboot_poll_seconds``, ``reboot_verify_minutes``) at run time. At the deadline it succeeds
    with what it saw last: deciding what that means is the next task's job.
    """

    def __init__(self, *, reboot_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.reboot_task_id = reboot_task_id

    def execute(self, context: Context) -> Any:
        settings = parse_settings(Variable.get(SETTINGS_VARIABLE, default=None))
        self.poke_interval = float(settings.reboot_poll_seconds)
        # A safety net only: poke() itself ends the wait at the deadline.
        self.timeout = settings.reboot_verify_minutes * 60 + 10 * settings.reboot_poll_seconds + 300
        return super().execute(context)

    def poke(self, context: Context) -> PokeReturnValue:
        from greenapi.tasks.reboot import poke_recovery  # HTTP client: imported at run time, not at parse

        settings = parse_settings(Variable.get(SETTINGS_VARIABLE, default=None))
        rebooted = context["ti"].xcom_pull(task_ids=self.reboot_task_id)
        done, looks = poke_recovery(rebooted or {"reboots": []}, settings, datetime.now(UTC))
        states = {k: v["result"].get("data", {}).get("stateInstance", v["result"]["kind"]) for k, v in looks.items()}
        self.log.info("Recovery check: %s%s", states or "waiting", " (done)" if done else "")
        return PokeReturnValue(is_done=done, xcom_value=looks)

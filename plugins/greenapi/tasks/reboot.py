"""Glue of the reboot DAGs (scheduled and "force reboot now"): reboot, wait for recovery, conclude."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from greenapi.domain.config import INSTANCES_VARIABLE, ConfigError, Settings, parse_instances, parse_settings
from greenapi.domain.findings import Finding
from greenapi.domain.results import ApiResult
from greenapi.domain.rules import reboot_verdict, recovery_settled
from greenapi.hooks.green_api import GreenApiHook
from greenapi.tasks import common
from greenapi.tasks.common import in_parallel, now_iso, open_hooks

log = logging.getLogger(__name__)

ALL = "all"
REBOOT_TASK = "reboot_instances"
WAIT_TASK = "wait_for_recovery"
ALERT_TASK = "send_alerts"


class NotConfirmed(Exception):
    """A manual reboot was triggered without its confirmation."""


def manual_targets(instances_raw: Any, instance: Any, confirm: Any) -> list[str]:
    """The connection ids a "force reboot now" run may reboot; refuses without confirmation."""
    if confirm is not True:
        raise NotConfirmed(
            "Reboot not confirmed: nothing was rebooted. A reboot can disconnect WhatsApp; trigger "
            "green_api_reboot again with 'confirm' ticked (conf {\"confirm\": true}) to proceed."
        )
    configured = parse_instances(instances_raw)
    if instance in (None, "", ALL):
        return configured
    if instance not in configured:
        raise ConfigError(f"instance {instance!r} is not one of the monitored connection ids {configured} or 'all'")
    return [instance]


def reboot_all(conn_ids: list[str], settings_raw: Any) -> dict[str, Any]:
    """Ask each instance to reboot, concurrently; unusable connections become problems."""
    settings = parse_settings(settings_raw)
    hooks, problems = open_hooks(conn_ids, f"Variable {INSTANCES_VARIABLE}")

    def reboot(hook: GreenApiHook) -> dict[str, Any]:
        requested_at = now_iso()
        return {
            "conn_id": hook.green_api_conn_id,
            "instance_id": hook.config.instance_id,
            "dashboard_url": common.dashboard_url(hook),
            "requested_at": requested_at,
            "result": hook.reboot().to_dict(),
        }

    return {"reboots": in_parallel(settings, hooks, reboot), "problems": problems}


def _accepted(rebooted: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in rebooted["reboots"] if r["result"]["kind"] == "ok" and r["result"]["data"].get("isReboot") is True]


def poke_recovery(rebooted: dict[str, Any], settings: Settings, now: datetime) -> tuple[bool, dict[str, Any]]:
    """One look at every accepted reboot. Done when all settled, or when the deadline passed.

    Returns ``(done, {conn_id: {"checked_at", "result"}})``. The first look waits one poll
    interval after the reboot, so that an instance still answering from before its restart is
    not taken for recovered.
    """
    accepted = _accepted(rebooted)
    if not accepted:
        return True, {}
    first = min(datetime.fromisoformat(r["requested_at"]) for r in accepted)
    if now < first + timedelta(seconds=settings.reboot_poll_seconds):
        return False, {}
    deadline = first + timedelta(minutes=settings.reboot_verify_minutes)

    def look(reboot: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        checked_at = now_iso()
        result = GreenApiHook(reboot["conn_id"]).get_state_instance()
        return reboot["conn_id"], {"checked_at": checked_at, "result": result.to_dict()}

    looks = dict(in_parallel(settings, accepted, look))
    settled = all(recovery_settled(ApiResult.from_dict(v["result"])) for v in looks.values())
    return settled or now >= deadline, looks


def findings(rebooted: dict[str, Any] | None, recovery: dict[str, Any] | None, settings_raw: Any) -> list[Finding]:
    """One finding per reboot requested."""
    settings = parse_settings(settings_raw)
    recovery = recovery or {}
    out = []
    for reboot in (rebooted or {}).get("reboots", []):
        look = recovery.get(reboot["conn_id"])
        last = ApiResult.from_dict(look["result"]) if look else None
        verdict = reboot_verdict(ApiResult.from_dict(reboot["result"]), last, settings.reboot_verify_minutes)
        out.append(
            Finding.of(
                verdict,
                reboot_triggered=True,
                conn_id=reboot["conn_id"],
                instance_id=reboot["instance_id"],
                dashboard_url=reboot["dashboard_url"],
                checked_at=look["checked_at"] if look else reboot["requested_at"],
                response_time_ms=(last or ApiResult.from_dict(reboot["result"])).response_time_ms,
            )
        )
    return out


# ---- task bodies


def _findings_of_run() -> tuple[dict[str, Any] | None, list[Finding]]:
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    rebooted = ti.xcom_pull(task_ids=REBOOT_TASK)
    return rebooted, findings(rebooted, ti.xcom_pull(task_ids=WAIT_TASK), common.settings_raw())


def reboot_step(conn_ids: list[str]) -> dict[str, Any]:
    rebooted = reboot_all(conn_ids, common.settings_raw())
    accepted = {r["conn_id"] for r in _accepted(rebooted)}
    for r in rebooted["reboots"]:
        if r["conn_id"] in accepted:
            log.info("%s (%s): reboot accepted", r["instance_id"], r["conn_id"])
        else:
            result = r["result"]
            log.warning("%s (%s): reboot not done: %s", r["instance_id"], r["conn_id"],
                        result.get("error") or "the API answered isReboot false")  # fmt: skip
    for problem in rebooted["problems"]:
        log.error(problem)
    log.info("%d reboot(s) requested, %d accepted", len(rebooted["reboots"]), len(accepted))
    return rebooted


def alert_step(trigger_type: str) -> dict[str, Any]:
    return common.alert_step(_findings_of_run()[1], trigger_type)


def log_step(trigger_type: str) -> int:
    return common.log_step(_findings_of_run()[1], ALERT_TASK, trigger_type)


def report_step() -> dict[str, Any]:
    rebooted, found = _findings_of_run()
    return common.report_step(found if rebooted else None, (rebooted or {}).get("problems", []), ALERT_TASK)


def scheduled_targets_step() -> list[str]:
    from airflow.sdk import Variable

    return parse_instances(Variable.get(INSTANCES_VARIABLE, default=None))


def manual_targets_step() -> list[str]:
    from airflow.sdk import Variable, get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    params = get_current_context()["params"]
    try:
        return manual_targets(Variable.get(INSTANCES_VARIABLE, default=None), params.get("instance"), params.get("confirm"))
    except (NotConfirmed, ConfigError) as exc:
        raise AirflowFailException(str(exc)) from None

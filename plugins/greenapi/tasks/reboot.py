"""Glue of the reboot DAGs (scheduled and "force reboot now"): pick, reboot, conclude, alert, log.

Each function is one task's body, with its inputs as TaskFlow arguments (JSON records of
``greenapi.domain``); the decisions are :func:`greenapi.domain.health.reboot_findings`'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from greenapi.domain.config import INSTANCES_VARIABLE, ConfigError, Settings, parse_instances, parse_settings
from greenapi.domain.findings import Finding
from greenapi.domain.health import RebootAttempt, RebootRound, reboot_findings
from greenapi.hooks.green_api import GreenApiHook, in_parallel, open_hooks
from greenapi.tasks import common
from greenapi.tasks.common import now_iso

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)

ALL = "all"
ALERT_TASK = "send_alerts"
REBOOT_TASK = "reboot_instances"


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


def reboot_all(conn_ids: list[str], settings: Settings, reason: str) -> RebootRound:
    """Ask each instance to reboot, concurrently; unusable connections become problems."""
    hooks, problems = open_hooks(conn_ids, f"Variable {INSTANCES_VARIABLE}")

    def reboot(hook: GreenApiHook) -> RebootAttempt:
        requested_at = now_iso()
        return RebootAttempt(hook.green_api_conn_id, hook.config.instance_id, reason, hook.dashboard_url,
                             requested_at=requested_at, result=hook.reboot())  # fmt: skip

    return RebootRound(in_parallel(settings.max_concurrency, hooks, reboot), problems=problems)


def _settings() -> Settings:
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return parse_settings(common.settings_raw())
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from None


# ---- task bodies


def scheduled_targets_step() -> list[str]:
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return parse_instances(Variable.get(INSTANCES_VARIABLE, default=None))
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from None


def manual_targets_step() -> list[str]:
    from airflow.sdk import Variable, get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    params = get_current_context()["params"]
    try:
        return manual_targets(Variable.get(INSTANCES_VARIABLE, default=None), params.get("instance"), params.get("confirm"))
    except (NotConfirmed, ConfigError) as exc:
        raise AirflowFailException(str(exc)) from None


def reboot_step(conn_ids: list[str], trigger_type: str) -> list[dict[str, Any]]:
    """Task body: the recovery waits (the mapped sensor's arguments); the round under key ``round``."""
    settings = _settings()
    round_ = reboot_all(conn_ids, settings, trigger_type)
    for a in round_.attempts:
        if a.accepted:
            log.info("%s (%s): reboot accepted", a.instance_id, a.conn_id)
        else:
            assert a.result is not None
            log.warning("%s (%s): reboot not done: %s", a.instance_id, a.conn_id,
                        a.result.error or "the API answered isReboot false")  # fmt: skip
    for problem in round_.problems:
        log.error(problem)
    log.info("%d reboot(s) requested, %d accepted", len(round_.attempts), len(round_.accepted))
    waits = [
        {"green_api_conn_id": a.conn_id, "poke_interval": float(settings.reboot_poll_seconds),
         "timeout": settings.reboot_verify_minutes * 60}
        for a in round_.accepted
    ]  # fmt: skip
    return common.hand_over(round_, waits)


def conclude_step(rebooted: dict[str, Any] | None, looks: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Task body: one finding per reboot requested."""
    round_ = RebootRound.from_dict(rebooted) if rebooted else None
    return [f.to_dict() for f in reboot_findings(round_, common.recovery_looks(round_, looks), _settings())]


def alert_step(findings: list[dict[str, Any]], trigger_type: str) -> dict[str, Any]:
    return common.alert_step([Finding.from_dict(f) for f in findings], trigger_type)


def log_step(findings: list[dict[str, Any]] | None, alerting: dict[str, Any] | None, trigger_type: str) -> int:
    if findings is None:  # the reboot or its conclusion failed: the report says why
        log.warning("nothing to log: the reboots did not complete (the report says why)")
        return 0
    found = [Finding.from_dict(f) for f in findings]
    return common.log_step(found, common.failed_outcome(alerting, ALERT_TASK), trigger_type)


def report_step(
    waits: list[dict[str, Any]] | None, findings: list[dict[str, Any]] | None,
    alerting: dict[str, Any] | None, logged: int | None,
) -> dict[str, Any]:  # fmt: skip
    """Task body: the run's verdict. ``waits`` is None when the reboot task failed; its round (the
    problems it met) is read from its XCom by task id, None-safe."""
    from airflow.sdk import get_current_context

    rebooted = get_current_context()["ti"].xcom_pull(task_ids=REBOOT_TASK, key=common.ROUND_KEY)
    problems = (rebooted or {}).get("problems", [])
    found = [Finding.from_dict(f) for f in findings] if waits is not None and findings is not None else None
    return common.report_step(found, problems, common.failed_outcome(alerting, ALERT_TASK), logged)

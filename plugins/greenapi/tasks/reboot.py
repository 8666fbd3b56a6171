"""Glue of the reboot DAGs (scheduled and "force reboot now"): pick, reboot, conclude, alert, log.

Each function is one task's body, with its inputs as TaskFlow arguments (the JSON of
``greenapi.domain`` records); the decisions are :func:`greenapi.domain.health.reboot_findings`'s.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from greenapi.dashboard import dashboard_link
from greenapi.domain.codec import decode, encode
from greenapi.domain.config import (
    INSTANCES_VARIABLE,
    ConfigError,
    InstanceList,
    Settings,
    parse_instance_list,
)
from greenapi.domain.findings import Finding
from greenapi.domain.health import RebootAttempt, RebootRound, RecoveryWait, reboot_findings, recovery_waits
from greenapi.hooks.green_api import GreenApiHook, in_parallel, open_hooks
from greenapi.tasks import common
from greenapi.tasks.context import TaskContext

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)

ALL = "all"
ALERT_TASK = "send_alerts"
REBOOT_TASK = "reboot_instances"


class NotConfirmed(Exception):
    """A manual reboot was triggered without its confirmation."""


def manual_targets(instances_raw: Any, instance: Any, confirm: Any) -> list[str]:
    """The keys a "force reboot now" run may reboot (connection ids, and partner accounts'
    instances as ``<partner connection id>/<idInstance>``); refuses without confirmation."""
    if confirm is not True:
        raise NotConfirmed(
            "Reboot not confirmed: nothing was rebooted. A reboot can disconnect WhatsApp; trigger "
            "green_api_reboot again with 'confirm' ticked (conf {\"confirm\": true}) to proceed."
        )
    wanted = parse_instance_list(instances_raw)
    if instance not in (None, "", ALL) and instance in wanted.conn_ids:
        return [instance]
    configured = monitored(wanted)
    if instance in (None, "", ALL):
        return configured
    if instance not in configured:
        shown = ", ".join(configured[:20]) + (f" and {len(configured) - 20} more" if len(configured) > 20 else "")
        raise ConfigError(f"instance {instance!r} is not one of the monitored instances ({shown}) or 'all'")
    return [instance]


def monitored(wanted: InstanceList) -> list[str]:
    """Every key of the instance list, each partner account listed now; an account that cannot be
    listed fails the run, naming it (a reboot of "all" must not quietly skip an account)."""
    from greenapi.hooks.green_api import expand_instances

    if not wanted.partners:
        return wanted.conn_ids
    expanded = expand_instances(wanted, max_age=0)
    if expanded.problems:
        raise ConfigError("; ".join(expanded.problems))
    return expanded.keys


def reboot_all(conn_ids: list[str], settings: Settings, reason: str) -> RebootRound:
    """Ask each instance to reboot, concurrently; unusable connections become problems."""
    hooks, problems = open_hooks(conn_ids, f"Variable {INSTANCES_VARIABLE}")
    link = dashboard_link()

    def reboot(hook: GreenApiHook) -> RebootAttempt:
        requested_at = datetime.now(UTC).isoformat()
        return RebootAttempt(hook.green_api_conn_id, hook.config.instance_id, reason, hook.config.dashboard_url or link,
                             requested_at=requested_at, result=hook.reboot())  # fmt: skip

    return RebootRound(in_parallel(settings.max_concurrency, hooks, reboot), problems=problems)


# ---- task bodies


def scheduled_targets_step() -> list[str]:
    """Task body: every monitored instance."""
    from airflow.sdk import Variable

    ctx = TaskContext.load()
    return ctx.checked(lambda: monitored(parse_instance_list(Variable.get(INSTANCES_VARIABLE, default=None))))


def manual_targets_step() -> list[str]:
    """Task body: the instance(s) the trigger form asks for, once confirmed."""
    from airflow.sdk import Variable, get_current_context

    ctx = TaskContext.load()
    params = get_current_context()["params"]
    try:
        return manual_targets(Variable.get(INSTANCES_VARIABLE, default=None), params.get("instance"), params.get("confirm"))
    except (NotConfirmed, ConfigError) as exc:
        ctx.fail(str(exc))


def reboot_step(conn_ids: list[str], trigger_type: str) -> list[RecoveryWait]:
    """Task body: the recovery waits (the mapped sensor's arguments); the round under key ``round``."""
    ctx = TaskContext.load()
    round_ = reboot_all(conn_ids, ctx.settings, trigger_type)
    for a in round_.attempts:
        if a.accepted:
            log.info("%s (%s): reboot accepted", a.instance_id, a.conn_id)
        else:
            log.warning("%s (%s): reboot not done: %s", a.instance_id, a.conn_id,
                        (a.result.error if a.result else None) or "the API answered isReboot false")  # fmt: skip
    for problem in round_.problems:
        log.error(problem)
    log.info("%d reboot(s) requested, %d accepted", len(round_.attempts), len(round_.accepted))
    ctx.keep(common.ROUND_KEY, round_.to_dict())
    return recovery_waits(round_, ctx.settings)


def conclude_step(rebooted: dict[str, Any] | None, looks: Sequence[list[dict[str, Any]] | None] | None,
                  ) -> list[dict[str, Any]]:  # fmt: skip
    """Task body: one finding per reboot requested."""
    ctx = TaskContext.load()
    round_ = RebootRound.from_dict(rebooted) if rebooted else None
    looked = common.recovery_looks(round_, common.waited(looks))
    return encode(reboot_findings(round_, looked, ctx.settings), list[Finding])  # type: ignore[no-any-return]


def alert_step(findings: list[dict[str, Any]], trigger_type: str) -> dict[str, Any]:
    """Task body: each finding's alert to every contact."""
    return common.one_shot_alerts(TaskContext.load(), decode(list[Finding], findings), trigger_type)


def log_step(findings: list[dict[str, Any]] | None, alerting: dict[str, Any] | None, trigger_type: str) -> int:
    """Task body: one health-log row per reboot requested."""
    if findings is None:  # the reboot or its conclusion failed: the report says why
        log.warning("nothing to log: the reboots did not complete (the report says why)")
        return 0
    ctx = TaskContext.load()
    outcome = common.failed_outcome(ctx, alerting, ALERT_TASK)
    return common.log_step(ctx, decode(list[Finding], findings), outcome, trigger_type)


def report_step(
    waits: list[dict[str, Any]] | None, findings: list[dict[str, Any]] | None,
    alerting: dict[str, Any] | None, logged: int | None,
) -> dict[str, Any]:  # fmt: skip
    """Task body: the run's verdict. ``waits`` is None when the reboot task failed; its round (the
    problems it met) is read from its XCom by task id, None-safe."""
    ctx = TaskContext.load()
    round_ = ctx.pulled(REBOOT_TASK, common.ROUND_KEY, RebootRound)
    found = decode(list[Finding], findings) if waits is not None and findings is not None else None
    outcome = common.failed_outcome(ctx, alerting, ALERT_TASK)
    return common.report(found, round_.problems if round_ else [], outcome, logged).to_dict()

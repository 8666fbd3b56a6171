"""Glue of the health-check DAG: check every instance, reboot the ones that did not answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from greenapi.domain.config import INSTANCES_VARIABLE, ConfigError, Settings, parse_instances, parse_settings
from greenapi.domain.findings import Finding
from greenapi.domain.results import ApiResult
from greenapi.domain.rules import Verdict, after_reboot, classify_check
from greenapi.domain.schedule import REBOOT_SCHEDULE_VARIABLE, parse_reboot_schedule, settle_window_start
from greenapi.hooks.green_api import GreenApiHook
from greenapi.tasks import common
from greenapi.tasks.common import in_parallel, now_iso, open_hooks

CHECK_TASK = "check_instances"
REBOOT_TASK = "reboot_instances"
ALERT_TASK = "send_alerts"


def check_instances(instances_raw: Any, settings_raw: Any) -> dict[str, Any]:
    """Check every configured instance concurrently (bounded by ``max_concurrency``).

    Raises ConfigError for an invalid Variable (nothing can be checked). A connection that cannot
    be used is reported in ``problems`` and the other instances are still checked.
    """
    conn_ids = parse_instances(instances_raw)
    settings = parse_settings(settings_raw)
    hooks, problems = open_hooks(conn_ids, f"Variable {INSTANCES_VARIABLE}")

    def check(hook: GreenApiHook) -> dict[str, Any]:
        checked_at = now_iso()
        result = hook.get_state_instance()
        return {
            "conn_id": hook.green_api_conn_id,
            "instance_id": hook.config.instance_id,
            "dashboard_url": hook.config.dashboard_url,
            "checked_at": checked_at,
            "result": result.to_dict(),
        }

    return {"checks": in_parallel(settings, hooks, check), "problems": problems}


def _verdict(check: dict[str, Any], reboot: dict[str, Any] | None = None) -> Verdict:
    verdict = classify_check(ApiResult.from_dict(check["result"]))
    if reboot is not None:
        verdict = after_reboot(verdict, ApiResult.from_dict(reboot))
    return verdict


def route(checked: dict[str, Any]) -> list[str]:
    """The branch: reboot first when a check calls for it; the alert step always runs."""
    if any(_verdict(c).reboot for c in checked["checks"]):
        return [REBOOT_TASK]
    return [ALERT_TASK]


def reboot_instances(checked: dict[str, Any], settings_raw: Any) -> dict[str, dict[str, Any]]:
    """One automatic reboot per instance whose check calls for it; results by connection id."""
    targets = [c["conn_id"] for c in checked["checks"] if _verdict(c).reboot]

    def reboot(conn_id: str) -> tuple[str, dict[str, Any]]:
        return conn_id, GreenApiHook(conn_id).reboot().to_dict()

    return dict(in_parallel(parse_settings(settings_raw), targets, reboot))


def findings(checked: dict[str, Any] | None, reboots: dict[str, dict[str, Any]] | None) -> list[Finding]:
    """One finding per check made, its automatic reboot included."""
    reboots = reboots or {}
    out = []
    for check in (checked or {}).get("checks", []):
        reboot = reboots.get(check["conn_id"])
        out.append(
            Finding.of(
                _verdict(check, reboot),
                reboot_triggered=reboot is not None,
                conn_id=check["conn_id"],
                instance_id=check["instance_id"],
                dashboard_url=check["dashboard_url"],
                checked_at=check["checked_at"],
                response_time_ms=check["result"]["response_time_ms"],
            )
        )
    return out


# ---- task bodies


def _pulled() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    return ti.xcom_pull(task_ids=CHECK_TASK), ti.xcom_pull(task_ids=REBOOT_TASK)


def check_step() -> dict[str, Any]:
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return check_instances(Variable.get(INSTANCES_VARIABLE, default=None), common.settings_raw())
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from None


def reboot_step(checked: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return reboot_instances(checked, common.settings_raw())


def logical_now() -> datetime:
    """The run's logical time: incident timing follows it, so tests can drive simulated hours."""
    from airflow.sdk import get_current_context

    dag_run = get_current_context()["dag_run"]
    moment = dag_run.logical_date or dag_run.run_after
    return datetime.fromisoformat(moment.isoformat())


def maintenance_windows(found: list[Finding], now: datetime, settings: Settings, store: Any) -> dict[str, bool]:
    """Instances whose failing check falls in the settle time after the scheduled reboot.

    Not suppressed when the scheduled reboot itself logged a failure for that instance.
    """
    from airflow.sdk import Variable

    try:
        schedule = parse_reboot_schedule(Variable.get(REBOOT_SCHEDULE_VARIABLE, default=None))
    except ConfigError:
        return {}  # the scheduled reboot DAG shows the error; no window is assumed
    start = settle_window_start(now, schedule, settings.settle_minutes)
    if start is None:
        return {}
    ids = [f.instance_id for f in found]
    failed = store.scheduled_reboot_failures(start, ids)
    return {i: i not in failed for i in ids}


def alert_step() -> dict[str, Any]:
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    from greenapi.store import IncidentStore
    from greenapi.tasks.alerting import AlertRun

    context = get_current_context()
    ti, dag_run = context["ti"], context["dag_run"]
    found = findings(*_pulled())
    settings = parse_settings(common.settings_raw())
    now = logical_now()
    store = IncidentStore()
    windows = maintenance_windows(found, now, settings, store)
    outcome = AlertRun(store, settings, now, dag_run.dag_id, dag_run.run_id).run(found, windows)
    outcome["in_window"] = windows
    if outcome["undelivered"]:
        ti.xcom_push(key="failed_outcome", value=outcome)
        raise AirflowFailException("; ".join(outcome["problems"]))
    return outcome


def log_step() -> int:
    return common.log_step(findings(*_pulled()), ALERT_TASK)


def report_step() -> dict[str, Any]:
    checked, reboots = _pulled()
    return common.report_step(
        findings(checked, reboots) if checked else None, (checked or {}).get("problems", []), ALERT_TASK
    )

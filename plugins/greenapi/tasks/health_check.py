"""Glue of the health-check DAG: check every instance, reboot the ones that did not answer."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from greenapi.domain.config import INSTANCES_VARIABLE, ConfigError, Settings, parse_settings, plan_shards
from greenapi.domain.findings import Finding
from greenapi.domain.results import ApiResult
from greenapi.domain.rules import (
    AlertKind,
    Status,
    Verdict,
    after_reboot,
    classify_check,
    reboot_allowed,
    reboot_reason,
    reboot_verdict,
)
from greenapi.domain.schedule import REBOOT_SCHEDULE_VARIABLE, parse_reboot_schedule, settle_window_start
from greenapi.domain.summary import Checked, problem_lines, summary_line
from greenapi.hooks.green_api import GreenApiHook
from greenapi.tasks import common
from greenapi.tasks.common import UnusableConnection, in_parallel, now_iso, open_hook

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

log = logging.getLogger(__name__)

PLAN_TASK = "plan_checks"
SHARD_TASK = "check_shard"
CHECK_TASK = "check_instances"
REBOOT_TASK = "reboot_instances"
WAIT_TASK = "wait_for_recovery"
ALERT_TASK = "send_alerts"


def check_instances(conn_ids: list[str], settings_raw: Any) -> dict[str, Any]:
    """Check these instances concurrently (bounded by ``max_concurrency``).

    A connection that cannot be used is reported in ``problems``; the others are still checked.
    """
    settings = parse_settings(settings_raw)

    # Each worker loads its own connection: loading overlaps the calls already waiting.
    def check(conn_id: str) -> dict[str, Any] | str:
        try:
            hook = open_hook(conn_id)
        except UnusableConnection as exc:
            return f"{exc} (listed in Variable {INSTANCES_VARIABLE})"
        checked_at = now_iso()
        result = hook.get_state_instance()
        return {
            "conn_id": hook.green_api_conn_id,
            "instance_id": hook.config.instance_id,
            "dashboard_url": common.dashboard_url(hook),
            "checked_at": checked_at,
            "result": result.to_dict(),
        }

    done = in_parallel(settings, conn_ids, check)
    return {"checks": [c for c in done if isinstance(c, dict)], "problems": [p for p in done if isinstance(p, str)]}


def merge_shards(shards: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The mapped tasks' results as one, in the Variable's order."""
    merged: dict[str, Any] = {"checks": [], "problems": []}
    for shard in shards:
        merged["checks"].extend(shard["checks"])
        merged["problems"].extend(shard["problems"])
    return merged


def _verdict(check: dict[str, Any]) -> Verdict:
    return classify_check(ApiResult.from_dict(check["result"]))


def plan_reboots(
    checks: list[dict[str, Any]], statuses: dict[str, tuple[Any, ...]], now: datetime, settings: Settings
) -> dict[str, str]:
    """Which instances call for an automatic reboot, and why (by connection id)."""
    reasons = {}
    for check in checks:
        verdict = _verdict(check)
        status = statuses.get(check["instance_id"])
        # (instance_id, failing_kind, failures, successes, last_state, state_since, auto_reboots, streak_started_at)
        since = status[5] if status and status[4] == verdict.state and status[5] else now
        reason = reboot_reason(
            verdict, since, now,
            starting_reboot_minutes=settings.starting_reboot_minutes,
            reboot_on_yellow_card=settings.reboot_on_yellow_card,
        )  # fmt: skip
        if reason:
            reasons[check["conn_id"]] = reason
    return reasons


def route(checked: dict[str, Any]) -> list[str]:
    """The branch: reboot first when a check calls for it; the alert step always runs."""
    return [REBOOT_TASK] if checked.get("reboot_reasons") else [ALERT_TASK]


def reboot_instances(
    checked: dict[str, Any], settings_raw: Any, store: Any,
    earlier_reboots: Callable[[], dict[str, list[datetime]]] = dict,
) -> dict[str, Any]:  # fmt: skip
    """Reboot what calls for it, safely: a quick re-check first, then the cooldown and the cap.

    The reboot is recorded before it is requested, so a retried task never reboots twice. When
    the health database is unreachable, the cooldown is checked against ``earlier_reboots()``
    (the previous runs' reboots, from XCom) and the reboot is not recorded there.
    """
    from greenapi.store import StoreUnavailable

    settings = parse_settings(settings_raw)
    now = datetime.fromisoformat(checked["logical_now"])
    checks = {c["conn_id"]: c for c in checked["checks"]}
    reasons: dict[str, str] = checked.get("reboot_reasons", {})
    store_error = None
    try:
        history = {r[0]: list(r[6] or []) for r in store.counters([checks[c]["instance_id"] for c in reasons])}
    except StoreUnavailable as exc:
        history, store_error = earlier_reboots(), str(exc)

    def handle(conn_id: str) -> dict[str, Any]:
        check = checks[conn_id]
        hook = GreenApiHook(conn_id)
        entry: dict[str, Any] = {"conn_id": conn_id, "instance_id": check["instance_id"], "reason": reasons[conn_id],
                                 "dashboard_url": check["dashboard_url"]}  # fmt: skip
        recheck = hook.get_state_instance(timeout=settings.recheck_timeout_seconds)
        entry["recheck"] = recheck.to_dict()
        if classify_check(recheck).status is Status.HEALTHY:
            entry["skipped"] = "recovered"
            return entry
        previous = history.get(check["instance_id"], [])
        refused = reboot_allowed(
            previous, now, cooldown_minutes=settings.reboot_cooldown_minutes, daily_cap=settings.reboot_daily_cap
        )
        if refused:
            entry["skipped"] = refused
            entry["recent_reboots"] = len([t for t in previous if now - timedelta(hours=24) < t <= now])
            return entry
        if store_error is None:
            store.record_auto_reboot(check["instance_id"], now)
        entry["requested_at"] = now_iso()
        entry["result"] = hook.reboot().to_dict()
        return entry

    entries = in_parallel(settings, list(reasons), handle)
    return {
        "reboots": [e for e in entries if "result" in e],
        "skipped": {e["conn_id"]: e for e in entries if "skipped" in e},
        "store_error": store_error,
    }


def _after_reboot(verdict: Verdict, entry: dict[str, Any], look: dict[str, Any] | None, minutes: float) -> Verdict:
    reboot = ApiResult.from_dict(entry["result"])
    if not reboot.ok or reboot.data.get("isReboot") is not True:
        return after_reboot(verdict, reboot)  # the seed's timeout_and_reboot_failed / complete_failure
    last = ApiResult.from_dict(look["result"]) if look else None
    outcome = reboot_verdict(reboot, last, minutes)
    if outcome.status is Status.REBOOTED:
        return replace(verdict, status=Status.REBOOTED, reboot_success=True, alert=None)
    return replace(outcome, error=f"{verdict.error} | {outcome.error}")


def _skipped(verdict: Verdict, entry: dict[str, Any], settings: Settings) -> Verdict:
    if entry["skipped"] == "recovered":
        again = classify_check(ApiResult.from_dict(entry["recheck"]))
        return replace(again, error=f"First check: {verdict.error}; re-check: {again.state} (no reboot)")
    if entry["skipped"] == "cap":
        error = (f"{verdict.error} | {entry['recent_reboots']} automatic reboots in 24 h: "
                 f"cap of {settings.reboot_daily_cap} reached, no more automatic reboots")  # fmt: skip
        return replace(verdict, alert=AlertKind.REBOOT_LOOP, error=error)
    error = f"{verdict.error} | automatic reboot skipped: cooldown of {settings.reboot_cooldown_minutes:g} min"
    return replace(verdict, alert=verdict.alert or AlertKind.COMPLETE_FAILURE, error=error)


def findings(
    checked: dict[str, Any] | None,
    rebooted: dict[str, Any] | None,
    recovery: dict[str, Any] | None = None,
    settings_raw: Any = None,
) -> list[Finding]:
    """One finding per check made, with its re-check, its reboot and the recovery seen after it."""
    settings = parse_settings(settings_raw)
    reboots = {e["conn_id"]: e for e in (rebooted or {}).get("reboots", [])}
    skipped = (rebooted or {}).get("skipped", {})
    out = []
    for check in (checked or {}).get("checks", []):
        conn_id = check["conn_id"]
        verdict = _verdict(check)
        if conn_id in skipped:
            verdict = _skipped(verdict, skipped[conn_id], settings)
        elif conn_id in reboots:
            look = (recovery or {}).get(conn_id)
            verdict = _after_reboot(verdict, reboots[conn_id], look, settings.reboot_verify_minutes)
        out.append(
            Finding.of(
                verdict,
                reboot_triggered=conn_id in reboots,
                conn_id=conn_id,
                instance_id=check["instance_id"],
                dashboard_url=check["dashboard_url"],
                checked_at=check["checked_at"],
                response_time_ms=check["result"]["response_time_ms"],
            )
        )
    return out


# ---- task bodies


def _found() -> list[Finding]:
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    return findings(
        ti.xcom_pull(task_ids=CHECK_TASK), ti.xcom_pull(task_ids=REBOOT_TASK), ti.xcom_pull(task_ids=WAIT_TASK),
        common.settings_raw(),
    )


def _fail_with(exc: ConfigError) -> NoReturn:
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    get_current_context()["ti"].xcom_push(key="error", value=str(exc))  # for the run's report
    raise AirflowFailException(str(exc)) from None


def plan_step() -> list[list[str]]:
    from airflow.sdk import Variable

    try:
        return plan_shards(Variable.get(INSTANCES_VARIABLE, default=None), common.settings_raw())
    except ConfigError as exc:
        _fail_with(exc)


def log_checks(checked: dict[str, Any]) -> None:
    """The task log a person reads: one line per instance with a problem, then a summary."""
    items = [Checked(c["instance_id"], c["conn_id"], _verdict(c)) for c in checked["checks"]]
    for line in problem_lines(items):
        log.warning(line)
    for problem in checked["problems"]:
        log.error(problem)
    log.info(summary_line(items))


def shard_step(conn_ids: list[str]) -> dict[str, Any]:
    try:
        checked = check_instances(conn_ids, common.settings_raw())
    except ConfigError as exc:
        _fail_with(exc)
    log_checks(checked)
    return checked


def check_step(shards: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from greenapi.store import IncidentStore, StoreUnavailable

    try:
        settings = parse_settings(common.settings_raw())
    except ConfigError as exc:
        _fail_with(exc)
    # One slice fetches every shard at once; iterating Airflow's lazy sequence of mapped results
    # asks for one item past the end, which its client logs as an error in this task's log.
    checked = merge_shards(shards[:])
    now = logical_now()
    checked["logical_now"] = now.isoformat()
    try:
        rows = IncidentStore().counters([c["instance_id"] for c in checked["checks"]])
    except StoreUnavailable as exc:  # the checks stand; reboots are decided on this check alone
        rows = []
        checked["problems"].append(f"{exc} (check_instances: reboots decided without the instances' history)")
    statuses = {r[0]: r for r in rows}
    checked["reboot_reasons"] = plan_reboots(checked["checks"], statuses, now, settings)
    log_checks(checked)
    for conn_id, reason in checked["reboot_reasons"].items():
        log.warning("automatic reboot of %s planned: %s", conn_id, reason)
    return checked


def _earlier(ti: Any, task_id: str) -> list[dict[str, Any]]:
    """The task's results in this DAG's earlier runs (Airflow's XComs): what the health
    database would say, for when it cannot be reached."""
    found = ti.xcom_pull(task_ids=task_id, include_prior_dates=True)
    values = found if isinstance(found, list) else [found]
    return [v for v in values if isinstance(v, dict)]


def reboot_step(checked: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk import get_current_context

    from greenapi.store import IncidentStore

    def earlier_reboots() -> dict[str, list[datetime]]:
        history: dict[str, list[datetime]] = {}
        for earlier in _earlier(get_current_context()["ti"], REBOOT_TASK):
            for entry in earlier.get("reboots", []):
                history.setdefault(entry["instance_id"], []).append(datetime.fromisoformat(entry["requested_at"]))
        return history

    return reboot_instances(checked, common.settings_raw(), IncidentStore(), earlier_reboots)


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

    from greenapi.store import IncidentStore, StoreUnavailable
    from greenapi.tasks.alerting import AlertRun, untracked_alerts

    context = get_current_context()
    ti, dag_run = context["ti"], context["dag_run"]
    found = _found()
    settings = parse_settings(common.settings_raw())
    now = logical_now()
    store = IncidentStore()
    run = None
    try:
        windows = maintenance_windows(found, now, settings, store)
        run = AlertRun(store, settings, now, dag_run.dag_id, dag_run.run_id)
        outcome = run.run(found, windows)
    except StoreUnavailable as exc:  # support is still told, through fallback_chat_ids
        told: dict[str, str] = {}
        for earlier in _earlier(ti, ALERT_TASK):
            for key, at in earlier.get("untracked", {}).items():
                told[key] = max(at, told.get(key, at))
        windows = {}
        outcome = untracked_alerts(found, settings, now, told, str(exc), run.deliveries if run else [])
    outcome["in_window"] = windows
    common.log_deliveries(outcome)
    if outcome["undelivered"]:
        ti.xcom_push(key="failed_outcome", value=outcome)
        raise AirflowFailException("; ".join(outcome["problems"]))
    return outcome


def log_step() -> int:
    from airflow.sdk.exceptions import AirflowFailException

    try:
        found = _found()
    except ConfigError as exc:  # a retry cannot fix the configuration: fail now
        raise AirflowFailException(f"{exc}: nothing could be logged") from None
    return common.log_step(found, ALERT_TASK)


def report_step() -> dict[str, Any]:
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    checked = ti.xcom_pull(task_ids=CHECK_TASK)
    problems = (checked or {}).get("problems", [])
    if not problems:  # a configuration error stopped the check; a mapped task gives a list
        for task_id in (PLAN_TASK, SHARD_TASK, CHECK_TASK):
            error = ti.xcom_pull(task_ids=task_id, key="error")
            problems.extend(error if isinstance(error, list) else [error])
    return common.report_step(_found() if checked else None, [p for p in problems if p], ALERT_TASK)

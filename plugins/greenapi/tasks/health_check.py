"""Glue of the health-check DAG: the I/O around the decisions of :mod:`greenapi.domain.health`.

Each function is one task's body; it gets its inputs as TaskFlow arguments (JSON records of
``greenapi.domain``) and reads the run's context, Variables, connections and the health database.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from greenapi.domain.alerts import limits_of
from greenapi.domain.broken import ALL_READS, Read, due_reads
from greenapi.domain.config import (
    INSTANCES_VARIABLE,
    ConfigError,
    Settings,
    instances_digest,
    parse_instances,
    parse_settings,
    plan_shards,
    shard_of,
)
from greenapi.domain.findings import Finding
from greenapi.domain.health import (
    LOST_ROUND,
    CheckedRun,
    RebootAttempt,
    RebootRound,
    findings,
    for_stuck_queue,
    lost_round,
    plan_reboots,
    reboot_skip,
    reboots_in_24h,
    within_24h,
)
from greenapi.domain.records import AlertOutcome, CheckBatch
from greenapi.domain.results import ApiResult, ResultKind
from greenapi.domain.rules import Status, classify_check
from greenapi.domain.runs import log_rows
from greenapi.domain.schedule import REBOOT_SCHEDULE_VARIABLE, parse_reboot_schedule, settle_window_start
from greenapi.domain.summary import checked as classified
from greenapi.domain.summary import summary_line
from greenapi.hooks.green_api import GreenApiHook, in_parallel
from greenapi.tasks import common
from greenapi.tasks.common import now_iso

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from greenapi.store import IncidentStore

log = logging.getLogger(__name__)

REBOOT_TASK = "reboot_instances"
ALERT_TASK = "send_alerts"
ERROR_KEY = "error"  # XCom of a task stopped by the configuration: the report names the error
UNTRACKED_KEY = "untracked"  # alerts sent without the health database, carried from run to run


def logical_now() -> datetime:
    """The run's logical time: incident timing follows it, so tests can drive simulated hours."""
    from airflow.sdk import get_current_context

    dag_run = get_current_context()["dag_run"]
    moment = dag_run.logical_date or dag_run.run_after
    return datetime.fromisoformat(moment.isoformat())


def _settings() -> Settings:
    try:
        return parse_settings(common.settings_raw())
    except ConfigError as exc:
        _fail_with(exc)


def _fail_with(exc: ConfigError) -> NoReturn:
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    get_current_context()["ti"].xcom_push(key=ERROR_KEY, value=str(exc))  # for the run's report
    raise AirflowFailException(str(exc)) from None


# ---- plan_checks -> check_shard (GreenApiHealthCheckOperator, mapped) -> check_instances


def plan_step() -> list[dict[str, Any]]:
    """The mapped check tasks' arguments: a shard number each (its part of the instance list, which
    it reads itself: the plan's XCom stays small at any scale), and the concurrency."""
    from airflow.sdk import Variable

    raw = common.settings_raw()
    try:
        settings = parse_settings(raw)
        shards = plan_shards(Variable.get(INSTANCES_VARIABLE, default=None), raw)
    except ConfigError as exc:
        _fail_with(exc)
    conn_ids = [conn_id for shard in shards for conn_id in shard]  # the list, in its order
    digest = instances_digest(conn_ids)
    log.info("%d instance(s) in %d check task(s)", len(conn_ids), len(shards))
    return [{"shard": n, "shards": len(shards), "instances_digest": digest, "max_concurrency": settings.max_concurrency,
             "listed_in": f"Variable {INSTANCES_VARIABLE}"} for n in range(len(shards))]  # fmt: skip


def shard_conn_ids(shard: int, shards: int, digest: str) -> list[str]:
    """check_shard's connection ids: its part of Variable green_api_instances, as plan_checks cut it.

    A list changed since the plan (someone edited the Variable during the run) is cut the same way
    and the change is logged: the run's tasks still check each instance once if they all read the
    new list; the next run uses it whole.
    """
    from airflow.sdk import Variable

    try:
        conn_ids = parse_instances(Variable.get(INSTANCES_VARIABLE, default=None))
    except ConfigError as exc:
        _fail_with(exc)
    if instances_digest(conn_ids) != digest:
        log.warning("Variable %s changed since plan_checks: checking part %d of %d of the new list",
                    INSTANCES_VARIABLE, shard + 1, shards)  # fmt: skip
    return shard_of(conn_ids, shard, shards)


def check_step(shards: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The shards' checks as one, with the reboots they call for (by the instances' history)."""
    from greenapi.store import IncidentStore, StoreUnavailable

    settings = _settings()
    # One slice fetches every shard at once; iterating Airflow's lazy sequence of mapped results
    # asks for one item past the end, which its client logs as an error in this task's log.
    batch = CheckBatch.merge(CheckBatch.from_dict(shard) for shard in shards[:])
    now = logical_now()
    store = IncidentStore()
    try:
        history = store.counters([c.instance_id for c in batch.checks])
        reboots = store.auto_reboots()  # all instances': the carry must hold the settled ones' too
    except StoreUnavailable as exc:  # the checks stand; reboots are decided on this check alone
        history = {}
        batch.problems.append(f"{exc} (check_instances: reboots decided without the instances' history)")
        log.error(batch.problems[-1])
        # The past day's reboots, as the previous run's reboot task carried them (see RebootRound).
        earlier = _latest(REBOOT_TASK, common.ROUND_KEY)
        reboots = RebootRound.from_dict(earlier).reboots_24h if earlier else {}
    checked = CheckedRun(batch, now, plan_reboots(batch.checks, history, now, settings), within_24h(reboots, now))
    # Each check_shard logged its instances' problems, and counted and logged its quiet healthy ones.
    settled = f"; {batch.settled} more healthy, settled by their check_shard" if batch.settled else ""
    log.info("%s%s", summary_line(classified(batch)), settled)
    for conn_id, reason in checked.reboot_reasons.items():
        log.warning("automatic reboot of %s planned: %s", conn_id, reason)
    return checked.to_dict()


def reads_due() -> Callable[[str], frozenset[Read]]:
    """What check_shard reads of each authorized instance beyond its state, by instance id: the
    socket at every check, the queue and the settings when their periods have passed since their
    last reads (kept in the health database; without it, everything is read). Asked once the
    state calls have gone out: the read times are fetched then, on the first question."""
    settings = _settings()
    now = logical_now()
    lock = threading.Lock()
    known: list[dict[str, tuple[Any, Any]]] = []

    def fetched() -> dict[str, tuple[Any, Any]]:
        from greenapi.store import IncidentStore, StoreUnavailable

        with lock:
            if not known:
                try:
                    known.append(IncidentStore().read_times())
                except StoreUnavailable as exc:
                    log.warning("%s: the queue and the settings are read at this check", exc)
                    known.append({})
            return known[0]

    def due(instance_id: str) -> frozenset[Read]:
        times = fetched()
        queue_at, settings_at = times.get(instance_id, (None, None))
        return due_reads(ALL_READS, now, queue_at, settings_at, queue_minutes=settings.queue_check_minutes,
                         settings_minutes=settings.settings_check_minutes)  # fmt: skip

    return due


def _mark_reads(batch: CheckBatch, now: datetime, store: IncidentStore) -> None:
    """Record when the queue and the settings were read, so that each keeps its own period."""
    made = {c.instance_id: (now if c.reading.queue is not None else None,
                            now if c.reading.settings is not None else None)
            for c in batch.checks if c.reading is not None}  # fmt: skip
    store.mark_reads({i: times for i, times in made.items() if times != (None, None)})


def settle_step(raw: dict[str, Any]) -> dict[str, Any]:
    """check_shard's end: its healthy checks of quiet instances (not failing, no incident to follow
    up, nothing wrong read beyond the state and no streak of it running) are counted and get their
    health-log rows here, in one transaction; the batch that goes on holds the other checks and the
    count. The XCom of a run is then O(problems), not O(instances). Without the health database,
    every check goes on, as before."""
    from greenapi.store import IncidentStore, StoreUnavailable

    batch = CheckBatch.from_dict(raw)
    settings = _settings()
    now = logical_now()
    store = IncidentStore()
    try:
        settled = _settle(batch, settings, now, store)
        _mark_reads(batch, now, store)
    except StoreUnavailable as exc:
        log.warning("%s: every check goes on to check_instances", exc)
        return raw
    if not settled:
        return raw
    batch = replace(batch, checks=[c for c in batch.checks if c.instance_id not in settled],
                    settled=batch.settled + len(settled))  # fmt: skip
    log.info("%d healthy instance(s) counted and logged here; %d check(s) go on to check_instances",
             len(settled), len(batch.checks))  # fmt: skip
    return batch.to_dict()


def _settle(batch: CheckBatch, settings: Settings, now: datetime, store: IncidentStore) -> set[str]:
    from airflow.sdk import get_current_context

    limits = limits_of(settings)
    healthy = [c for c in batch.checks if classify_check(c.result).status is Status.HEALTHY
               and not (c.reading and c.reading.follow_up(limits))]  # fmt: skip
    if not healthy:
        return set()
    dag_run = get_current_context()["dag_run"]
    found = findings(CheckedRun(CheckBatch(healthy), now), None, {}, settings)
    windows = maintenance_windows(found, now, settings, store)
    rows = log_rows(found, AlertOutcome(in_window=windows), dag_id=dag_run.dag_id, run_id=dag_run.run_id,
                    trigger_type=common.run_trigger_type(dag_run.run_type))  # fmt: skip
    return store.settle_healthy(rows, now)


# ---- reboot_instances -> wait_for_recovery (GreenApiStateSensor, mapped)


def reboot_instances(
    checked: CheckedRun, settings: Settings, store: IncidentStore,
    earlier_reboots: Callable[[], dict[str, list[datetime]]] = dict, run_again: bool = False,
) -> RebootRound:  # fmt: skip
    """Reboot what calls for it, safely: a quick re-check first, then the cooldown and the cap.

    The reboot is recorded in the health database (at the run's logical time) before it is
    requested, so a task run again (``run_again``: cleared or retried) finds it and never reboots
    twice. When that database is unreachable, the cooldown and the cap are checked against
    ``earlier_reboots()`` and nothing is recorded: in the DAG, the past 24 h of reboots that each
    run carries to the next in XCom (``CheckedRun.reboots_24h``, from the database when it was
    last reachable, plus every reboot made since). A task run again without the database cannot
    know what its earlier try did (clearing it deleted its XCom): it reboots nothing, and the
    finding says so.
    """
    from greenapi.store import StoreUnavailable

    now = checked.logical_now
    checks = {c.conn_id: c for c in checked.batch.checks}
    store_error = None
    try:
        history = {i: list(h.auto_reboots) for i, h in
                   store.counters([checks[c].instance_id for c in checked.reboot_reasons]).items()}  # fmt: skip
    except StoreUnavailable as exc:
        history, store_error = earlier_reboots(), str(exc)

    def handle(conn_id: str) -> RebootAttempt:
        check = checks[conn_id]
        hook = GreenApiHook(conn_id)
        recheck = hook.get_state_instance(timeout=settings.recheck_timeout_seconds)
        previous = history.get(check.instance_id, [])
        reason = checked.reboot_reasons[conn_id]
        attempt = RebootAttempt(conn_id, check.instance_id, reason, check.dashboard_url,
                                recheck, reboot_skip(recheck, previous, now, settings,
                                                     unknown=run_again and store_error is not None,
                                                     state_problem=not for_stuck_queue(reason)),
                                reboots_in_24h(previous, now))  # fmt: skip
        if attempt.skipped is not None:
            return attempt
        if store_error is None:
            store.record_auto_reboot(check.instance_id, now)
        requested_at = now_iso()
        return replace(attempt, requested_at=requested_at, result=hook.reboot())

    def safely(conn_id: str) -> RebootAttempt:
        """One instance's failure (its connection gone, a database error on its claim) is its own:
        it is reported as its reboot failing, and the others are rebooted and alerted as usual."""
        try:
            return handle(conn_id)
        except Exception as exc:  # noqa: BLE001 - any error of one instance, never the task's
            check = checks[conn_id]
            error = f"reboot not requested: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.error("%s (%s): %s", check.instance_id, conn_id, error)
            failed = ApiResult(method="reboot", kind=ResultKind.CONNECTION_ERROR, response_time_ms=0, error=error)
            return RebootAttempt(conn_id, check.instance_id, checked.reboot_reasons[conn_id], check.dashboard_url,
                                 result=failed)  # fmt: skip

    return RebootRound(in_parallel(settings.max_concurrency, list(checked.reboot_reasons), safely), store_error)


def _latest(task_id: str, key: str) -> dict[str, Any] | None:
    """The latest XCom of a task of this DAG, in this run or the latest earlier one (by logical
    date): one value, however long the history."""
    from airflow.sdk import get_current_context

    found = get_current_context()["ti"].xcom_pull(task_ids=task_id, key=key, include_prior_dates=True, map_indexes=-1)
    return found if isinstance(found, dict) else None


def reboot_step(checked: dict[str, Any]) -> list[dict[str, Any]]:
    """Task body: the recovery waits (the mapped sensor's arguments); the round under key ``round``."""
    from greenapi.store import IncidentStore

    run = CheckedRun.from_dict(checked)
    if not run.reboot_reasons:  # the round (empty) is kept: the conclusion reads it, the next run its carry
        common.hand_over(RebootRound([], reboots_24h=run.reboots_24h), [])
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("no check calls for a reboot")
    settings = _settings()
    from airflow.sdk import get_current_context

    run_again = get_current_context()["ti"].try_number > 1  # cleared or retried: an earlier try ran
    round_ = reboot_instances(run, settings, IncidentStore(), lambda: run.reboots_24h, run_again)
    made_now = {a.instance_id: run.logical_now for a in round_.attempts if a.requested_at}
    round_ = replace(round_, reboots_24h=within_24h(run.reboots_24h, run.logical_now, made_now))
    for attempt in round_.attempts:
        done = attempt.skipped.value if attempt.skipped else ("accepted" if attempt.accepted else "not accepted")
        log.warning("%s (%s): automatic reboot for %s: %s", attempt.instance_id, attempt.conn_id, attempt.reason, done)
    waits = [
        {"green_api_conn_id": a.conn_id, "poke_interval": float(settings.reboot_poll_seconds),
         "timeout": settings.reboot_verify_minutes * 60}
        for a in round_.attempts if a.accepted
    ]  # fmt: skip
    return common.hand_over(round_, waits)


# ---- conclude -> send_alerts -> log_results -> report


def conclude_step(checked: dict[str, Any] | None, looks: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Task body: one finding per check made, with its re-check, its reboot and the state after it.

    It runs whatever happened to the reboot task: when that task failed as a whole (a crash, a
    lost worker), the reboots it was to make count as failed (:func:`lost_round`), so every
    instance is still alerted. Without the checks there is nothing to conclude: skipped."""
    if checked is None:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("nothing to conclude: the checks did not complete (the report says why)")
    from airflow.sdk import get_current_context

    run = CheckedRun.from_dict(checked)
    rebooted = get_current_context()["ti"].xcom_pull(task_ids=REBOOT_TASK, key=common.ROUND_KEY)
    round_ = RebootRound.from_dict(rebooted) if isinstance(rebooted, dict) else None
    if round_ is None and run.reboot_reasons:
        round_ = lost_round(run)
        log.error("%s: %s", LOST_ROUND, ", ".join(run.reboot_reasons))
    looked = common.recovery_looks(round_, looks)
    found = findings(run, round_, looked, _settings())
    return [f.to_dict() for f in found]


def maintenance_windows(found: list[Finding], now: datetime, settings: Settings, store: IncidentStore) -> dict[str, bool]:
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


def alert_step(findings_: list[dict[str, Any]]) -> dict[str, Any]:
    """Task body: incidents, notices and deliveries; without the health database, fallback chats."""
    from airflow.sdk import get_current_context

    from greenapi.store import IncidentStore, StoreUnavailable
    from greenapi.tasks.alerting import AlertRun, untracked_alerts

    dag_run = get_current_context()["dag_run"]
    found = [Finding.from_dict(f) for f in findings_]
    settings = _settings()
    now = logical_now()
    store = IncidentStore()
    run = None
    try:
        windows = maintenance_windows(found, now, settings, store)
        run = AlertRun(store, settings, now, dag_run.dag_id, dag_run.run_id)
        outcome = run.run(found, windows)
    except StoreUnavailable as exc:  # support is still told, through fallback_chat_ids
        told: dict[str, str] = {}
        # What the latest earlier run carried (its outcome, or the one it kept when it failed):
        # each run carries the alerts still within their reminder interval, so one value suffices.
        for earlier in (_latest(ALERT_TASK, "return_value"), _latest(ALERT_TASK, common.FAILED_OUTCOME_KEY)):
            for key, at in (earlier or {}).get(UNTRACKED_KEY, {}).items():
                told[key] = max(at, told.get(key, at))
        windows = {}
        outcome = untracked_alerts(found, settings, now, told, str(exc), run.deliveries if run else [])
    return common.finish_alert_step(replace(outcome, in_window=windows))


def log_step(findings_: list[dict[str, Any]] | None, alerting: dict[str, Any] | None) -> int:
    if findings_ is None:  # the check or its conclusion failed: the report says why
        log.warning("nothing to log: the checks did not complete (the report says why)")
        return 0
    return common.log_step([Finding.from_dict(f) for f in findings_], common.failed_outcome(alerting, ALERT_TASK))


def report_step(
    checked: dict[str, Any] | None, findings_: list[dict[str, Any]] | None,
    alerting: dict[str, Any] | None, logged: int | None,
) -> dict[str, Any]:  # fmt: skip
    """Task body: the run's verdict. A configuration error that stopped a check task is read from
    that task's XCom by task id: a failed task passes nothing downstream."""
    from airflow.sdk import get_current_context

    problems = list((checked or {}).get("problems", []))
    ti = get_current_context()["ti"]
    if checked and checked.get("reboot_reasons") and ti.xcom_pull(task_ids=REBOOT_TASK, key=common.ROUND_KEY) is None:
        problems.append(LOST_ROUND)
    if checked is None:
        for task_id in ("plan_checks", "check_shard", "check_instances"):
            error = ti.xcom_pull(task_ids=task_id, key=ERROR_KEY)
            problems.extend(error if isinstance(error, list) else [error])
    found = [Finding.from_dict(f) for f in findings_] if findings_ is not None else None
    settled = int((checked or {}).get("settled", 0))
    return common.report_step(found, [p for p in problems if p], common.failed_outcome(alerting, ALERT_TASK), logged,
                              settled)  # fmt: skip

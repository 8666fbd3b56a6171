"""Glue of the health-check DAG: each function is one task's body, loading what the decisions of
:mod:`greenapi.domain` need, calling them, and saving or sending what they return.

Task bodies get their inputs as TaskFlow arguments (the JSON of ``greenapi.domain`` records) and
read the run's context (:class:`~greenapi.tasks.context.TaskContext`), Variables, connections and
the health database.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from greenapi.domain.alert_step import latest_told, plan_incidents, settles
from greenapi.domain.broken import ALL_READS, Read, due_reads
from greenapi.domain.codec import decode, encode
from greenapi.domain.config import (
    INSTANCES_VARIABLE,
    ShardArgs,
    instances_digest,
    parse_instance_list,
    shard_args,
    shard_of,
)
from greenapi.domain.findings import Finding
from greenapi.domain.health import (
    LOST_ROUND,
    CheckedRun,
    RebootRound,
    RecoveryWait,
    carried,
    decide_reboot,
    findings,
    lost_round,
    not_requested,
    plan_reboots,
    reboot_outcome,
    recovery_waits,
    within_24h,
)
from greenapi.domain.outages import find_outages, hold_reboots, nothing_answered
from greenapi.domain.partner import split_key
from greenapi.domain.records import AlertOutcome, CheckBatch, Told, reads_made
from greenapi.domain.runs import RunSummary, log_rows
from greenapi.domain.schedule import REBOOT_SCHEDULE_VARIABLE, parse_reboot_schedule, settle_window_start
from greenapi.domain.summary import checked as classified
from greenapi.domain.summary import summary_line
from greenapi.hooks.green_api import GreenApiHook, in_parallel, listing_summary
from greenapi.tasks import common
from greenapi.tasks.context import ERROR_KEY, TaskContext

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from greenapi.domain.config import InstanceList, Settings
    from greenapi.hooks.green_api import Expanded, PartnerAccount
    from greenapi.store import IncidentStore

log = logging.getLogger(__name__)

REBOOT_TASK = "reboot_instances"
ALERT_TASK = "send_alerts"


# ---- plan_checks -> check_shard (GreenApiHealthCheckOperator, mapped) -> check_instances


def plan_step() -> list[ShardArgs]:
    """Task body: the mapped check tasks' arguments, a shard number each (its part of the instance
    list, which it reads itself: the plan's XCom stays small at any scale).

    Each partner account of the list is listed here (one ``getInstances`` each), and what it holds
    is recorded without the tokens (the dashboard marks deleted instances); an account that cannot
    be listed is a problem the run reports, and changes nothing recorded.
    """
    from airflow.sdk import Variable

    from greenapi.hooks.green_api import expand_instances

    ctx = TaskContext.load()
    wanted = ctx.checked(lambda: parse_instance_list(Variable.get(INSTANCES_VARIABLE, default=None)))
    changed = changed_instances()
    if changed is not None:  # a run the watch started: the instances that changed, at once
        wanted = only_these(wanted, changed)
        log.info("started by the watch: %d instance(s) changed (%s)", len(changed), ", ".join(sorted(changed)[:10]))
    expanded = only_keys(expand_instances(wanted, max_age=0), changed)
    for problem in expanded.problems:
        log.error("%s", problem)
    record_accounts(expanded.accounts)
    problems = [*expanded.problems, *watch_stopped()]
    shards = shard_args(expanded.keys, ctx.settings, expanded.both, problems, expanded.unlisted, changed)
    partner = f" ({len(expanded.keys) - len(wanted.conn_ids)} from {len(expanded.accounts)} partner account(s))"
    log.info("%d instance(s)%s in %d check task(s)", len(expanded.keys), partner if wanted.partners else "",
             len(shards))  # fmt: skip
    return shards


def watch_stopped() -> list[str]:
    """With the watch on, whether it still looks (its last round, recorded by the trigger): a
    watch that stopped is a problem the run reports, and support hears of it."""
    from airflow.sdk import Variable

    from greenapi.domain.watch import WATCH_NAME, WATCH_VARIABLE, parse_watch, watch_problem
    from greenapi.store import HealthStore, StoreUnavailable

    try:
        if not parse_watch(Variable.get(WATCH_VARIABLE, default=None)).enabled:
            return []
        last = HealthStore().watch_round(WATCH_NAME)
    except (ValueError, StoreUnavailable) as exc:  # the DAG's parse names a bad Variable; the log step a lost store
        log.warning("the state watch was not looked at: %s", exc)
        return []
    problem = watch_problem(last, datetime.now(UTC))
    if problem:
        log.error("%s", problem)
    elif last is not None:
        log.info("the state watch looked at %d instance(s) at %s (%d round(s), %d change(s) since %s)",
                 last.watched, f"{last.at:%H:%M:%S}", last.rounds, last.changes, f"{last.started_at:%H:%M:%S} UTC")
    return [problem] if problem else []


def only_these(wanted: InstanceList, keys: Collection[str]) -> InstanceList:
    """The instance list cut down to what ``keys`` (a run the watch started: connection ids and
    partner keys) need: those connections, and the accounts of those partner instances."""
    accounts = {split[0] for split in map(split_key, keys) if split}
    return replace(wanted, conn_ids=[c for c in wanted.conn_ids if c in keys],
                   partners=[p for p in wanted.partners if p.conn_id in accounts])  # fmt: skip


def only_keys(expanded: Expanded, keys: Collection[str] | None) -> Expanded:
    """The expanded list cut down to ``keys`` (None: all of it)."""
    return expanded if keys is None else replace(expanded, keys=[k for k in expanded.keys if k in keys])


def changed_instances() -> set[str] | None:
    """The connection ids the watch saw change, for a run its events started (None for any other
    run). One run may carry several events: their instances together."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    if str(getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)) != "asset_triggered":
        return None
    changed: set[str] = set()
    for events in context["triggering_asset_events"].values():
        for event in events:
            payload = (event.extra or {}).get("payload") or {}
            changed.update(c["conn_id"] for c in payload.get("changes", []) if isinstance(c, dict) and c.get("conn_id"))
    return changed


def record_accounts(accounts: dict[str, PartnerAccount]) -> None:
    """Record what each listed account holds (no token), for the dashboard; without the health
    database the checks go on and the next run records it."""
    from greenapi.store import HealthStore, StoreUnavailable

    if not accounts:
        return
    try:
        changed = HealthStore().record_partner_instances(
            {conn_id: [i.public() for i in account.instances] for conn_id, account in accounts.items()})
    except StoreUnavailable as exc:
        log.warning("%s: the partner accounts' instances are recorded at the next run", exc)
        return
    for conn_id, account in accounts.items():
        log.info("partner connection %s: %s", conn_id, listing_summary(account.instances))
    if changed:
        log.info("%d partner instance(s) new or changed since the last listing", changed)


def shard_conn_ids(ctx: TaskContext, shard: int, shards: int, digest: str, listed_both_ways: Sequence[str] = (),
                   unlisted: Sequence[str] = (), only: Sequence[str] | None = None) -> Expanded:  # fmt: skip
    """check_shard's keys: its part of Variable green_api_instances, as plan_checks cut it (each
    partner account listed again here, once).

    A list changed since the plan (someone edited the Variable, or a partner account gained or lost
    an instance, during the run) is cut the same way and the change is logged: the run's tasks still
    check each instance once if they all read the new list; the next run uses it whole. An account
    that cannot be listed here leaves its instances of this part unchecked, as a problem (in the
    result's ``problems``); one the plan could not list (``unlisted``) is not listed here. ``only``:
    the connection ids of a run the watch started (the plan's cut).
    """
    from airflow.sdk import Variable

    from greenapi.hooks.green_api import expand_instances

    wanted = ctx.checked(lambda: parse_instance_list(Variable.get(INSTANCES_VARIABLE, default=None)))
    wanted = replace(wanted, partners=[p for p in wanted.partners if p.conn_id not in unlisted])
    if only is not None:
        wanted = only_these(wanted, only)
    expanded = only_keys(expand_instances(wanted, both=frozenset(listed_both_ways)), only)
    if instances_digest(expanded.keys) != digest:
        log.warning("Variable %s or a partner account changed since plan_checks: checking part %d of %d of the new "
                    "list", INSTANCES_VARIABLE, shard + 1, shards)  # fmt: skip
    return replace(expanded, keys=shard_of(expanded.keys, shard, shards))


def check_step(shards: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Task body: the shards' checks as one, with the reboots they call for (by the instances' history)."""
    from greenapi.store import IncidentStore, StoreUnavailable

    ctx = TaskContext.load()
    # One slice fetches every shard at once; iterating Airflow's lazy sequence of mapped results
    # asks for one item past the end, which its client logs as an error in this task's log.
    batch = CheckBatch.merge(CheckBatch.from_dict(shard) for shard in shards[:])
    store = IncidentStore()
    try:
        history = store.counters([c.instance_id for c in batch.checks])
        reboots = store.auto_reboots()  # all instances': the carry must hold the settled ones' too
    except StoreUnavailable as exc:  # the checks stand; reboots are decided on this check alone
        history = {}
        batch.problems.append(f"{exc} (check_instances: reboots decided without the instances' history)")
        log.error(batch.problems[-1])
        # The past day's reboots, as the previous run's reboot task carried them (see RebootRound).
        earlier = ctx.latest(REBOOT_TASK, common.ROUND_KEY, RebootRound)
        reboots = earlier.reboots_24h if earlier else {}
    settings = ctx.settings
    outages = find_outages(batch.checks, batch.hosts, min_instances=settings.outage_min_instances,
                           fraction=settings.outage_fraction)  # fmt: skip
    reasons, held = hold_reboots(plan_reboots(batch.checks, history, ctx.now, settings), batch.checks, outages,
                                 settings.max_reboots_per_run)  # fmt: skip
    checked = CheckedRun.of(batch, ctx.now, reasons, within_24h(reboots, ctx.now), outages, held)
    # Each check_shard logged its instances' problems, and counted and logged its quiet healthy ones.
    settled = f"; {batch.settled} more healthy, settled by their check_shard" if batch.settled else ""
    log.info("%s%s", summary_line(classified(batch)), settled)
    for outage in outages:
        log.warning("%s: %s", outage.describe(), outage.sample())
    for conn_id, reason in checked.reboot_reasons.items():
        log.warning("automatic reboot of %s planned: %s", conn_id, reason)
    if held:
        log.warning("%d automatic reboot(s) not made: %s", len(held), "; ".join(sorted(set(held.values()))))
    return checked.to_dict()


def reads_due(ctx: TaskContext) -> Callable[[str], frozenset[Read]]:
    """What check_shard reads of each authorized instance beyond its state, by instance id: the
    socket at every check, the queue and the settings when their periods have passed since their
    last reads (kept in the health database; without it, everything is read). Asked once the
    state calls have gone out: the read times are fetched then, on the first question."""
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
        queue_at, settings_at = fetched().get(instance_id, (None, None))
        return due_reads(ALL_READS, ctx.now, queue_at, settings_at, queue_minutes=ctx.settings.queue_check_minutes,
                         settings_minutes=ctx.settings.settings_check_minutes)  # fmt: skip

    return due


def settle_step(ctx: TaskContext, raw: dict[str, Any]) -> dict[str, Any]:
    """check_shard's end: the healthy checks that leave the alert step nothing to decide
    (:func:`~greenapi.domain.alert_step.settles`) are counted and get their health-log rows here,
    in one transaction; the batch that goes on holds the other checks and the count. The XCom of a
    run is then O(problems), not O(instances). Without the health database, every check goes on."""
    from greenapi.store import IncidentStore, StoreUnavailable

    batch = CheckBatch.from_dict(raw)
    store = IncidentStore()
    try:
        settled = _settle(ctx, batch, store)
        store.mark_reads(reads_made(batch.checks, ctx.now))
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


def _settle(ctx: TaskContext, batch: CheckBatch, store: IncidentStore) -> set[str]:
    found = findings(CheckedRun.of(batch, ctx.now), None, {}, ctx.settings)
    ids = [f.instance_id for f in found]
    history = store.counters(ids)
    live = {i.instance_id for i in store.live_incidents(ids)}
    quiet = [f for f in found if settles(f, history.get(f.instance_id), f.instance_id in live, ctx.now, ctx.settings)]
    if not quiet:
        return set()
    windows = maintenance_windows(quiet, ctx, store)
    plan = plan_incidents(quiet, history, [], ctx.settings, ctx.now, windows)
    rows = log_rows(quiet, AlertOutcome(in_window=windows), dag_id=ctx.dag_id, run_id=ctx.run_id,
                    trigger_type=ctx.trigger_type)  # fmt: skip
    return store.settle(rows, plan.counters, {f.instance_id: history[f.instance_id].last_checked_at for f in quiet})


# ---- reboot_instances -> wait_for_recovery (GreenApiStateSensor, mapped)


def reboot_instances(
    checked: CheckedRun, settings: Settings, store: IncidentStore,
    earlier_reboots: Callable[[], dict[str, list[datetime]]] = dict, run_again: bool = False,
) -> RebootRound:  # fmt: skip
    """Reboot what calls for it, safely: a quick re-check first, then the cooldown and the cap
    (:func:`~greenapi.domain.health.decide_reboot`).

    The reboot is recorded in the health database (at the run's logical time) before it is
    requested, so a task run again (``run_again``: cleared or retried) finds it and never reboots
    twice. When that database is unreachable, the cooldown and the cap are checked against
    ``earlier_reboots()`` and nothing is recorded: in the DAG, the past 24 h of reboots that each
    run carries to the next in XCom. A task run again without the database cannot know what its
    earlier try did (clearing it deleted its XCom): it reboots nothing, and the finding says so.
    """
    from greenapi.store import StoreUnavailable

    now = checked.logical_now
    checks = {c.conn_id: c for c in checked.checks}
    store_error = None
    try:
        history = {i: list(h.auto_reboots) for i, h in
                   store.counters([checks[c].instance_id for c in checked.reboot_reasons]).items()}  # fmt: skip
    except StoreUnavailable as exc:
        history, store_error = earlier_reboots(), str(exc)

    def handle(conn_id: str) -> Any:
        check, reason = checks[conn_id], checked.reboot_reasons[conn_id]
        hook = GreenApiHook(conn_id)
        recheck = hook.get_state_instance(timeout=settings.recheck_timeout_seconds)
        attempt = decide_reboot(check, reason, recheck, history.get(check.instance_id, []), now, settings,
                                unknown=run_again and store_error is not None)  # fmt: skip
        if attempt.skipped is not None:
            return attempt
        if store_error is None:
            store.record_auto_reboot(check.instance_id, now)
        return replace(attempt, requested_at=datetime.now(UTC).isoformat(), result=hook.reboot())

    def safely(conn_id: str) -> Any:
        """One instance's failure (its connection gone, a database error on its claim) is its own:
        reported as its reboot failing; the others are rebooted and alerted as usual."""
        try:
            return handle(conn_id)
        except Exception as exc:  # noqa: BLE001 - any error of one instance, never the task's
            attempt = not_requested(checks[conn_id], checked.reboot_reasons[conn_id], exc)
            log.error("%s (%s): %s", attempt.instance_id, conn_id, attempt.result.error if attempt.result else exc)
            return attempt

    return RebootRound(in_parallel(settings.max_concurrency, list(checked.reboot_reasons), safely), store_error)


def reboot_step(checked: dict[str, Any]) -> list[RecoveryWait]:
    """Task body: the recovery waits (the mapped sensor's arguments); the round under key ``round``."""
    from greenapi.store import IncidentStore

    ctx = TaskContext.load()
    run = CheckedRun.from_dict(checked)
    if not run.reboot_reasons:  # the round (empty) is kept: the conclusion reads it, the next run its carry
        ctx.keep(common.ROUND_KEY, RebootRound([], reboots_24h=run.reboots_24h).to_dict())
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("no check calls for a reboot")
    round_ = carried(reboot_instances(run, ctx.settings, IncidentStore(), lambda: run.reboots_24h, ctx.run_again),
                     run)  # fmt: skip
    for attempt in round_.attempts:
        log.warning("%s (%s): automatic reboot for %s: %s", attempt.instance_id, attempt.conn_id, attempt.reason,
                    reboot_outcome(attempt))  # fmt: skip
    ctx.keep(common.ROUND_KEY, round_.to_dict())
    return recovery_waits(round_, ctx.settings)


# ---- conclude -> send_alerts -> log_results -> report


def conclude_step(checked: dict[str, Any] | None, looks: Sequence[list[dict[str, Any]] | None] | None,
                  ) -> list[dict[str, Any]]:  # fmt: skip
    """Task body: one finding per check made, with its re-check, its reboot and the state after it.

    It runs whatever happened to the reboot task: when that task failed as a whole (a crash, a
    lost worker), the reboots it was to make count as failed (:func:`lost_round`), so every
    instance is still alerted. Without the checks there is nothing to conclude: skipped."""
    if checked is None:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("nothing to conclude: the checks did not complete (the report says why)")
    ctx = TaskContext.load()
    run = CheckedRun.from_dict(checked)
    round_ = ctx.pulled(REBOOT_TASK, common.ROUND_KEY, RebootRound)
    if round_ is None and run.reboot_reasons:
        round_ = lost_round(run)
        log.error("%s: %s", LOST_ROUND, ", ".join(run.reboot_reasons))
    looked = common.recovery_looks(round_, common.waited(looks))
    return encode(findings(run, round_, looked, ctx.settings), list[Finding])  # type: ignore[no-any-return]


def maintenance_windows(found: Sequence[Finding], ctx: TaskContext, store: IncidentStore) -> dict[str, bool]:
    """Instances whose failing check falls in the settle time after the scheduled reboot.

    Not suppressed when the scheduled reboot itself logged a failure for that instance.
    """
    from airflow.sdk import Variable

    from greenapi.domain.config import ConfigError

    try:
        schedule = parse_reboot_schedule(Variable.get(REBOOT_SCHEDULE_VARIABLE, default=None))
    except ConfigError:
        return {}  # the scheduled reboot DAG shows the error; no window is assumed
    start = settle_window_start(ctx.now, schedule, ctx.settings.settle_minutes)
    if start is None:
        return {}
    ids = [f.instance_id for f in found]
    failed = store.scheduled_reboot_failures(start, ids)
    return {i: i not in failed for i in ids}


def alert_step(findings_: list[dict[str, Any]], checked: dict[str, Any] | None = None) -> dict[str, Any]:
    """Task body: incidents (the instances' and the platform outages' of ``checked``), notices and
    deliveries; without the health database, fallback chats."""
    from greenapi.store import IncidentStore, StoreUnavailable
    from greenapi.tasks.alerting import AlertRun, untracked_alerts

    ctx = TaskContext.load()
    found = decode(list[Finding], findings_)
    store = IncidentStore()
    run = None
    try:
        windows = maintenance_windows(found, ctx, store)
        run = AlertRun(store, ctx)
        checked_run = CheckedRun.from_dict(checked) if checked else None
        run.nothing_answered = checked_run is not None and nothing_answered(checked_run)
        outcome = run.run(found, windows, checked_run.outages if checked_run else [])
    except StoreUnavailable as exc:  # support is still told, through fallback_chat_ids
        # What the latest earlier run carried (its outcome, or the one it kept when it failed):
        # each run carries the alerts still within their reminder interval, so one value suffices.
        carries = (ctx.latest(ALERT_TASK, key, AlertOutcome) for key in ("return_value", common.FAILED_OUTCOME_KEY))
        told: list[Told] = latest_told(*(c.untracked for c in carries if c is not None))
        windows = {}
        outcome = untracked_alerts(found, ctx.settings, ctx.now, told, str(exc), run.deliveries if run else [])
    return common.finish_alert_step(ctx, replace(outcome, in_window=windows))


def log_step(findings_: list[dict[str, Any]] | None, alerting: dict[str, Any] | None) -> int:
    """Task body: one health-log row per finding (none when the checks did not complete)."""
    if findings_ is None:  # the check or its conclusion failed: the report says why
        log.warning("nothing to log: the checks did not complete (the report says why)")
        return 0
    ctx = TaskContext.load()
    return common.log_step(ctx, decode(list[Finding], findings_), common.failed_outcome(ctx, alerting, ALERT_TASK))


def report_step(
    checked: dict[str, Any] | None, findings_: list[dict[str, Any]] | None,
    alerting: dict[str, Any] | None, logged: int | None,
) -> dict[str, Any]:  # fmt: skip
    """Task body: the run's verdict. A configuration error that stopped a check task is read from
    that task's XCom by task id: a failed task passes nothing downstream."""
    ctx = TaskContext.load()
    run = CheckedRun.from_dict(checked) if checked is not None else None
    problems = list(run.problems) if run else []
    if run and run.reboot_reasons and ctx.pulled(REBOOT_TASK, common.ROUND_KEY, RebootRound) is None:
        problems.append(LOST_ROUND)
    if run is None:
        for task_id in ("plan_checks", "check_shard", "check_instances"):
            error = ctx.ti.xcom_pull(task_ids=task_id, key=ERROR_KEY)
            problems.extend(error if isinstance(error, list) else [error])
    found = decode(list[Finding], findings_) if findings_ is not None else None
    summary: RunSummary = common.report(found, [p for p in problems if p], common.failed_outcome(ctx, alerting, ALERT_TASK),
                                        logged, run.settled if run else 0)  # fmt: skip
    return summary.to_dict()

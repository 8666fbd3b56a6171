"""What a health-check run decides: which instances to reboot, and what each check comes to.

Pure functions over the run's records (``records.py``): the checks, the instances' history, the
reboot round and what was seen after it. The glue (``tasks/health_check.py``) does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypedDict

from greenapi.domain.alerts import limits_of
from greenapi.domain.broken import Watch, fold
from greenapi.domain.codec import Record
from greenapi.domain.config import Settings
from greenapi.domain.findings import Finding
from greenapi.domain.outages import Outage, member_outages
from greenapi.domain.records import CheckBatch, InstanceCheck
from greenapi.domain.results import ApiResult, ResultKind
from greenapi.domain.rules import (
    HEALTHY_STATE,
    NEEDS_A_PERSON,
    AlertKind,
    SkipReason,
    Status,
    Verdict,
    after_reboot,
    classify_check,
    reboot_allowed,
    reboot_reason,
    reboot_verdict,
)

# After a reboot, waiting stops at one of these states: back, or waiting longer does not help.
RECOVERY_STATES = (HEALTHY_STATE, *sorted(NEEDS_A_PERSON))


@dataclass(frozen=True)
class InstanceHistory:
    """An instance's row of ``green_api_instance_status``: what earlier runs saw."""

    instance_id: str
    failing_kind: str | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_state: str | None = None
    state_since: datetime | None = None
    auto_reboots: tuple[datetime, ...] = ()
    streak_started_at: datetime | None = None
    last_checked_at: datetime | None = None
    watch: Watch = Watch()  # the streaks of what the checks read beyond the state


@dataclass(frozen=True, kw_only=True)
class CheckedRun(CheckBatch):
    """The run's checks, its logical time, its outages, and the reboots they call for (by
    connection id): those to make, and those held back and why.

    JSON: ``CheckBatch``'s fields plus ``"logical_now"`` (ISO 8601), ``"reboot_reasons"``
    (``{conn_id: why}``), ``"reboots_24h"`` (``{instance_id: [ISO 8601]}``, see :class:`RebootRound`),
    ``"outages"`` ([Outage]) and ``"held"`` (``{conn_id: why not rebooted}``).
    """

    logical_now: datetime
    reboot_reasons: dict[str, str] = field(default_factory=dict)
    reboots_24h: dict[str, list[datetime]] = field(default_factory=dict)  # see RebootRound
    outages: list[Outage] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, batch: CheckBatch, logical_now: datetime, reboot_reasons: dict[str, str] | None = None,
           reboots_24h: dict[str, list[datetime]] | None = None, outages: list[Outage] | None = None,
           held: dict[str, str] | None = None) -> CheckedRun:  # fmt: skip
        """The run of ``batch``'s checks at ``logical_now``."""
        return cls(checks=batch.checks, problems=batch.problems, settled=batch.settled, hosts=batch.hosts,
                   logical_now=logical_now, reboot_reasons=reboot_reasons or {}, reboots_24h=reboots_24h or {},
                   outages=outages or [], held=held or {})  # fmt: skip


@dataclass(frozen=True)
class RebootAttempt(Record):
    """One automatic reboot the check called for: its re-check, and the reboot or why none.

    JSON: ``{"conn_id", "instance_id", "reason", "dashboard_url", "recheck" (ApiResult or null),
    "skipped" (a SkipReason or null), "recent_reboots", "requested_at" (ISO 8601 or null),
    "result" (ApiResult of the reboot call, or null)}``.
    """

    conn_id: str
    instance_id: str
    reason: str
    dashboard_url: str | None = None
    recheck: ApiResult | None = None
    skipped: SkipReason | None = None
    recent_reboots: int = 0
    requested_at: str | None = None
    result: ApiResult | None = None

    @property
    def accepted(self) -> bool:
        """The reboot was requested and the API accepted it (``isReboot`` true)."""
        return self.result is not None and self.result.ok and self.result.data.get("isReboot") is True


@dataclass(frozen=True)
class RebootRound(Record):
    """A run's reboots. ``store_error``: the health database could not be read, so the cooldown
    and the cap were checked against earlier runs' XComs.

    ``reboots_24h``: every automatic reboot of the past 24 h this run knows of (logical times, by
    instance id), its own included. Each run carries it to the next through XCom, so that with the
    health database down the cooldown and the cap still see a whole day, although Airflow 3 gives
    a task only the latest XCom of earlier runs.

    JSON: ``{"attempts": [RebootAttempt], "store_error": str or null, "problems": [str],
    "reboots_24h": {instance_id: [ISO 8601]}}``.
    """

    attempts: list[RebootAttempt] = field(default_factory=list)
    store_error: str | None = None
    problems: list[str] = field(default_factory=list)  # connections that could not be used
    reboots_24h: dict[str, list[datetime]] = field(default_factory=dict)

    @property
    def made(self) -> list[RebootAttempt]:
        """The reboots requested (accepted or not)."""
        return [a for a in self.attempts if a.result is not None]

    @property
    def accepted(self) -> list[RebootAttempt]:
        """The reboots the API accepted."""
        return [a for a in self.attempts if a.accepted]


LOST_ROUND = "reboot_instances did not complete (see its log): whether the automatic reboot was made is unknown"


def lost_round(checked: CheckedRun) -> RebootRound:
    """The round of a reboot task that ended without saying what it did (crashed, killed, its
    worker lost): each reboot the checks called for counts as failed, so that its instance is
    alerted, never silenced, and the run's report names the task."""
    checks = {c.conn_id: c for c in checked.checks}
    failed = ApiResult(method="reboot", kind=ResultKind.CONNECTION_ERROR, response_time_ms=0, error=LOST_ROUND)
    attempts = [RebootAttempt(conn_id, checks[conn_id].instance_id, reason, checks[conn_id].dashboard_url, result=failed)
                for conn_id, reason in checked.reboot_reasons.items()]  # fmt: skip
    return RebootRound(attempts, reboots_24h=dict(checked.reboots_24h))


def within_24h(known: dict[str, list[datetime]], now: datetime, made: dict[str, datetime] | None = None
               ) -> dict[str, list[datetime]]:  # fmt: skip
    """``known`` reboots plus those ``made`` now (by instance id), keeping the past 24 h only."""
    merged = {k: list(v) for k, v in known.items()}
    for instance_id, at in (made or {}).items():
        merged.setdefault(instance_id, []).append(at)
    kept = {k: sorted({t for t in v if now - timedelta(hours=24) < t <= now}) for k, v in merged.items()}
    return {k: v for k, v in kept.items() if v}


QUEUE_REBOOT = "outgoing queue stuck"  # the start of the reason of a reboot for a stuck queue


def for_stuck_queue(reason: str) -> bool:
    """Whether an automatic reboot's reason is a stuck outgoing queue (not the state)."""
    return reason.startswith(QUEUE_REBOOT)


def plan_reboots(
    checks: list[InstanceCheck], history: dict[str, InstanceHistory], now: datetime, settings: Settings
) -> dict[str, str]:
    """Which instances call for an automatic reboot, and why (by connection id). A stuck outgoing
    queue is one only with ``reboot_on_stuck_queue``."""
    reasons = {}
    for check in checks:
        verdict = classify_check(check.result)
        past = history.get(check.instance_id)
        since = past.state_since if past and past.last_state == verdict.state and past.state_since else now
        reason = reboot_reason(
            verdict, since, now,
            starting_reboot_minutes=settings.starting_reboot_minutes,
            reboot_on_yellow_card=settings.reboot_on_yellow_card,
        )  # fmt: skip
        if reason is None and settings.reboot_on_stuck_queue:
            reason = _queue_reason(check, past.watch if past else Watch(), settings)
        if reason:
            reasons[check.conn_id] = reason
    return reasons


def _queue_reason(check: InstanceCheck, watch: Watch, settings: Settings) -> str | None:
    _, signs = fold(watch, check.reading, datetime.fromisoformat(check.checked_at), limits_of(settings))
    stuck = next((s for s in signs if s.kind is AlertKind.OUTGOING_QUEUE_STUCK and s.holds), None)
    return f"{QUEUE_REBOOT}: {stuck.queue} messages for {stuck.checks} checks" if stuck else None


def reboot_skip(
    recheck: ApiResult, previous: list[datetime], now: datetime, settings: Settings, *, unknown: bool = False,
    state_problem: bool = True,
) -> SkipReason | None:  # fmt: skip
    """Why an automatic reboot must not be made now (None: make it).

    ``previous``: the instance's automatic reboots, each at the logical time of the run that made
    it; one at ``now`` was made by an earlier try of this run (the task cleared or retried).
    ``unknown``: this try cannot know whether an earlier try of this run made one (the task is
    run again and the health database is down): no reboot, rather than perhaps a second one.
    ``state_problem``: False for a stuck queue, which an authorized re-check does not clear.
    """
    if state_problem and classify_check(recheck).status is Status.HEALTHY:
        return SkipReason.RECOVERED
    if unknown or now in previous:
        return SkipReason.ALREADY
    return reboot_allowed(
        previous, now, cooldown_minutes=settings.reboot_cooldown_minutes, daily_cap=settings.reboot_daily_cap
    )


def decide_reboot(check: InstanceCheck, reason: str, recheck: ApiResult, previous: list[datetime], now: datetime,
                  settings: Settings, *, unknown: bool = False) -> RebootAttempt:  # fmt: skip
    """The automatic reboot a check calls for (``reason``), after its quick re-check: made, or
    skipped and why (:func:`reboot_skip`). ``previous``: the instance's automatic reboots, at the
    logical times of the runs that made them; ``unknown``: this try cannot know whether an earlier
    try of this run made one."""
    skip = reboot_skip(recheck, previous, now, settings, unknown=unknown, state_problem=not for_stuck_queue(reason))
    return RebootAttempt(check.conn_id, check.instance_id, reason, check.dashboard_url, recheck, skip,
                         reboots_in_24h(previous, now))  # fmt: skip


def not_requested(check: InstanceCheck, reason: str, error: BaseException) -> RebootAttempt:
    """A reboot that failed before its request (its connection gone, a database error on its
    claim): reported as the reboot failing, so that its instance is alerted."""
    first_line = str(error).splitlines()[0] if str(error) else ""
    failed = ApiResult(method="reboot", kind=ResultKind.CONNECTION_ERROR, response_time_ms=0,
                       error=f"reboot not requested: {type(error).__name__}: {first_line}")  # fmt: skip
    return RebootAttempt(check.conn_id, check.instance_id, reason, check.dashboard_url, result=failed)


def carried(round_: RebootRound, checked: CheckedRun) -> RebootRound:
    """The round with the past day's reboots it carries to the next run: those the run knew of,
    and those it made."""
    made_now = {a.instance_id: checked.logical_now for a in round_.attempts if a.requested_at}
    return replace(round_, reboots_24h=within_24h(checked.reboots_24h, checked.logical_now, made_now))


def reboot_outcome(attempt: RebootAttempt) -> str:
    """A reboot attempt in a word or two, for the task's log."""
    if attempt.skipped is not None:
        return attempt.skipped.value
    return "accepted" if attempt.accepted else "not accepted"


class RecoveryWait(TypedDict):
    """The arguments of the recovery wait (``GreenApiFleetStateSensor``) after the accepted reboots."""

    green_api_conn_ids: list[str]
    poke_interval: float
    timeout: float


def recovery_waits(round_: RebootRound, settings: Settings) -> list[RecoveryWait]:
    """One wait for all the accepted reboots (none when none was accepted): every
    ``reboot_poll_seconds``, up to ``reboot_verify_minutes``. A list, the mapped wait's arguments:
    its task runs once or not at all, whatever the number of reboots."""
    if not round_.accepted:
        return []
    return [RecoveryWait(green_api_conn_ids=[a.conn_id for a in round_.accepted],
                         poke_interval=float(settings.reboot_poll_seconds),
                         timeout=settings.reboot_verify_minutes * 60)]  # fmt: skip


def reboots_in_24h(previous: list[datetime], now: datetime) -> int:
    """How many of ``previous`` reboots fall within the 24 h before ``now``."""
    return len([t for t in previous if now - timedelta(hours=24) < t <= now])


def _after_reboot(verdict: Verdict, attempt: RebootAttempt, look: ApiResult | None, minutes: float) -> Verdict:
    assert attempt.result is not None
    if not attempt.accepted:
        return after_reboot(verdict, attempt.result)  # the seed's timeout_and_reboot_failed / complete_failure
    outcome = reboot_verdict(attempt.result, look, minutes)
    if outcome.status is Status.REBOOTED:
        return replace(verdict, status=Status.REBOOTED, reboot_success=True, alert=None)
    return replace(outcome, error=f"{verdict.error} | {outcome.error}")


def _skipped(verdict: Verdict, attempt: RebootAttempt, settings: Settings) -> Verdict:
    if attempt.skipped is SkipReason.RECOVERED:
        assert attempt.recheck is not None
        again = classify_check(attempt.recheck)
        return replace(again, error=f"First check: {verdict.error}; re-check: {again.state} (no reboot)")
    if attempt.skipped is SkipReason.CAP:
        error = (f"{verdict.error} | {attempt.recent_reboots} automatic reboots in 24 h: "
                 f"cap of {settings.reboot_daily_cap} reached, no more automatic reboots")  # fmt: skip
        return replace(verdict, alert=AlertKind.REBOOT_LOOP, error=error)
    if attempt.skipped is SkipReason.ALREADY:
        error = f"{verdict.error} | automatic reboot not repeated: an earlier try of this run made it, or may have"
        return replace(verdict, alert=verdict.alert or AlertKind.COMPLETE_FAILURE, error=error)
    error = f"{verdict.error} | automatic reboot skipped: cooldown of {settings.reboot_cooldown_minutes:g} min"
    return replace(verdict, alert=verdict.alert or AlertKind.COMPLETE_FAILURE, error=error)


def findings(
    checked: CheckedRun | None,
    round_: RebootRound | None,
    recovery: dict[str, InstanceCheck],
    settings: Settings,
) -> list[Finding]:
    """One finding per check made, with its re-check, its reboot and the state seen after it
    (``recovery``, by connection id: the last look after an accepted reboot)."""
    attempts = {a.conn_id: a for a in (round_.attempts if round_ else [])}
    members = member_outages(checked.outages) if checked else {}
    out = []
    for check in checked.checks if checked else []:
        verdict = classify_check(check.result)
        attempt = attempts.get(check.conn_id)
        held = checked.held.get(check.conn_id) if checked else None
        if held is not None:  # called for a reboot, not made: alerted as a failure (unless an outage's)
            verdict = replace(verdict, alert=verdict.alert or AlertKind.COMPLETE_FAILURE, error=f"{verdict.error} | {held}")
        if attempt is not None and for_stuck_queue(attempt.reason):
            verdict = replace(verdict, error=verdict.error or attempt.reason)
            if attempt.skipped in (SkipReason.COOLDOWN, SkipReason.ALREADY):
                attempt = None  # the queue's own incident alerts; no reboot was made
        if attempt is not None and attempt.skipped is not None:
            verdict = _skipped(verdict, attempt, settings)
        elif attempt is not None and attempt.result is not None:
            look = recovery.get(check.conn_id)
            verdict = _after_reboot(verdict, attempt, look.result if look else None, settings.reboot_verify_minutes)
        out.append(
            Finding.of(
                verdict,
                reboot_triggered=attempt is not None and attempt.result is not None,
                conn_id=check.conn_id,
                instance_id=check.instance_id,
                dashboard_url=check.dashboard_url or "",
                checked_at=check.checked_at,
                response_time_ms=check.result.response_time_ms,
                reading=check.reading,
                outage=members.get(check.instance_id),
                api_host=check.api_host,
                name=check.name,
            )
        )
    return out


def reboot_findings(round_: RebootRound | None, recovery: dict[str, InstanceCheck], settings: Settings) -> list[Finding]:
    """The daily and manual reboots: one finding per reboot requested, from the state it came back to."""
    out = []
    for attempt in round_.made if round_ else []:
        assert attempt.result is not None
        look = recovery.get(attempt.conn_id)
        last = look.result if look else None
        verdict = reboot_verdict(attempt.result, last, settings.reboot_verify_minutes)
        out.append(
            Finding.of(
                verdict,
                reboot_triggered=True,
                conn_id=attempt.conn_id,
                instance_id=attempt.instance_id,
                dashboard_url=attempt.dashboard_url or "",
                checked_at=look.checked_at if look else attempt.requested_at or "",
                response_time_ms=(last or attempt.result).response_time_ms,
            )
        )
    return out

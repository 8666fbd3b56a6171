"""What a getStateInstance outcome means, and what the monitor does about it.

The seed's rules: ``authorized`` is healthy; any other state alerts and is never rebooted
automatically (a reboot may force a new QR scan); no answer at all (timeout, connection error,
server error) is a critical failure that triggers one automatic reboot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from greenapi.domain.results import ApiResult, ResultKind

KNOWN_STATES = frozenset({"authorized", "notAuthorized", "blocked", "sleepMode", "starting", "yellowCard"})
HEALTHY_STATE = "authorized"


class Status(StrEnum):
    """Values of ``green_api_health_logs.status``."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    REBOOTED = "rebooted"
    CRITICAL_FAILURE = "critical_failure"
    RATE_LIMITED = "rate_limited"


class AlertKind(StrEnum):
    """Why support is alerted; each kind has its own message template."""

    INSTANCE_NOT_AUTHORIZED = "instance_not_authorized"
    TIMEOUT_AND_REBOOT_FAILED = "timeout_and_reboot_failed"
    COMPLETE_FAILURE = "complete_failure"
    CONFIGURATION_ERROR = "configuration_error"
    INVALID_RESPONSE = "invalid_response"
    # after a scheduled or manual reboot
    REBOOT_REFUSED = "reboot_refused"
    REBOOT_ERROR = "reboot_error"
    REBOOT_NOT_BACK = "reboot_not_back"
    REBOOT_NEEDS_RELINK = "reboot_needs_relink"
    REBOOT_LOOP = "reboot_loop"  # automatic reboots stopped: the daily cap is reached
    # authorized but broken (domain.broken)
    SETTINGS_DRIFT = "settings_drift"
    OUTGOING_QUEUE_STUCK = "outgoing_queue_stuck"
    SOCKET_OFFLINE = "socket_offline"
    # many instances of one API host failing alike (domain.outages): one incident for all
    PLATFORM_OUTAGE = "platform_outage"
    # a partner account's instance whose paid period ends soon, or has ended (domain.partner)
    INSTANCE_EXPIRING = "instance_expiring"
    INSTANCE_EXPIRED = "instance_expired"


@dataclass(frozen=True)
class Verdict:
    """The monitor's reading of one check, and what it asks for next."""

    status: Status
    state: str | None
    error: str | None
    reboot: bool = False
    alert: AlertKind | None = None
    fix: str | None = None  # what a person must change, for configuration errors
    reboot_success: bool | None = None


# Phrases of the API's 400 bodies that report a state rather than a bad request.
_STATE_PHRASES = (
    ("starting process", "starting"),
    ("not authorized", "notAuthorized"),
)

# What an HTTP refusal means, and what a person changes to fix it (see the protocol notes). The
# operators' errors give the meaning; the health check's configuration alerts give both.
_REFUSALS: dict[int, tuple[str, str | None]] = {
    401: ("the API token (apiTokenInstance) is wrong",
          "copy it from the Green API console into the connection's Password field."),
    403: ("the instance id (idInstance) is wrong",
          "copy it from the Green API console into the connection's Login field."),
    404: ("the API does not know this method or URL",
          "check the connection's Host (apiUrl of the instance)."),
    429: ("rate limited by the API", None),
    466: ("the instance's quota is exceeded (QUOTE_EXCEEDED): the plan allows no more messages or correspondents",
          "upgrade the tariff or wait for the quota to reset in the Green API console."),
}  # fmt: skip
_BAD_REQUEST_FIX = ("The API refused the request (bad request data, expired account or deleted instance): "
                    "check the instance in the Green API console.")  # fmt: skip


def refusal_meaning(http_status: int | None) -> str | None:
    """What an HTTP refusal of the API means, in words support can act on; None if unknown."""
    known = _REFUSALS.get(http_status or 0)
    return known[0] if known else None


def refusal_fix(http_status: int | None) -> str | None:
    """What to change for a refusal that is a configuration error (401, 403, 404, 466, 400)."""
    if http_status == 400:
        return _BAD_REQUEST_FIX
    meaning, remedy = _REFUSALS.get(http_status or 0, ("", None))
    return f"{meaning[0].upper()}{meaning[1:]}: {remedy}" if remedy else None


def state_from_error_body(status: int | None, detail: str | None) -> str | None:
    """A 400 whose body says the instance is starting or not authorized counts as that state."""
    if status != 400 or not detail:
        return None
    text = detail.lower()
    for phrase, state in _STATE_PHRASES:
        if phrase in text:
            return state
    return None


def describe_failure(result: ApiResult) -> str:
    """A short, token-free description of a failed call, as used in messages and rows."""
    if result.kind is ResultKind.TIMEOUT:
        return "Connection timeout"
    if result.kind is ResultKind.HTTP_ERROR:
        text = f"HTTP {result.http_status}"
        return f"{text}: {result.detail}" if result.detail else text
    return result.error or result.kind.value


def _state_verdict(state: str | None) -> Verdict:
    if state == HEALTHY_STATE:
        return Verdict(Status.HEALTHY, state, None)
    if state is None:
        error = "Instance state is null instead of \"authorized\" (instance still being created?)"
    elif state in KNOWN_STATES:
        error = f'Instance state is "{state}" instead of "authorized"'
    else:
        error = f'Instance state is "{state}", a value the Green API does not document'
    return Verdict(Status.UNHEALTHY, state, error, alert=AlertKind.INSTANCE_NOT_AUTHORIZED)


def classify_check(result: ApiResult) -> Verdict:
    """Turn one getStateInstance outcome into a status and the actions it calls for."""
    if result.kind is ResultKind.OK:
        raw = result.data.get("stateInstance")
        return _state_verdict(raw if isinstance(raw, str) or raw is None else str(raw))
    if result.kind is ResultKind.NULL_BODY:
        return _state_verdict(None)
    if result.kind in (ResultKind.TIMEOUT, ResultKind.CONNECTION_ERROR):
        return Verdict(Status.CRITICAL_FAILURE, None, describe_failure(result), reboot=True)
    if result.kind is ResultKind.MALFORMED:
        return Verdict(
            Status.UNHEALTHY, None, describe_failure(result), alert=AlertKind.INVALID_RESPONSE
        )
    code = result.http_status or 0
    state = state_from_error_body(code, result.detail)
    if state is not None:
        return _state_verdict(state)
    error = describe_failure(result)
    if code == 429:
        return Verdict(Status.RATE_LIMITED, None, f"{error} (rate limited: not counted as a failure)")
    if code >= 500:
        return Verdict(Status.CRITICAL_FAILURE, None, error, reboot=True)
    fix = refusal_fix(code)
    if fix is not None:
        return Verdict(Status.UNHEALTHY, None, error, alert=AlertKind.CONFIGURATION_ERROR, fix=fix)
    return Verdict(Status.UNHEALTHY, None, error, alert=AlertKind.INVALID_RESPONSE)


def after_reboot(verdict: Verdict, reboot: ApiResult) -> Verdict:
    """Fold the automatic reboot's outcome into the verdict.

    ``timeout_and_reboot_failed``: the API answered the reboot request but refused it
    (``isReboot`` false). ``complete_failure``: the reboot request itself failed (no answer,
    HTTP error, unreadable body): the instance is unreachable end to end.
    """
    if reboot.ok and reboot.data.get("isReboot") is True:
        return replace(verdict, status=Status.REBOOTED, reboot_success=True, alert=None)
    if reboot.ok:
        return replace(
            verdict,
            status=Status.CRITICAL_FAILURE,
            reboot_success=False,
            alert=AlertKind.TIMEOUT_AND_REBOOT_FAILED,
            error=f"{verdict.error} | Reboot refused (isReboot={reboot.data.get('isReboot')})",
        )
    return replace(
        verdict,
        status=Status.CRITICAL_FAILURE,
        reboot_success=False,
        alert=AlertKind.COMPLETE_FAILURE,
        error=f"Primary: {verdict.error} | Reboot: {describe_failure(reboot)}",
    )


# States after which waiting longer does not help: a person has to act.
NEEDS_A_PERSON = frozenset({"notAuthorized", "blocked"})


def recovery_settled(check: ApiResult) -> bool:
    """Whether polling after a reboot can stop: back authorized, or in a state a person must fix."""
    verdict = classify_check(check)
    return verdict.status is Status.HEALTHY or verdict.state in NEEDS_A_PERSON


def reboot_verdict(reboot: ApiResult, last_check: ApiResult | None, waited_minutes: float) -> Verdict:
    """The outcome of a requested reboot (scheduled or manual) and its recovery check.

    ``rebooted`` only when the instance came back ``authorized``; otherwise what went wrong: the
    reboot refused (``isReboot`` false), the reboot request failing, the instance not back in time,
    or back but needing a new WhatsApp link.
    """
    if not reboot.ok:
        error = f"Reboot request failed: {describe_failure(reboot)}"
        return Verdict(Status.CRITICAL_FAILURE, None, error, alert=AlertKind.REBOOT_ERROR, reboot_success=False)
    if reboot.data.get("isReboot") is not True:
        error = f"Reboot refused (isReboot={reboot.data.get('isReboot')})"
        return Verdict(Status.CRITICAL_FAILURE, None, error, alert=AlertKind.REBOOT_REFUSED, reboot_success=False)
    after = classify_check(last_check) if last_check is not None else None
    if after is not None and after.status is Status.HEALTHY:
        return Verdict(Status.REBOOTED, after.state, None, reboot_success=True)
    if after is not None and after.state in NEEDS_A_PERSON:
        error = f'Back after the reboot but state is "{after.state}": WhatsApp must be linked again'
        return Verdict(Status.UNHEALTHY, after.state, error, alert=AlertKind.REBOOT_NEEDS_RELINK, reboot_success=False)
    last = "no check" if after is None else (f'state "{after.state}"' if after.state else after.error)
    error = f"Not back as authorized {waited_minutes:g} min after the reboot (last: {last})"
    state = after.state if after is not None else None
    return Verdict(Status.CRITICAL_FAILURE, state, error, alert=AlertKind.REBOOT_NOT_BACK, reboot_success=False)


def reboot_reason(
    verdict: Verdict,
    state_since: datetime | None,
    now: datetime,
    *,
    starting_reboot_minutes: float,
    reboot_on_yellow_card: bool,
) -> str | None:
    """Why an automatic reboot is called for, or None. Never for notAuthorized or blocked."""
    if verdict.reboot:
        return "no answer"
    if verdict.state == "starting" and state_since is not None:
        minutes = (now - state_since).total_seconds() / 60
        if minutes >= starting_reboot_minutes:
            return f"starting for {minutes:.0f} min"
    if verdict.state == "yellowCard" and reboot_on_yellow_card:
        return "yellowCard"
    return None


class SkipReason(StrEnum):
    """Why an automatic reboot that a check called for was not made."""

    RECOVERED = "recovered"  # the quick re-check found the instance healthy
    COOLDOWN = "cooldown"  # rebooted automatically too recently
    CAP = "cap"  # the daily cap of automatic reboots is reached
    ALREADY = "already"  # an earlier try of this run made it, or may have (run again without the database)


def reboot_allowed(
    previous: list[datetime], now: datetime, *, cooldown_minutes: float, daily_cap: int
) -> SkipReason | None:
    """None when an automatic reboot may happen now; else COOLDOWN or CAP."""
    recent = [t for t in previous if now - timedelta(hours=24) < t <= now]
    if len(recent) >= daily_cap:
        return SkipReason.CAP
    if recent and now - max(recent) < timedelta(minutes=cooldown_minutes):
        return SkipReason.COOLDOWN
    return None


def trigger_type_for(run_type: str | None) -> str:
    """``manual`` for a run someone triggered, ``automatic`` for the schedule's own runs."""
    return "manual" if run_type == "manual" else "automatic"

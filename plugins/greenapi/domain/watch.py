"""The state watch (issue 27): what one look at an instance says, and which looks are changes.

A watch polls ``getStateInstance`` of many instances every few seconds and must start a run only
when something changed, never for a lasting condition (it would start run after run). Pure
functions: the trigger looks, these decide.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from greenapi.domain.codec import Record
from greenapi.domain.results import ApiResult, ResultKind

WATCH_VARIABLE = "green_api_watch"
WATCH_NAME = "green_api_state_watch"  # the health check's asset watcher, and its row of green_api_state_watch
NO_ANSWER = "no answer"  # a timeout, a connection error, an HTTP 5xx
MIN_WATCH_SECONDS = 1.0  # getStateInstance allows 1 request/s per instance
# The methods that answer an instance's stateInstance; each has its own 1 request/s.
STATE_METHODS = ("getWaSettings", "getStateInstance")


def seen(result: ApiResult) -> str | None:
    """What a look says of an instance: its state, ``no answer``, or ``refused (HTTP 401)`` and the
    like; None when it says nothing either way (HTTP 429: the API's limit, not the instance)."""
    if result.ok:
        state = result.data.get("stateInstance")
        return state if isinstance(state, str) and state else "null"
    if result.http_status == 429:
        return None
    if result.kind in (ResultKind.TIMEOUT, ResultKind.CONNECTION_ERROR) or (result.http_status or 0) >= 500:
        return NO_ANSWER
    if result.http_status is not None:
        return f"refused (HTTP {result.http_status})"
    return f"unreadable answer ({result.kind.value})"


@dataclass(frozen=True)
class Change(Record):
    """One instance whose state or reachability changed between two looks.

    JSON: ``{"conn_id", "instance_id", "old", "new", "at" (ISO 8601, UTC: the look that saw it)}``.
    """

    conn_id: str
    instance_id: str
    old: str
    new: str
    at: str


def changes(known: Mapping[str, str], looks: Mapping[str, tuple[str, str | None]], at: datetime,
            doubtful: Collection[str] = ()) -> tuple[dict[str, str], list[Change], set[str]]:  # fmt: skip
    """The states known after this round of ``looks`` (by connection id: ``(instance id, what it
    says)``), the changes among them, and the instances whose ``no answer`` is not confirmed yet.

    An instance's first look sets what is known and is no change; a look that says nothing (429)
    keeps it. ``no answer`` counts from the second look in a row that says it (``doubtful``: the
    first): one call lost in a thousand, or a round slowed by a loaded machine, starts no run, and
    an instance that answers again at the next look has changed nothing."""
    now_known = dict(known)
    found = []
    unconfirmed: set[str] = set()
    for conn_id, (instance_id, said) in looks.items():
        if said is None:
            if conn_id in doubtful:
                unconfirmed.add(conn_id)
            continue
        if said == NO_ANSWER and conn_id not in doubtful and known.get(conn_id) != NO_ANSWER:
            unconfirmed.add(conn_id)
            continue
        before = known.get(conn_id)
        now_known[conn_id] = said
        if before is not None and before != said:
            found.append(Change(conn_id, instance_id, before, said, at.isoformat()))
    return now_known, found, unconfirmed


def check_watch_seconds(value: float) -> float:
    """The seconds between rounds, validated: at least 1 (the API's limit per instance)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < MIN_WATCH_SECONDS:
        raise ValueError(f"watch_seconds must be at least {MIN_WATCH_SECONDS:g} (getStateInstance: 1 request/s per "
                         f"instance), got {value!r}")  # fmt: skip
    return float(value)


def check_state_method(method: str) -> str:
    """The method the watch reads the state with, validated: one of STATE_METHODS."""
    if method not in STATE_METHODS:
        raise ValueError(f"state_method must be one of {', '.join(STATE_METHODS)}, got {method!r}")
    return method


@dataclass(frozen=True)
class WatchSettings:
    """Variable ``green_api_watch``: whether the health check also runs on a change of state
    seen by the watch in the triggerer, and how often the watch looks."""

    enabled: bool = False
    watch_seconds: float = 20.0


def parse_watch(raw: str | dict[str, Any] | None) -> WatchSettings:
    """Variable ``green_api_watch`` (JSON: ``{"enabled": true, "watch_seconds": 20}``; unset: off).
    A bad value is a ValueError naming it."""
    if raw in (None, ""):
        return WatchSettings()
    where = f"Variable {WATCH_VARIABLE}"
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON ({exc.msg} at char {exc.pos}): {raw!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f'{where} must be a JSON object such as {{"enabled": true, "watch_seconds": 20}}, got {value!r}')
    unknown = sorted(set(value) - {"enabled", "watch_seconds"})
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}: it takes enabled and watch_seconds")
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}.enabled must be true or false, got {enabled!r}")
    try:
        seconds = check_watch_seconds(value.get("watch_seconds", 20.0))
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from None
    return WatchSettings(enabled, seconds)


@dataclass(frozen=True)
class WatchRound(Record):
    """A watch's last round, as the trigger records it (table ``green_api_state_watch``): since
    ``started_at`` (the trigger's start), ``rounds`` rounds and ``changes`` changes; in the last
    round, at ``at``, of ``watched`` instances, ``answered`` said something, ``rate_limited`` got
    a 429 and ``unusable`` had no usable connection; the round took ``round_ms``."""

    watch_name: str
    started_at: datetime
    at: datetime
    watch_seconds: float
    watched: int
    answered: int
    rate_limited: int
    unusable: int
    rounds: int
    changes: int
    round_ms: int


STALE_ROUNDS = 3  # rounds missed before a watch counts as stopped
STALE_FLOOR_SECONDS = 90.0


def stale_after(last: WatchRound) -> timedelta:
    """How long after its last round a watch counts as stopped: three rounds (or three of its
    last round's length when rounds run long), and never under 90 s."""
    seconds = max(STALE_ROUNDS * last.watch_seconds, STALE_ROUNDS * last.round_ms / 1000, STALE_FLOOR_SECONDS)
    return timedelta(seconds=seconds)


def watch_problem(last: WatchRound | None, now: datetime) -> str | None:
    """What a scheduled run says of the watch from its last recorded round: None while it goes
    on, else one line for support (it stopped: the triggerer is down, or the trigger died).
    No row at all is no problem yet: the watch may not have started its first round."""
    if last is None or now - last.at <= stale_after(last):
        return None
    since = int((now - last.at).total_seconds())
    return (f"the state watch {last.watch_name} has not looked since {last.at:%Y-%m-%d %H:%M:%S} UTC ({since} s ago, "
            f"every {last.watch_seconds:g} s expected): is the Airflow triggerer running? The 5-minute checks go on")

"""The state watch (issue 27): what one look at an instance says, and which looks are changes.

A watch polls ``getStateInstance`` of many instances every few seconds and must start a run only
when something changed, never for a lasting condition (it would start run after run). Pure
functions: the trigger looks, these decide.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from greenapi.domain.codec import Record
from greenapi.domain.results import ApiResult, ResultKind

WATCH_VARIABLE = "green_api_watch"
NO_ANSWER = "no answer"  # a timeout, a connection error, an HTTP 5xx
MIN_WATCH_SECONDS = 1.0  # getStateInstance allows 1 request/s per instance


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
            ) -> tuple[dict[str, str], list[Change]]:  # fmt: skip
    """The states known after this round of ``looks`` (by connection id: ``(instance id, what it
    says)``), and the changes among them. An instance's first look sets what is known and is no
    change; a look that says nothing (429) keeps it."""
    now_known = dict(known)
    found = []
    for conn_id, (instance_id, said) in looks.items():
        if said is None:
            continue
        before = known.get(conn_id)
        now_known[conn_id] = said
        if before is not None and before != said:
            found.append(Change(conn_id, instance_id, before, said, at.isoformat()))
    return now_known, found


def check_watch_seconds(value: float) -> float:
    """The seconds between rounds, validated: at least 1 (the API's limit per instance)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < MIN_WATCH_SECONDS:
        raise ValueError(f"watch_seconds must be at least {MIN_WATCH_SECONDS:g} (getStateInstance: 1 request/s per "
                         f"instance), got {value!r}")  # fmt: skip
    return float(value)


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

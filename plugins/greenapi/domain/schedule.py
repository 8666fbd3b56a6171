"""The daily reboot time: its configuration, and the instant it happens on each local day.

One run per local calendar day, whatever the timezone's rules:
- a wall time that happens twice (fall-back) runs at its first occurrence;
- a wall time that does not exist (spring-forward gap) runs as many minutes after the gap as it
  was after the gap's start (02:30 in a 02:00-03:00 gap runs at 03:30);
- if that would land on the next day (a gap reaching midnight), it runs at the last minute of its
  own day before the gap instead, so that no day is skipped and none gets two runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

from greenapi.domain.config import ConfigError, check_timezone

REBOOT_SCHEDULE_VARIABLE = "green_api_reboot_schedule"
CHECK_SCHEDULE_VARIABLE = "green_api_check_schedule"
DEFAULT_CHECK_SCHEDULE = "*/5 * * * *"
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_KEYS = {"time", "timezone", "enabled"}


@dataclass(frozen=True)
class RebootSchedule:
    """Variable ``green_api_reboot_schedule``."""

    time: str = "03:00"
    timezone: str = "Europe/Paris"
    enabled: bool = True

    @property
    def at(self) -> dt_time:
        """The time of day as a ``time``."""
        return parse_time(self.time)


def parse_time(value: Any, key: str = f"{REBOOT_SCHEDULE_VARIABLE}.time") -> time:
    """A 24-hour ``HH:MM`` as a ``time``; anything else is a ConfigError naming ``key``."""
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ConfigError(f"{key} must be a 24-hour time HH:MM such as '03:00', got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_reboot_schedule(raw: str | dict[str, Any] | None) -> RebootSchedule:
    """Validate the Variable; every error names the key and the bad value."""
    if raw is None or raw == "":
        return RebootSchedule()
    name = REBOOT_SCHEDULE_VARIABLE
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Variable {name} is not valid JSON ({exc.msg} at char {exc.pos}): {raw!r}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"Variable {name} must be a JSON object such as {{\"time\": \"03:00\"}}, got {raw!r}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"Variable {name} has unknown key(s) {unknown}; known keys: {sorted(_KEYS)}")
    schedule = RebootSchedule(**raw)
    parse_time(schedule.time)
    check_timezone(f"{name}.timezone", schedule.timezone)
    if not isinstance(schedule.enabled, bool):
        raise ConfigError(f"{name}.enabled must be true or false, got {schedule.enabled!r}")
    return schedule


def parse_check_schedule(raw: str | None) -> str:
    """Variable ``green_api_check_schedule``: the health check's cron expression (five fields, UTC),
    by default every 5 minutes. A bad value is refused by name."""
    from croniter import croniter

    if raw is None or not str(raw).strip():
        return DEFAULT_CHECK_SCHEDULE
    value = " ".join(str(raw).split())
    if len(value.split(" ")) != 5 or not croniter.is_valid(value):
        raise ConfigError(
            f"Variable {CHECK_SCHEDULE_VARIABLE} must be a cron expression of five fields such as "
            f"{DEFAULT_CHECK_SCHEDULE!r}, got {raw!r}"
        )
    return value


def run_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of the run that belongs to local ``day``; its local date is always ``day``."""
    wall = datetime.combine(day, at, tzinfo=zone)  # fold=0: first occurrence, or the pre-gap offset
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).date() == day:
        return instant
    # A gap reaching midnight pushed the time into the next day: take the last minute of ``day``.
    probe = instant.replace(second=0, microsecond=0)
    while probe.astimezone(zone).date() != day:
        probe -= timedelta(minutes=1)
    return probe


def next_run(after: datetime, at: time, zone: ZoneInfo, *, inclusive: bool = False) -> datetime:
    """The first run instant later than ``after`` (or equal, with ``inclusive``)."""
    day = after.astimezone(zone).date() - timedelta(days=1)
    while True:
        candidate = run_instant(day, at, zone)
        if candidate > after or (inclusive and candidate == after):
            return candidate
        day += timedelta(days=1)


def settle_window_start(now: datetime, schedule: RebootSchedule, settle_minutes: float) -> datetime | None:
    """When ``now`` falls between a scheduled reboot and ``settle_minutes`` after it, that reboot's instant."""
    if not schedule.enabled or settle_minutes <= 0:
        return None
    zone = ZoneInfo(schedule.timezone)
    today = now.astimezone(zone).date()
    for day in (today, today - timedelta(days=1)):
        instant = run_instant(day, schedule.at, zone)
        if instant <= now < instant + timedelta(minutes=settle_minutes):
            return instant
    return None

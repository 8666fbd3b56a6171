"""DailyLocalTimeTimetable: once a day at a local wall time, one run per local calendar day.

Airflow's cron timetables count in wall-clock matches; this one counts days, so DST changes of
every IANA timezone (30-minute shifts, changes at midnight) neither skip nor double a day. The
rules are in :mod:`greenapi.domain.schedule`. Registered through :mod:`greenapi.plugin`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, Timetable

from greenapi.domain.config import check_timezone
from greenapi.domain.schedule import next_run, parse_time

if TYPE_CHECKING:
    from airflow.timetables.base import TimeRestriction
    from pendulum import DateTime


class DailyLocalTimeTimetable(Timetable):
    """Runs every day at ``at`` (``"HH:MM"``) local time in ``timezone``."""

    periodic = True

    def __init__(self, at: str = "03:00", timezone: str = "Europe/Paris") -> None:
        self.at = at
        self.timezone = timezone
        self._time = parse_time(at, "time")
        self._zone = ZoneInfo(check_timezone("timezone", timezone))
        self.description = f"Every day at {at} ({timezone})"

    @property
    def summary(self) -> str:
        """What the UI shows of the schedule."""
        return f"daily {self.at} {self.timezone}"

    def serialize(self) -> dict[str, Any]:
        """The timetable as the scheduler stores it."""
        return {"at": self.at, "timezone": self.timezone}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> DailyLocalTimeTimetable:
        """The timetable back from :meth:`serialize`."""
        return cls(data["at"], data["timezone"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DailyLocalTimeTimetable) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash((self.at, self.timezone))

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """A manual run's data interval: the moment it was triggered."""
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        """The next scheduled run: the next local day's instant at the time of day."""
        if last_automated_data_interval is not None:
            instant = next_run(last_automated_data_interval.end, self._time, self._zone)
        elif restriction.earliest is None:
            return None
        else:
            earliest: datetime = restriction.earliest
            if not restriction.catchup:
                earliest = max(earliest, datetime.now(UTC))
            instant = next_run(earliest, self._time, self._zone, inclusive=True)
        if restriction.latest is not None and instant > restriction.latest:
            return None
        return DagRunInfo.exact(pendulum.instance(instant))

"""The scheduled reboot's timetable: one run per local calendar day, across every DST change.

Run instants are computed by the DAG's own timetable (``next_dagrun_info``), as the scheduler does.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta

import pendulum
import pytest
from airflow.timetables.base import TimeRestriction

from greenapi.domain.config import ConfigError
from greenapi.domain.schedule import parse_reboot_schedule
from greenapi.timetables import DailyLocalTimeTimetable


def runs(at: str, tz: str, start: datetime, count: int) -> list[datetime]:
    timetable = DailyLocalTimeTimetable(at, tz)
    restriction = TimeRestriction(earliest=pendulum.instance(start), latest=None, catchup=True)
    out, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        assert info is not None
        out.append(info.run_after)
        last = info.data_interval
    return out


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# 2026: Europe/Paris springs forward on 29 March (02:00 -> 03:00) and falls back on 25 October
# (03:00 -> 02:00); America/New_York on 8 March (02:00 -> 03:00) and 1 November (02:00 -> 01:00).
TABLES = [
    # a time inside the spring-forward gap: runs once that day, as long after the gap as it was into it
    ("Europe/Paris", "02:30", "2026-03-28", ["2026-03-28 01:30", "2026-03-29 01:30", "2026-03-30 00:30"]),
    ("America/New_York", "02:30", "2026-03-07", ["2026-03-07 07:30", "2026-03-08 07:30", "2026-03-09 06:30"]),
    # a time inside the repeated hour: runs once, at its first occurrence
    ("Europe/Paris", "02:30", "2026-10-24", ["2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"]),
    ("America/New_York", "01:30", "2026-10-31", ["2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30"]),
    # a normal time
    ("Europe/Paris", "03:00", "2026-03-28", ["2026-03-28 02:00", "2026-03-29 01:00", "2026-03-30 01:00"]),
    ("Europe/Paris", "03:00", "2026-10-24", ["2026-10-24 01:00", "2026-10-25 02:00", "2026-10-26 02:00"]),
    ("America/New_York", "03:00", "2026-03-07", ["2026-03-07 08:00", "2026-03-08 07:00", "2026-03-09 07:00"]),
    ("America/New_York", "03:00", "2026-10-31", ["2026-10-31 07:00", "2026-11-01 08:00", "2026-11-02 08:00"]),
    # Lord Howe shifts by 30 minutes (5 April back, 4 October forward in 2026)
    ("Australia/Lord_Howe", "02:15", "2026-10-03", ["2026-10-02 15:45", "2026-10-03 15:45", "2026-10-04 15:15"]),
    ("Australia/Lord_Howe", "01:45", "2026-04-04", ["2026-04-03 14:45", "2026-04-04 14:45", "2026-04-05 15:15"]),
    # Nuuk springs forward at midnight (28 March, 23:00 -> 00:00): 23:30 of the 28th does not exist
    # and "after the gap" would be the 29th, so it runs at the last minute of the 28th instead.
    ("America/Nuuk", "23:30", "2026-03-27", ["2026-03-28 01:30", "2026-03-29 00:59", "2026-03-30 00:30"]),
]


@pytest.mark.parametrize(("tz", "at", "first_day", "expected"), TABLES)
def test_next_runs_across_2026_dst_changes(tz, at, first_day, expected):
    start = datetime.combine(date.fromisoformat(first_day), datetime.min.time(), zoneinfo.ZoneInfo(tz))
    assert runs(at, tz, start.astimezone(UTC), 3) == [utc(x) for x in expected]


def _transitions(tz: str, year: int) -> list[datetime]:
    zone = zoneinfo.ZoneInfo(tz)
    found, t = [], datetime(year, 1, 1, tzinfo=UTC)
    previous = t.astimezone(zone).utcoffset()
    while t.year == year:
        offset = (t + timedelta(hours=1)).astimezone(zone).utcoffset()
        if offset != previous:
            found.append(t)
            previous = offset
        t += timedelta(hours=1)
    return found


@pytest.mark.slow  # every zone of the tz database: once, at 02:05 (tests/conftest.py hours_of)
def test_every_iana_timezone_gets_exactly_one_run_per_local_day_around_its_2026_changes():
    checked = 0
    for tz in sorted(zoneinfo.available_timezones()):
        zone = zoneinfo.ZoneInfo(tz)
        for change in _transitions(tz, 2026):
            local = change.astimezone(zone)
            times = {"00:00", "00:30", "01:30", "02:30", "03:00", "23:30", local.strftime("%H:%M"),
                     (local + timedelta(minutes=30)).strftime("%H:%M")}
            first_day = local.date() - timedelta(days=3)
            start = datetime.combine(first_day, datetime.min.time(), zone).astimezone(UTC)
            for at in times:
                days = [r.astimezone(zone).date() for r in runs(at, tz, start, 7)]
                assert days == [first_day + timedelta(days=i) for i in range(7)], (tz, at, change)
                checked += 1
    assert checked > 2000  # every zone with a 2026 change, several times each


def test_catchup_false_starts_from_now_not_from_the_start_date():
    timetable = DailyLocalTimeTimetable("03:00", "Europe/Paris")
    restriction = TimeRestriction(earliest=pendulum.datetime(2020, 1, 1, tz="UTC"), latest=None, catchup=False)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info is not None
    now = datetime.now(UTC)
    assert now < info.run_after <= now + timedelta(days=1, hours=1)


def test_timetable_survives_airflow_serialization():
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    timetable = DailyLocalTimeTimetable("04:45", "Asia/Kolkata")
    assert decode_timetable(encode_timetable(timetable)) == timetable


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ('{"time": "25:00"}', "green_api_reboot_schedule.time must be a 24-hour time HH:MM such as '03:00', got '25:00'"),
        ('{"time": "3h"}', "green_api_reboot_schedule.time must be a 24-hour time HH:MM such as '03:00', got '3h'"),
        ('{"time": "03:60"}', "got '03:60'"),
        ('{"timezone": "Europe/Pariss"}', "green_api_reboot_schedule.timezone is not a known IANA timezone: 'Europe/Pariss'"),
        ('{"enabled": "yes"}', "green_api_reboot_schedule.enabled must be true or false, got 'yes'"),
        ('{"time": "03:00", "when": 1}', "unknown key(s) ['when']"),
        ("{time: 03:00}", "Variable green_api_reboot_schedule is not valid JSON"),
        ('"03:00"', "must be a JSON object"),
    ],
)
def test_bad_schedules_are_refused_by_name(raw, named):
    with pytest.raises(ConfigError) as err:
        parse_reboot_schedule(raw)
    assert named in str(err.value)


def test_schedule_defaults():
    schedule = parse_reboot_schedule(None)
    assert (schedule.time, schedule.timezone, schedule.enabled) == ("03:00", "Europe/Paris", True)

"""No test depends on the hour it runs at.

The incident tests drive runs through fixed logical hours (12:00-13:05 UTC); the others run at the
current time. A failing check in the settle window after the daily reboot alerts nobody, so a
reboot time taken from the wall clock (or the default one, 03:00 in Paris) used to mute alerts
these tests expect when the suite started at some hours. So the time-sensitive tests
(``TIME_SENSITIVE`` in ``tests/conftest.py``: the domain, the timetable, the incidents, the
not-authorized alerts) run at the current time and with the process's wall clock moved by
time-machine to 00:30 and 02:05 UTC today (the ``wall_clock`` fixture). The first is when a reboot
"12 hours from now" fell among the incident tests' hours, the second is inside the default
schedule's window. The pure tests (domain, timetable) run at all three; the whole-DAG ones (e2e,
5 to 20 s a copy) at the current time and at 02:05; a slow one (a minute a copy) at 02:05 only
(``hours_of``: the suite's 12 minutes). The clock keeps ticking from there; monotonic clocks, hence
timeouts, stay true. PostgreSQL's clock is not moved: these tests compare no database time with
Python's.

The copies are ordinary tests of the suite (``test_x[...-at0030utc]``), spread over the test
processes like the others. The tests here prove that the clock they see is the one announced, for
every way this package and Airflow read it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pendulum
import pytest
from airflow.sdk import timezone

from tests.conftest import AT_HOURS, TIME_SENSITIVE, hours_of


@pytest.mark.parametrize("hour", [h for h in AT_HOURS if h])
def test_the_moved_wall_clock_is_what_python_pendulum_and_airflow_read(hour, request):
    wall_clock = request.getfixturevalue("moved_clock")(hour)
    with wall_clock:
        readings = {
            "datetime": datetime.now(UTC),
            "time.time": datetime.fromtimestamp(time.time(), UTC),
            "pendulum": pendulum.now("UTC"),
            "airflow": timezone.utcnow(),
        }
    for source, seen in readings.items():
        assert seen.strftime("%H:%M") == hour, f"{source} reads {seen:%H:%M}, not {hour}"
        assert seen.date() == datetime.now(UTC).date(), source


def test_each_time_sensitive_test_runs_at_every_hour(request):
    """Every time-sensitive test of this session (all of them in ``make test``) has its copies, one
    per hour ``hours_of`` gives it."""
    seen: dict[str, list[str | None]] = {}
    wanted: dict[str, list[str | None]] = {}
    for item in request.session.items:
        if any(item.nodeid.startswith(prefix) for prefix in TIME_SENSITIVE):
            callspec = getattr(item, "callspec", None)
            assert callspec is not None and "wall_clock" in callspec.params, f"{item.nodeid} runs at one hour only"
            base = item.nodeid.split("[")[0] + repr({k: v for k, v in callspec.params.items() if k != "wall_clock"})
            seen.setdefault(base, []).append(callspec.params["wall_clock"])
            wanted[base] = list(hours_of(item))
    for base, hours in seen.items():
        assert sorted(hours, key=str) == sorted(wanted[base], key=str), (base, hours)

"""No test depends on the hour it runs at.

The incident tests drive runs through fixed logical hours (12:00-13:05 UTC); the others run at the
current time. A failing check in the settle window after the daily reboot alerts nobody, so a
reboot time taken from the wall clock (or the default one, 03:00 in Paris) used to mute alerts
these tests expect when the suite started at some hours. Here the time-sensitive modules run again
with the process clock set by Debian's faketime to 00:30 and 02:05 UTC: the first is when a
reboot "12 hours from now" fell among the incident tests' hours, the second is inside the default
schedule's window. Both runs at once, each on databases of its own (``GREEN_API_DB_TAG``).

How libfaketime 0.9.10 (Debian 12) is set for Python's threads: only the wall clock is faked
(``FAKETIME_DONT_FAKE_MONOTONIC=1``), else timed lock waits (``threading.Event.wait``) never time
out; its "monotonic fix" is off (``FAKETIME_FORCE_MONOTONIC_FIX=0``), else the GIL's timed waits
return at once and the threads spin (three times the CPU, and slower); and ``time.sleep``, which
it refuses in that mode (EINVAL), waits on an event instead (``tests/faketime_sleep.py``).
PostgreSQL's clock is not faked: these modules compare no database time with Python's.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOURS = ("00:30", "02:05")
MODULES = (
    "tests/domain",
    "tests/test_timetable.py",
    "tests/e2e/test_incidents.py",
    # runs at the current time and must alert: at 02:05 UTC, inside the default schedule's window
    "tests/e2e/test_health_check_dag.py::test_not_authorized_states_alert_every_contact_without_reboot",
)


@pytest.fixture(scope="module")
def faketime() -> str:
    """Debian's faketime, installed here when missing (as root, like `make browser` does Chromium)."""
    if shutil.which("faketime") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        install = ["apt-get", "install", "-y", "-q", "faketime"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            subprocess.run(install, capture_output=True, check=False)
    found = shutil.which("faketime")
    if found is None:
        raise RuntimeError("faketime is not installed: sudo apt-get install faketime")
    return found


def start(faketime: str, hour: str, out: IO[str]) -> subprocess.Popen[str]:
    """The modules under a clock that starts today at ``hour`` UTC, on databases of their own."""
    tag = "_".join(t for t in (os.environ.get("GREEN_API_DB_TAG"), "at" + hour.replace(":", "")) if t)
    clock = f"{datetime.now(UTC).date().isoformat()} {hour}:00"
    script = (
        ". scripts/env.sh test >/dev/null"
        " && .venv/bin/airflow db migrate >/dev/null"
        ' && .venv/bin/python -m greenapi.migrate --url "$GREEN_API_DB_URL" >/dev/null'
        f' && "$FAKETIME" "{clock}" .venv/bin/python -c'
        " 'import datetime; print(\"clock:\", datetime.datetime.now(datetime.UTC).strftime(\"%H:%M\"))'"
        f' && exec "$FAKETIME" "{clock}" .venv/bin/python -m pytest -q -p no:cacheprovider -p tests.faketime_sleep'
        f' {" ".join(MODULES)}'
    )
    env = {**os.environ, "GREEN_API_DB_TAG": tag, "TZ": "UTC", "FAKETIME": faketime,
           "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_FORCE_MONOTONIC_FIX": "0"}  # fmt: skip
    return subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=env, text=True, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


@pytest.mark.timeout(600)  # about 2.5 minutes on an idle machine: both runs at once
def test_the_time_sensitive_tests_pass_at_0030_and_0205_utc(faketime, tmp_path):
    logs = {hour: tmp_path / f"at{hour.replace(':', '')}.log" for hour in HOURS}
    with ExitStack() as stack:
        runs = {hour: start(faketime, hour, stack.enter_context(logs[hour].open("w"))) for hour in HOURS}
        for run in runs.values():
            stack.callback(lambda run=run: run.poll() is None and os.killpg(run.pid, signal.SIGKILL))
        for run in runs.values():
            run.wait(timeout=580)
    for hour, run in runs.items():
        out = logs[hour].read_text()
        summary = out.strip().splitlines()[-1] if out.strip() else ""
        assert f"clock: {hour}" in out, f"the clock was not set to {hour}:\n{out[-3000:]}"
        assert run.returncode == 0, f"at {hour} UTC:\n{out[-5000:]}"
        assert re.fullmatch(r"\d+ passed(, \d+ warnings?)? in .*", summary), f"at {hour} UTC: {summary}"

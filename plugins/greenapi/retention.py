"""Retention of Airflow's own records of this package's DAGs: ``airflow db clean``, run beside the scheduler.

An Airflow 3 task has no access to the metadata database (apache/airflow#50601), so this cannot
be a task of the maintenance DAG. It is a small job where the database is at hand, as Airflow's
Helm chart runs ``airflow db clean`` as a CronJob:

- ``make run`` starts it in the background (log: ``$AIRFLOW_HOME/logs/retention.log``);
- ``docker compose`` runs it as the service ``airflow-retention``;
- elsewhere: ``python -m greenapi.retention --once`` from cron, or ``--every 24`` as a service.

It deletes the runs of this package's DAGs older than ``airflow_retention_days`` (Variable
``green_api_settings``, default 30), with their task instances, XComs and log records. Airflow
keeps each DAG's latest run. Only the tables that depend on a run are named: cleaning ``dag`` or
``dag_version`` trips on foreign keys in Airflow 3.3 (apache/airflow#56192).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from greenapi.domain.config import PACKAGE_DAG_IDS, SETTINGS_VARIABLE, ConfigError, Settings, parse_settings

TABLES = ("dag_run", "task_instance", "task_instance_history", "xcom", "log")
_FOUND = re.compile(r"Checking table (\w+)\s+Found (\d+) rows meeting deletion criteria", re.MULTILINE)
# `airflow db clean` adds the tables that depend on the named ones; a few of those (deadline,
# task_reschedule) cannot be filtered by DAG and fail with a warning, but their rows go anyway:
# they cascade from the run they belong to. Only a failure on a named table is one.
_FAILED = re.compile(r"Encountered error when attempting to clean table '(\w+)'")
RETRY_AFTER = timedelta(minutes=10)


class RetentionError(RuntimeError):
    """``airflow db clean`` failed; the message says how and where to look."""


def _settings() -> Settings:
    from airflow.models.variable import Variable

    return parse_settings(Variable.get(SETTINGS_VARIABLE, default_var=None))


def clean_command(before: datetime, batch_size: int) -> list[str]:
    """The ``airflow db clean`` command for this package's DAGs' records older than ``before``."""
    return [
        sys.executable, "-m", "airflow", "db", "clean",
        "--clean-before-timestamp", before.isoformat(),
        "--dag-ids", ",".join(PACKAGE_DAG_IDS),
        "--tables", ",".join(TABLES),
        "--batch-size", str(batch_size),
        "--skip-archive", "--yes",
    ]  # fmt: skip


def clean(now: datetime, settings: Settings) -> dict[str, int]:
    """One pass; returns the rows found (and deleted) per table. Raises RetentionError."""
    before = now - timedelta(days=settings.airflow_retention_days)
    done = subprocess.run(
        clean_command(before, settings.cleanup_batch_size), capture_output=True, text=True, timeout=3600, check=False
    )
    output = done.stdout + done.stderr
    failed = sorted(set(_FAILED.findall(output)) & set(TABLES))
    if done.returncode != 0 or failed:
        last = [line for line in output.strip().splitlines() if line.strip()][-1:]
        raise RetentionError(f"airflow db clean failed (exit {done.returncode}, tables {failed}): "
                             f"{last[0] if last else 'no output'}")  # fmt: skip
    return {table: int(count) for table, count in _FOUND.findall(done.stdout)}


def run_once() -> dict[str, int]:
    """One pass of retention with the settings of ``green_api_settings``; returns the rows removed by table."""
    settings = _settings()
    now = datetime.now(UTC)
    found = clean(now, settings)
    before = now - timedelta(days=settings.airflow_retention_days)
    _say(f"removed {found.get('dag_run', 0)} run(s) of this package's DAGs from before {before:%Y-%m-%d %H:%M} UTC, "
         "with their task instances, XComs and log records")  # fmt: skip
    return found


def _say(message: str) -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC retention: {message}", flush=True)


def run_forever(every: timedelta, stop: threading.Event) -> None:
    """A pass now, then one every ``every``; a failed pass is tried again after RETRY_AFTER."""
    while not stop.is_set():
        wait = every
        try:
            run_once()
        except (RetentionError, ConfigError, subprocess.TimeoutExpired) as exc:
            _say(f"error: {exc}; next try in {RETRY_AFTER}")
            wait = min(every, RETRY_AFTER)
        stop.wait(wait.total_seconds())


def main(argv: list[str] | None = None) -> int:
    """``python -m greenapi.retention --once`` (for cron) or ``--every HOURS`` (a service)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one pass, then exit (for cron)")
    mode.add_argument("--every", type=float, metavar="HOURS", help="a pass now, then every HOURS (a service)")
    args = parser.parse_args(argv)
    if args.once:
        try:
            run_once()
        except (RetentionError, ConfigError) as exc:
            _say(f"error: {exc}")
            return 1
        return 0
    if not 0 < args.every <= 24 * 30:
        parser.error(f"--every must be in (0, 720] hours, got {args.every}")
    stop = threading.Event()

    def stopping(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    _say(f"started: a pass now, then every {args.every:g} h")
    run_forever(timedelta(hours=args.every), stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

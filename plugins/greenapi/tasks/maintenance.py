"""Glue of the maintenance DAG: retention of the health log and of Airflow's own records."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from greenapi.domain.config import PACKAGE_DAG_IDS

if TYPE_CHECKING:
    from greenapi.store import HealthStore

# Airflow's records of a run. `airflow db clean` adds the tables that depend on them; a few of
# those (deadline, task_reschedule) cannot be filtered by DAG and are skipped with a warning, but
# their rows go anyway: they cascade from the run and task instance they belong to.
AIRFLOW_TABLES = ("dag_run", "task_instance", "task_instance_history", "xcom", "log")
_FOUND = re.compile(r"Checking table (\w+)\s+Found (\d+) rows meeting deletion criteria", re.MULTILINE)
_FAILED = re.compile(r"Encountered error when attempting to clean table '(\w+)'")


def cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def purge_health_logs(store: HealthStore, before: datetime, batch_size: int) -> dict[str, int]:
    """Delete health-log rows older than ``before`` in batches of ``batch_size``."""
    deleted = batches = 0
    while True:
        count = store.delete_logs_before(before.isoformat(), batch_size)
        batches += 1
        deleted += count
        if count < batch_size:
            return {"rows": deleted, "batches": batches}


def purge_airflow_records(before: datetime, batch_size: int) -> dict[str, int]:
    """Runs of this package's DAGs older than ``before``, and their task instances, XComs, logs.

    Uses Airflow's own ``airflow db clean`` (the supported way; task code opens no session on the
    metadata database). Airflow keeps each DAG's latest run. Returns rows found per table.
    """
    command = [
        sys.executable, "-m", "airflow", "db", "clean",
        "--clean-before-timestamp", before.isoformat(),
        "--dag-ids", ",".join(PACKAGE_DAG_IDS),
        "--tables", ",".join(AIRFLOW_TABLES),
        "--batch-size", str(batch_size),
        "--skip-archive", "--yes",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    output = done.stdout + done.stderr
    failed = sorted(set(_FAILED.findall(output)) & set(AIRFLOW_TABLES))
    if done.returncode != 0 or failed:
        raise RuntimeError(f"airflow db clean failed (exit {done.returncode}, tables {failed}): {output[-2000:]}")
    return {table: int(count) for table, count in _FOUND.findall(done.stdout)}


def purge_task_logs(base_folder: str | Path, before: datetime) -> dict[str, int]:
    """Delete this package's task log folders (one per run) last written before ``before``."""
    files = size = runs = 0
    limit = before.timestamp()
    for dag_id in PACKAGE_DAG_IDS:
        for run_dir in Path(base_folder, f"dag_id={dag_id}").glob("run_id=*"):
            if not run_dir.is_dir():
                continue
            paths = [p for p in run_dir.rglob("*") if p.is_file()]
            if any(p.stat().st_mtime >= limit for p in paths):
                continue
            files += len(paths)
            size += sum(p.stat().st_size for p in paths)
            runs += 1
            shutil.rmtree(run_dir)
    return {"run_folders": runs, "files": files, "bytes": size}



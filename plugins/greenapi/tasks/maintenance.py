"""Glue of the maintenance DAG: retention of the health log and of the task log files."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from greenapi.domain.config import PACKAGE_DAG_IDS
from greenapi.tasks.context import TaskContext

if TYPE_CHECKING:
    from greenapi.store import HealthStore

log = logging.getLogger(__name__)


def cutoff(now: datetime, days: int) -> datetime:
    """The moment ``days`` before ``now``: what is older goes."""
    return now - timedelta(days=days)


def purge_health_logs_step() -> dict[str, int]:
    """Task body: health-log rows older than ``health_log_retention_days``, deleted in batches."""
    from greenapi.store import HealthStore

    ctx = TaskContext.load()
    before = cutoff(ctx.run_after, ctx.settings.health_log_retention_days)
    removed = purge_health_logs(HealthStore(), before, ctx.settings.cleanup_batch_size)
    log.info("Deleted %d health-log row(s) checked before %s", removed["rows"], before.isoformat())
    return removed


def purge_task_logs_step() -> dict[str, int]:
    """Task body: this package's task log folders older than ``airflow_retention_days``."""
    from airflow.sdk.configuration import conf

    ctx = TaskContext.load()
    before = cutoff(ctx.run_after, ctx.settings.airflow_retention_days)
    removed = purge_task_logs(conf.get("logging", "base_log_folder"), before)
    log.info("Deleted task logs before %s: %s", before.isoformat(), removed)
    return removed


def purge_health_logs(store: HealthStore, before: datetime, batch_size: int) -> dict[str, int]:
    """Delete health-log rows older than ``before`` in batches of ``batch_size``."""
    deleted = batches = 0
    while True:
        count = store.delete_logs_before(before.isoformat(), batch_size)
        batches += 1
        deleted += count
        if count < batch_size:
            return {"rows": deleted, "batches": batches}


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



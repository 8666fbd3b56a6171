"""Glue of the maintenance DAG: retention of the health log and of the task log files."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from greenapi.domain.config import PACKAGE_DAG_IDS
from greenapi.tasks.context import TaskContext

if TYPE_CHECKING:
    from greenapi.store import HealthStore

log = logging.getLogger(__name__)
# Days of health-log partitions made ahead by each daily run: a week of the DAG paused, and checks
# still land in their own day's partition (later ones in the default partition, moved out when made).
PARTITIONS_AHEAD = 7


def cutoff(now: datetime, days: int) -> datetime:
    """The moment ``days`` before ``now``: what is older goes."""
    return now - timedelta(days=days)


def purge_health_logs_step() -> dict[str, int]:
    """Task body: the health log's partitions for the days ahead are made, and the days older
    than ``health_log_retention_days`` are dropped whole."""
    from greenapi.store import HealthStore

    ctx = TaskContext.load()
    before = cutoff(ctx.run_after, ctx.settings.health_log_retention_days)
    done = purge_health_logs(HealthStore(), ctx.run_after, before)
    log.info("Health log: %d partition(s) made ahead; %d day(s) dropped with %d row(s), all checked before %s",
             done["partitions_made"], done["days_dropped"], done["rows"], before.isoformat())
    return done


def purge_task_logs_step() -> dict[str, int]:
    """Task body: this package's task log folders older than ``airflow_retention_days``."""
    from airflow.sdk.configuration import conf

    ctx = TaskContext.load()
    before = cutoff(ctx.run_after, ctx.settings.airflow_retention_days)
    removed = purge_task_logs(conf.get("logging", "base_log_folder"), before)
    log.info("Deleted task logs before %s: %s", before.isoformat(), removed)
    return removed


def purge_health_logs(store: HealthStore, now: datetime, before: datetime) -> dict[str, int]:
    """Make the partitions of the days from yesterday to PARTITIONS_AHEAD days ahead (UTC), then
    drop the days that ended by ``before``: a day goes once its last moment is past retention."""
    today = now.astimezone(UTC).date()
    made = store.make_partitions(today - timedelta(days=1), today + timedelta(days=PARTITIONS_AHEAD))
    days, rows = store.drop_logs_before(before)
    return {"partitions_made": made, "days_dropped": days, "rows": rows}


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



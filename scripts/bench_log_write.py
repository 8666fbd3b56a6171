"""What logging a run costs at 10,000 instances, and the roll-up triggers' share (`make bench-dashboard`).

A run of the health check logs one row per instance, each shard in one statement (40 shards of
250 at 10,000 instances). This replays an hour of runs (12, every 5 minutes) into two scratch
databases: one at the schema before issue 25 (sql/001-011: each statement recounts the hours it
touched from the raw rows, and the all-instances hour from every instance's hourly row) and one at
today's (sql/012: the log partitioned by day, the aggregates added to). Each shard's statement is
the store's own (store.INSERT_LOGS, after its per-run lock); the same hour is then replayed with the
triggers off, so the difference is the triggers' cost. Prints the median per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins")]

from greenapi import migrate  # noqa: E402
from greenapi.store import INSERT_LOGS, LOCK_RUNS  # noqa: E402

# The store's insert as it was before issue 25: no api_host nor instance_name, and a unique key.
OLD_INSERT = (
    INSERT_LOGS[: INSERT_LOGS.index("WHERE NOT EXISTS")]
    .replace("SELECT DISTINCT ON (r.dag_id, r.run_id, r.instance_id) ", "SELECT ")
    .replace(", api_host, instance_name", "").replace(", api_host varchar, instance_name varchar", "")
    + "ON CONFLICT ON CONSTRAINT green_api_health_logs_run_instance_key DO NOTHING"
)
TRIGGERS = ("green_api_rollup_ins",)


def shard_rows(run: str, at: datetime, first: int, count: int) -> str:
    rows = [{
        "checked_at": (at + timedelta(milliseconds=n)).isoformat(), "status": "healthy" if n % 50 else "unhealthy",
        "state_instance": "authorized", "response_time_ms": 80 + n % 900, "instance_id": str(77_100_000_000 + n),
        "connection_id": f"conn_{n}", "dag_id": "green_api_health_check", "run_id": run,
        "trigger_type": "automatic", "reboot_triggered": False, "support_notified": False,
        "in_maintenance_window": False, "queue_length": n % 7 if n % 3 == 0 else None,
        "api_host": f"{7100 + n % 4}.api.greenapi.com",
    } for n in range(first, first + count)]
    return json.dumps(rows)


def replay(url: str, insert: str, instances: int, per_shard: int, runs: int, start: datetime, tag: str) -> list[float]:
    """``runs`` runs 5 minutes apart; returns each run's time spent in its shards' statements."""
    took = []
    with psycopg.connect(url, autocommit=True) as conn:
        for run in range(runs):
            at = start + timedelta(minutes=5 * run)
            shards = [shard_rows(f"{tag}{run}", at, first, min(per_shard, instances - first))
                      for first in range(0, instances, per_shard)]  # fmt: skip
            spent = 0.0
            for data in shards:
                began = time.perf_counter()
                with conn.transaction():
                    if insert is not OLD_INSERT:
                        conn.execute(LOCK_RUNS, (data,))
                    conn.execute(insert, (data,))
                spent += time.perf_counter() - began
            took.append(spent)
    return took


def scratch(server: str, versions_up_to: str) -> str:
    name = f"green_api_bench_write_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    folder = Path(tempfile.mkdtemp(prefix="migrations-"))
    for m in migrate.discover():
        if m.version <= versions_up_to:
            shutil.copy(m.path, folder / m.path.name)
    migrate.apply(f"{server}/{name}", folder)
    shutil.rmtree(folder)
    return f"{server}/{name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("GREEN_API_DB_URL"), help="a database on the server to use")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--per-shard", type=int, default=250)
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args()
    if not args.db_url:
        parser.error("give --db-url or set GREEN_API_DB_URL")
    server = args.db_url.rsplit("/", 1)[0]
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    shards = -(-args.instances // args.per_shard)
    print(f"logging {args.runs} runs of {args.instances:,} instances ({shards} statements of {args.per_shard} a run)")
    print(f"{'schema':34} {'triggers':>9} {'per run, median':>16} {'triggers cost':>14}")
    for label, version, insert in (("before issue 25 (recount)", "011", OLD_INSERT),
                                   ("partitioned, aggregates added", "999", INSERT_LOGS)):
        url = scratch(server, version)
        try:
            with_triggers = replay(url, insert, args.instances, args.per_shard, args.runs, start, "with_")
            with psycopg.connect(url, autocommit=True) as conn:
                for trigger in TRIGGERS:
                    conn.execute(f"ALTER TABLE green_api_health_logs DISABLE TRIGGER {trigger}")
            without = replay(url, insert, args.instances, args.per_shard, args.runs, start, "without_")
        finally:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        on, off = statistics.median(with_triggers), statistics.median(without)
        print(f"{label:34} {'on':>9} {on * 1000:13,.0f} ms {(on - off) * 1000:11,.0f} ms")
        print(f"{'':34} {'off':>9} {off * 1000:13,.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

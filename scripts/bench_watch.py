"""What the state watch costs, under the real scheduler (`make bench-watch`).

`make run` as a user runs it (api-server, dag-processor, scheduler with the LocalExecutor,
triggerer) with Variable green_api_watch on, and a partner account of --instances instances in the
simulator (the watch follows the account, as the health check does), all of them healthy and
staying so: the health check runs on its 5-minute schedule beside the watch, as in production.
After the first scheduled run, for --minutes, it samples the triggerer's processes every
--sample-seconds (CPU as a share of one core, resident memory), then prints:

- the triggerer's CPU (mean, p95 of the samples, max) and memory (max RSS);
- the Green API calls made, by method, and the HTTP 429s among them (by method);
- the DAG runs started in the window, by kind (a watch that fires on nothing starts none);
- the watch's own record (green_api_state_watch): rounds, changes, and its last round's length.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from greenapi_simulator import GreenApiSimulator  # noqa: E402
from tests.airflow_services import wait_for  # noqa: E402
from tests.deployed.conftest import deployed, finished  # noqa: E402

SUPPORT = "33600000001@c.us"
FIRST = 1102000000
DAG_ID = "green_api_health_check"


def triggerer_processes(root: int) -> list[psutil.Process]:
    """The `airflow triggerer` processes under make run's process ``root``, with their children
    (the trigger runner's event loop runs in a child of the triggerer's supervisor)."""
    found = []
    for proc in psutil.Process(root).children(recursive=True):
        try:
            if "triggerer" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    tree = {p.pid: p for p in found}
    for proc in found:
        for child in proc.children(recursive=True):
            tree.setdefault(child.pid, child)
    return list(tree.values())


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def watch_record(health_url: str) -> list[tuple[object, ...]]:
    """The watch's row of green_api_state_watch (empty before its first round)."""
    with psycopg.connect(health_url) as conn:
        return conn.execute("SELECT watched, rounds, changes, rate_limited, round_ms, started_at"
                            " FROM green_api_state_watch").fetchall()  # fmt: skip


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--watch-seconds", type=float, default=20)
    parser.add_argument("--sample-seconds", type=float, default=10)
    parser.add_argument("--keep-log", type=Path, default=None, help="copy make run's output there at the end")
    args = parser.parse_args()
    ids = [str(FIRST + n) for n in range(1, args.instances + 1)]
    watch = json.dumps({"enabled": True, "watch_seconds": args.watch_seconds})
    with GreenApiSimulator() as sim, tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        with deployed(Path(tmp), sim, "watch_cost", "1102999001", "1102999009", SUPPORT, {}, partner=ids,
                      more_env=[f"AIRFLOW_VAR_GREEN_API_WATCH='{watch}'"]) as (deployment, _):  # fmt: skip
            print(f"== the state watch's cost: {args.instances} instances (a partner account) watched every "
                  f"{args.watch_seconds:g} s, the */5 health check beside it, {args.minutes:g} min", flush=True)
            wait_for(lambda: finished(deployment, DAG_ID, "scheduled"), 900, "the first scheduled check")
            wait_for(lambda: watch_record(deployment.health_url), 600, "the watch's first round")
            procs = triggerer_processes(deployment.proc.pid)
            if not procs:
                raise SystemExit("no triggerer process found under make run")
            began_wall = time.time()
            log = sim.requests_log()
            last_seq = log[-1]["seq"] if log else 0
            by_method: collections.Counter[str] = collections.Counter()
            limited: collections.Counter[str] = collections.Counter()
            last_cpu, last_at = cpu_seconds(procs), time.monotonic()
            shares, memory = [], []
            end = time.monotonic() + args.minutes * 60
            while time.monotonic() < end:
                time.sleep(args.sample_seconds)
                # The simulator keeps its last 100,000 requests: count the new ones at each sample.
                calls = [r for r in sim.requests_log() if r["seq"] > last_seq]
                if calls:
                    last_seq = calls[-1]["seq"]
                by_method.update(r["method"] for r in calls)
                limited.update(r["method"] for r in calls if r["status"] == 429)
                procs = triggerer_processes(deployment.proc.pid) or procs
                cpu, at = cpu_seconds(procs), time.monotonic()
                shares.append(100 * (cpu - last_cpu) / (at - last_at))
                memory.append(rss_mb(procs))
                last_cpu, last_at = cpu, at
            ended_wall = time.time()
            runs = deployment.rows(
                "SELECT run_type, state, count(*) FROM dag_run WHERE dag_id = %s AND queued_at >= to_timestamp(%s)"
                " AND queued_at < to_timestamp(%s) GROUP BY run_type, state ORDER BY 1, 2",
                DAG_ID, began_wall, ended_wall)  # fmt: skip
            record = watch_record(deployment.health_url)
            minutes = (ended_wall - began_wall) / 60
            print(f"window: {minutes:.1f} min, {len(shares)} samples of the triggerer ({len(procs)} process(es))")
            print(f"triggerer CPU (% of one core): mean {statistics.mean(shares):.1f}, p95 {p95(shares):.1f}, "
                  f"max {max(shares):.1f}")
            print(f"triggerer memory (RSS): max {max(memory):.0f} MB, last {memory[-1]:.0f} MB")
            print("Green API calls: " + ", ".join(f"{m} {n}" for m, n in by_method.most_common())
                  + f" ({sum(by_method.values()) / (minutes * 60):.1f}/s)")
            print("HTTP 429: " + (", ".join(f"{m} {n}" for m, n in limited.most_common()) or "0"))
            print("DAG runs started: " + (", ".join(f"{t} {s} {n}" for t, s, n in runs) or "none"))
            print(f"green_api_state_watch: {record}")
            if args.keep_log:
                args.keep_log.write_text(deployment.log.read_text(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The health-check DAG's check over many simulated instances in real runs (`make bench`).

Airflow's api-server, dag-processor and scheduler (LocalExecutor) run as in production, against
their own metadata database and the bench health database. The simulator has --instances
instances (as scripts/bench_check.py sets them up: 50 ms to 1 s, 2 % hanging past the timeout,
five in each failing state), each with its Airflow connection in the services' environment.

For each --per-task value, Variable ``green_api_settings`` gets ``instances_per_check_task`` and a
run is triggered. The check is the tasks plan_checks -> check_shard (mapped) -> check_instances;
its wall time is from plan_checks' start to check_instances' end, as the metadata database
records them ("calls from-to": the first and the last getStateInstance received by the simulator,
from that start). Once the check is over the hanging instances are made to answer, so the run's
reboot step finds them recovered and the next round starts sooner. Prints, per round: the check's
wall time, the mapped tasks' span and longest task, requests per second, the largest peak RSS of a
task process, and HTTP 429s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_check import configure, start_simulator  # noqa: E402

from tests.airflow_services import (  # noqa: E402
    DAG_ID,
    airflow,
    dag_known,
    fresh_metadata_db,
    run_state,
    running,
    service_env,
    wait_for,
)

METADATA_DB = "airflow_bench_run"
CHECK_TASKS = ("plan_checks", "check_shard", "check_instances")
SUPPORT_PHONE = "33600000001@c.us"


def task_rows(metadata_url: str, run_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(metadata_url) as conn:
        return conn.execute(
            "SELECT task_id, map_index, state, start_date, end_date, id::text FROM task_instance"
            " WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id),
        ).fetchall()  # fmt: skip


def xcom_sizes(metadata_url: str, run_id: str) -> dict[str, int]:
    """Bytes of XCom each task of the run wrote (its JSON text, mapped tasks summed), as Airflow stores it."""
    with psycopg.connect(metadata_url) as conn:
        rows = conn.execute(
            "SELECT task_id, sum(octet_length(value::text)) FROM xcom WHERE dag_id = %s AND run_id = %s"
            " GROUP BY task_id", (DAG_ID, run_id),
        ).fetchall()  # fmt: skip
    return {str(task): int(size or 0) for task, size in rows}


def task_peaks() -> dict[str, float]:
    """Peak RSS (MB) of each running task process, by task-instance id (its process title)."""
    peaks = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            if not title.startswith("airflow worker -- "):
                continue
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[title.removeprefix("airflow worker -- ")] = int(line.split()[1]) / 1024
    return peaks


def one_round(env: dict[str, str], metadata_url: str, url: str, hanging: list[str], per_task: int,
              timeout: float, concurrency: int, every_read: bool = False) -> dict[str, Any]:  # fmt: skip
    # The rounds come a minute or so apart: a 1-minute queue period makes each run read every
    # authorized instance's queue, as each run of the 5-minute schedule does with the default.
    settings = {"instances_per_check_task": per_task, "max_concurrency": concurrency,
                "send_backoff_seconds": 0.2, "reboot_poll_seconds": 2, "reboot_verify_minutes": 1,
                "queue_check_minutes": 1, **({"settings_check_minutes": 1} if every_read else {})}  # fmt: skip
    airflow(env, "variables", "set", "green_api_settings", json.dumps(settings))
    for instance_id in hanging:
        requests.patch(
            f"{url}/_sim/instances/{instance_id}",
            timeout=10,
            json={"faults": {"getStateInstance": {"mode": "hang", "seconds": timeout + 5}}},
        ).raise_for_status()
    requests.delete(f"{url}/_sim/requests", timeout=10)
    time.sleep(1.1)  # a fresh second for each instance's 1 request/s budget
    run_id = f"bench__{per_task}__{time.time_ns()}"
    airflow(env, "dags", "trigger", DAG_ID, "--run-id", run_id)
    peaks: dict[str, float] = {}

    def check_over() -> list[tuple[Any, ...]] | None:
        peaks.update(task_peaks())
        rows = task_rows(metadata_url, run_id)
        done = [
            r for r in rows if r[0] == "check_instances" and r[2] in ("success", "failed", "upstream_failed")
        ]
        return rows if done else None

    deadline = time.monotonic() + 600
    rows = None
    while rows is None and time.monotonic() < deadline:
        rows = check_over()
        time.sleep(0.2)
    if rows is None:
        raise SystemExit(f"run {run_id}: the check did not finish in 600 s")
    for instance_id in hanging:  # the rest of the run need not wait for them
        requests.patch(
            f"{url}/_sim/instances/{instance_id}", json={"faults": {}}, timeout=10
        ).raise_for_status()
    every = requests.get(f"{url}/_sim/requests", timeout=60).json()
    log = [r for r in every if r["method"] == "getStateInstance"]
    wait_for(lambda: run_state(metadata_url, run_id) in ("success", "failed"), 600, f"run {run_id} to finish")
    rows = task_rows(metadata_url, run_id)
    check = [r for r in rows if r[0] in CHECK_TASKS]
    shards = [r for r in check if r[0] == "check_shard"]
    failed = [f"{r[0]}[{r[1]}] {r[2]}" for r in check if r[2] != "success"]
    start = min(r[3] for r in check if r[0] == "plan_checks")
    end = max(r[4] for r in check if r[0] == "check_instances")
    shard_ids = {r[5] for r in shards}
    return {
        "per_task": per_task, "tasks": len(shards), "failed": failed,
        "check": (end - start).total_seconds(),
        "span": (max(r[4] for r in shards) - min(r[3] for r in shards)).total_seconds(),
        "longest": max((r[4] - r[3]).total_seconds() for r in shards),
        "peak_mb": max((mb for ti, mb in peaks.items() if ti in shard_ids), default=0.0),
        "first_call": min(r["at"] for r in log) - start.timestamp(),
        "last_call": max(r["at"] for r in log) - start.timestamp(),
        "requests": len(log), "too_many": sum(1 for r in every if r.get("status") == 429),
        "reads": {m: sum(1 for r in every if r["method"] == m) for m in READS},
        "run_state": run_state(metadata_url, run_id),
        "xcom": xcom_sizes(metadata_url, run_id),
    }  # fmt: skip


READS = ("getStatusInstance", "showMessagesQueue", "getSettings")  # what a check reads beyond the state


def kb(sizes: dict[str, int]) -> str:
    return f"{sum(sizes.values()) / 1000:.1f} KB"


def healthy_rounds(env: dict[str, str], metadata_url: str, url: str, instances: list[dict[str, Any]],
                   args: argparse.Namespace) -> None:  # fmt: skip
    """Every instance healthy: the XCom a run writes then (goal: at most 100 KB, O(problems)). The
    first run after the failing ones recover resolves their incidents; the next ones are steady."""
    session = requests.Session()
    for inst in instances:
        session.patch(f"{url}/_sim/instances/{inst['instance_id']}", json={"state": "authorized", "faults": {}},
                      timeout=10).raise_for_status()  # fmt: skip
    print(f"\nall {args.instances} instances healthy (250 per task): XCom written per run, by task")
    for n in range(3):
        result = one_round(env, metadata_url, url, [], 250, args.timeout, args.concurrency)
        tasks = ", ".join(f"{t} {b / 1000:.1f}" for t, b in sorted(result["xcom"].items(), key=lambda kv: -kv[1]))
        print(f"  run {n + 1}: {kb(result['xcom'])} in all ({tasks} KB); check {result['check']:.1f} s, "
              f"{result['run_state']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=10.0, help="state-check timeout (s)")
    parser.add_argument("--per-task", default="1000,250,100", help="instances_per_check_task values")
    parser.add_argument("--concurrency", type=int, default=256, help="max_concurrency")
    parser.add_argument("--rounds", type=int, default=3, help="runs per value (the median is reported)")
    parser.add_argument("--every-read", action="store_true",
                        help="every connection has expected_settings and every run reads them (an hourly run's case)")
    args = parser.parse_args()
    db_url = os.environ["GREEN_API_DB_URL"]
    base = os.environ["GREEN_API_AIRFLOW_DB_URL"]

    sim, url = start_simulator()
    try:
        expected = {"incomingWebhook": "yes", "delaySendMessagesMilliseconds": 500} if args.every_read else None
        conns, kinds = configure(url, args.instances, args.timeout, seed=7, expected_settings=expected)
        instances = requests.get(f"{url}/_sim/instances", timeout=30).json()
        hanging = [i["instance_id"] for i in instances if i.get("faults")]
        sender_id = "1299999999"  # outside the bench instances' range
        requests.put(
            f"{url}/_sim/instances/{sender_id}", json={"token": "bench-alert-token"}, timeout=10
        ).raise_for_status()
        conns["green_api_alerts"] = json.dumps({"conn_type": "green_api", "host": url, "login": sender_id,
                                                "password": "bench-alert-token"})  # fmt: skip
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM system_support_contacts WHERE full_name = 'bench support'")
            conn.execute("INSERT INTO system_support_contacts (full_name, phone_number, notification_priority, is_active)"
                         " VALUES ('bench support', %s, 1, true)", (SUPPORT_PHONE,))  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="bench-check-run-") as tmp:
            tmp_path = Path(tmp)
            metadata_url = fresh_metadata_db(METADATA_DB, base)
            ids = sorted(k for k in conns if k != "green_api_alerts")
            env = service_env(tmp_path, metadata_url, ids, AIRFLOW__CORE__EXECUTOR="LocalExecutor",
                              AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="5",  # Airflow's default
                              AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",  # only the triggered runs
                              **{f"AIRFLOW_CONN_{k.upper()}": v for k, v in conns.items()})  # fmt: skip
            env.pop("AIRFLOW_VAR_GREEN_API_SETTINGS", None)
            components = {
                "api-server": ["api-server"],
                "dag-processor": ["dag-processor"],
                "scheduler": ["scheduler"],
            }
            print(
                f"{args.instances} instances at {url}: {kinds['hanging']} hanging past the {args.timeout:g} s timeout; "
                f"real runs (LocalExecutor, parallelism 32), max_concurrency {args.concurrency}"
            )
            print(
                f"goal: the check tasks' span <= {1.25 * args.timeout:.1f} s (1.25 x timeout), peak RSS < 300 MB "
                "per task, no 429\n"
            )
            with running(env, tmp_path, components):
                wait_for(lambda: dag_known(env), 180, "the dag-processor to parse the DAG")
                airflow(env, "dags", "unpause", DAG_ID)
                print(
                    f"{'per task':>8} {'tasks':>5} {'check':>7} {'runs':>20} {'mapped span':>11} {'longest':>8} "
                    f"{'calls from-to':>13} {'req/s':>6} {'peak/task':>9} {'429s':>5} {'XCom':>8}  run"
                )
                for per_task in (int(v) for v in args.per_task.split(",")):
                    results = [one_round(env, metadata_url, url, hanging, per_task, args.timeout, args.concurrency,
                                         args.every_read) for _ in range(args.rounds)]  # fmt: skip
                    checks = [r["check"] for r in results]
                    mid = sorted(results, key=lambda r: r["check"])[len(results) // 2]
                    problems = sorted({p for r in results for p in r["failed"]})
                    print(
                        f"{per_task:8} {mid['tasks']:5} {statistics.median(checks):6.1f}s "
                        f"{', '.join(f'{c:.1f}' for c in checks):>20} {mid['span']:10.1f}s {mid['longest']:7.1f}s "
                        f"{mid['first_call']:5.1f}-{mid['last_call']:5.1f}s "
                        f"{args.instances / mid['check']:6.1f} {max(r['peak_mb'] for r in results):7.0f}MB "
                        f"{sum(r['too_many'] for r in results):5} {kb(mid['xcom']):>8}  "
                        f"{', '.join(sorted({r['run_state'] for r in results}))}"
                        + (f"  not success: {problems}" if problems else "")
                    )
                    spans = [r["span"] for r in results]
                    print(f"{'':14}check tasks' span, first start to last end: median {statistics.median(spans):.1f} s "
                          f"({', '.join(f'{s:.1f}' for s in spans)})")  # fmt: skip
                    print(f"{'':14}reads beyond the state, per run: "
                          + ", ".join(f"{m} {mid['reads'][m]}" for m in READS)
                          + "; 429s of any method: " + str(sum(r["too_many"] for r in results)))
                healthy_rounds(env, metadata_url, url, instances, args)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM system_support_contacts WHERE full_name = 'bench support'")
            bench_ids = (
                "instance_id LIKE '1200000___' OR instance_id = '1299999999'"  # bench_check.ID_BASE + i
            )
            for table in ("green_api_incidents", "green_api_health_logs", "green_api_instance_status"):
                conn.execute(f"DELETE FROM {table} WHERE {bench_ids}")  # noqa: S608 - constants only
    return 0


if __name__ == "__main__":
    sys.exit(main())

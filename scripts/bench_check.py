"""Throughput of the health check over many simulated instances (`make bench`).

Starts the simulator (its own process) with --instances instances: response times spread between
50 ms and 1 s, 2 % hanging past the state-check timeout, five in each failing state. Then, each in
a fresh process so that peak memory is its own:

- the check as the health-check shards run it (``check_instances`` of GreenApiHealthCheckOperator: the connections, the settings'
  ``max_concurrency``, the hook with its per-instance pacing), for each --concurrency value;
- the baseline: a plain sequential loop of ``get_state_instance()`` over a sample of the same
  instances, extrapolated to all of them;

and writes the run's log rows to PostgreSQL as the log task does (one statement), counting the
transactions. Prints wall time, requests per second, peak RSS, HTTP 429s received.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

FAILING_STATES = ("notAuthorized", "blocked", "starting", "yellowCard", "sleepMode")
ID_BASE = 1_200_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "greenapi_simulator", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{url}/_sim/health", timeout=1).raise_for_status()
            return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("the simulator did not start")


def configure(url: str, count: int, timeout: float, seed: int, expected_settings: dict[str, Any] | None = None,
              ) -> tuple[dict[str, str], dict[str, int]]:  # fmt: skip
    """Instances and their Airflow connections (as AIRFLOW_CONN_* values); how many of each kind.
    ``expected_settings``: the extra of every connection (the simulator's defaults match it)."""
    rng = random.Random(seed)
    ids = list(range(count))
    rng.shuffle(ids)
    hanging = set(ids[: max(1, count * 2 // 100)])
    failing = {i: FAILING_STATES[n // 5] for n, i in enumerate(ids[len(hanging): len(hanging) + 5 * len(FAILING_STATES)])}
    conns, kinds = {}, {"hanging": len(hanging), **{s: 0 for s in FAILING_STATES}}
    session = requests.Session()
    for i in range(count):
        instance_id, token = str(ID_BASE + i), f"bench-token-{i:04d}"
        config: dict[str, Any] = {"token": token, "latency_ms": rng.randint(50, 1000)}
        if i in hanging:
            config["faults"] = {"getStateInstance": {"mode": "hang", "seconds": timeout + 5}}
        elif i in failing:
            config["state"] = failing[i]
            kinds[failing[i]] += 1
        session.put(f"{url}/_sim/instances/{instance_id}", json=config, timeout=10).raise_for_status()
        conns[f"green_api_bench_{i:04d}"] = json.dumps({
            "conn_type": "greenapi", "host": url, "login": instance_id, "password": token,
            "extra": {"state_timeout": timeout, **({"expected_settings": expected_settings} if expected_settings else {})},
        })
    return conns, kinds


def worker(mode: str, concurrency: int, sample: int) -> dict[str, Any]:
    """Runs in a fresh process with the connections in its environment."""
    conn_ids = sorted(k.removeprefix("AIRFLOW_CONN_").lower() for k in os.environ if k.startswith("AIRFLOW_CONN_GREEN_API_BENCH_"))
    from greenapi.domain.results import ApiResult
    from greenapi.domain.rules import classify_check
    from greenapi.hooks.green_api import open_hook
    from greenapi.operators.green_api import check_instances

    baseline_rss = rss_mb()
    conn_ids = conn_ids if mode == "check" else conn_ids[:sample]
    # Loading the connections is timed apart: Airflow masks each token as it loads it, and its
    # secrets masker recompiles one regex of all secrets per new secret (quadratic in their number).
    began = time.perf_counter()
    for conn_id in conn_ids:
        open_hook(conn_id)
    loading = time.perf_counter() - began
    began = time.perf_counter()
    if mode == "check":
        checks = [c.to_dict() for c in check_instances(conn_ids, concurrency).checks]
        results = [ApiResult.from_dict(c["result"]) for c in checks]
    else:
        results = [open_hook(conn_id).get_state_instance() for conn_id in conn_ids]
        checks = []
    wall = time.perf_counter() - began
    statuses: dict[str, int] = {}
    for result in results:
        status = classify_check(result).status.value
        statuses[status] = statuses.get(status, 0) + 1
    return {"wall": wall, "loading": loading, "checked": len(results), "peak_rss_mb": rss_mb(), "rss_before_mb": baseline_rss,
            "statuses": statuses, "checks": checks}


def write_rows(db_url: str, checks: list[dict[str, Any]]) -> tuple[float, int]:
    """The log task's write of one run's rows; returns (seconds, transactions it took)."""
    import psycopg

    from greenapi.store import HealthStore

    run = f"bench__{time.time_ns()}"
    rows = [{"checked_at": c["checked_at"], "status": "healthy", "instance_id": c["instance_id"],
             "connection_id": c["conn_id"], "dag_id": "green_api_bench", "run_id": run,
             "response_time_ms": c["result"].get("elapsed_ms")} for c in checks]
    os.environ["AIRFLOW_CONN_GREEN_API_DB"] = db_url
    with psycopg.connect(db_url, autocommit=True) as conn:
        def commits() -> int:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            return int(conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()[0])  # type: ignore[index]
        before = commits()
        began = time.perf_counter()
        HealthStore().insert_health_logs(rows)
        took = time.perf_counter() - began
        time.sleep(0.6)  # statistics are flushed every 500 ms
        after = commits()
        conn.execute("DELETE FROM green_api_health_logs WHERE run_id = %s", (run,))
    return took, after - before - 1  # the probe's own transaction


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=10.0, help="state-check timeout (s), the extra state_timeout")
    parser.add_argument("--concurrency", default="32,128,256,1000", help="max_concurrency values to measure")
    parser.add_argument("--baseline-sample", type=int, default=100, help="instances in the sequential baseline")
    parser.add_argument("--db-url", default=os.environ.get("GREEN_API_DB_URL"))
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "CONCURRENCY", "SAMPLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, concurrency, sample = args.worker
        print(json.dumps(worker(mode, int(concurrency), int(sample))))
        return 0

    sim, url = start_simulator()
    try:
        conns, kinds = configure(url, args.instances, args.timeout, seed=7)
        env = {**os.environ, **{f"AIRFLOW_CONN_{k.upper()}": v for k, v in conns.items()}}
        print(f"{args.instances} instances at {url}: latency 50-1000 ms, {kinds['hanging']} hanging past the "
              f"{args.timeout:g} s timeout, " + ", ".join(f"{kinds[s]} {s}" for s in FAILING_STATES))
        print(f"goal: check wall time <= {1.25 * args.timeout:.1f} s (1.25 x timeout), peak RSS < 300 MB, no 429\n")
        print(f"{'run':44} {'connections':>11} {'check':>7} {'req/s':>6} {'RSS before':>10} {'peak':>6} {'429s':>5}  statuses")
        last_checks: list[dict[str, Any]] = []
        runs = [("check", int(c)) for c in args.concurrency.split(",")] + [("sequential", 1)]
        for mode, concurrency in runs:
            requests.delete(f"{url}/_sim/requests", timeout=10)
            time.sleep(1.1)  # a fresh second for each instance's 1 request/s budget
            done = subprocess.run([sys.executable, __file__, "--worker", mode, str(concurrency), str(args.baseline_sample)],
                                  env=env, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            log = requests.get(f"{url}/_sim/requests", params={"method": "getStateInstance"}, timeout=30).json()
            too_many = sum(1 for r in log if r.get("status") == 429)
            scale = args.instances / result["checked"]
            if mode == "check":
                label = f"check_instances, max_concurrency {concurrency}"
                last_checks = result["checks"]
            else:
                label = f"sequential, {result['checked']} measured, x{scale:g}"
            wall = result["wall"] * scale
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(result["statuses"].items()))
            print(f"{label:44} {result['loading']:10.1f}s {wall:6.1f}s {args.instances / wall:6.1f} "
                  f"{result['rss_before_mb']:8.0f}MB {result['peak_rss_mb']:4.0f}MB {too_many:5}  {statuses}")
        if args.db_url and last_checks:
            took, transactions = write_rows(args.db_url, last_checks)
            print(f"\nlog rows of the run: {len(last_checks)} rows written in {took * 1000:.0f} ms, "
                  f"{transactions} transaction(s), one INSERT statement")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())

"""Dashboard latency over real HTTP on generated history (`make bench-dashboard`: 100 instances x 30 days).

Fills the bench health database with scripts/generate_history.py (unless it already holds fresh
history of that size), serves Airflow's API server app (the plugin mounted, the simple auth
manager logging in a viewer) with uvicorn on a free port, then times each dashboard endpoint:
3 warm-up requests, then --requests timed ones. Prints median and p95 per endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_history import generate  # noqa: E402

GOAL_MS = 100.0
USER, PASSWORD = "bench", "bench-" + os.urandom(6).hex()


def history_is_fresh(url: str, instances: int, days: int) -> bool:
    with psycopg.connect(url) as conn:
        count, newest = conn.execute(
            "SELECT count(*), max(checked_at) > now() - interval '15 minutes' FROM green_api_health_logs"
            " WHERE connection_id LIKE 'green_api_gen_%'"
        ).fetchone()  # type: ignore[misc]
    return bool(newest) and count >= instances * days * 288


def serve() -> str:
    folder = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    (folder / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
    os.environ |= {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(folder / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(32).hex(),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",  # no access-log line per timed request
    }
    import uvicorn
    from airflow.api_fastapi.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(apps="core"), host="127.0.0.1", port=port, log_level="warning",
                                          access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the API server did not start within 60 s")
        time.sleep(0.1)
    return f"http://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("GREEN_API_DB_URL"))
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--reuse-history", action="store_true",
                        help="time the history already in the bench database, however old (it takes minutes to make)")
    parser.add_argument("--retention", action="store_true",
                        help="then measure disk per day and drop the oldest day (the history is made anew next time)")
    args = parser.parse_args()
    if not args.db_url:
        parser.error("give --db-url or set GREEN_API_DB_URL (make bench-dashboard does)")
    os.environ["AIRFLOW_CONN_GREEN_API_DB"] = args.db_url

    if args.reuse_history or history_is_fresh(args.db_url, args.instances, args.days):
        print("history: reusing the history already in the bench database")
    else:
        began = time.perf_counter()
        counts = generate(args.db_url, args.instances, args.days)
        print(f"history: {counts['checks']:,} checks, {counts['incidents']:,} incidents, "
              f"{counts['deliveries']:,} deliveries generated in {time.perf_counter() - began:.1f} s")
    with psycopg.connect(args.db_url) as conn:
        total = conn.execute("SELECT count(*) FROM green_api_health_logs").fetchone()[0]  # type: ignore[index]
        some_id = conn.execute("SELECT max(id) - 5000 FROM green_api_health_logs").fetchone()[0]  # type: ignore[index]

    base = serve()
    session = requests.Session()
    login = session.post(f"{base}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30)
    login.raise_for_status()
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    instance = "77000000042"
    endpoints = [
        "/green-api/",
        "/green-api/?status=unhealthy&page=5",
        f"/green-api/?instance={instance}",
        "/green-api/?q=00042&fleet_status=problem",
        "/green-api/?fleet_page=20",
        "/green-api/api/instances",
        "/green-api/api/instances?offset=5000",
        "/green-api/api/instances?status=problem&host=7104.api.greenapi.com",
        "/green-api/api/incidents",
        "/green-api/api/summary",
        "/green-api/api/queue",
        "/green-api/charts/queue.svg",
        "/green-api/api/series?window=24h",
        "/green-api/api/series?window=30d",
        f"/green-api/api/series?window=30d&instance={instance}",
        "/green-api/charts/24h.svg",
        "/green-api/charts/30d.svg",
        "/green-api/api/checks",
        "/green-api/api/checks?status=critical_failure&page=3",
        f"/green-api/api/checks?instance={instance}&page=10",
        f"/green-api/api/checks/{some_id}",
        "/green-api/api/schedule",
    ]
    print(f"\n{total:,} rows in green_api_health_logs; {args.requests} timed requests per endpoint over HTTP\n")
    print(f"{'endpoint':58} {'median':>9} {'p95':>9} {'bytes':>9}")
    worst = 0.0
    for path in endpoints:
        for _ in range(3):
            session.get(base + path, timeout=30).raise_for_status()
        times = []
        for _ in range(args.requests):
            began = time.perf_counter()
            response = session.get(base + path, timeout=30)
            times.append((time.perf_counter() - began) * 1000)
            response.raise_for_status()
        median = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[18]
        worst = max(worst, median)
        print(f"{path:58} {median:7.1f} ms {p95:6.1f} ms {len(response.content):9,}")
    verdict = "met" if worst < GOAL_MS else "MISSED"
    print(f"\nslowest median {worst:.1f} ms: goal (every median under {GOAL_MS:.0f} ms) {verdict}")
    if args.retention:
        disk_and_retention(args.db_url)
    return 0


def disk_and_retention(url: str) -> None:
    """Disk per day (a whole day's partition with its indexes, and the aggregates per day), then the
    retention of the oldest whole day, timed as the maintenance DAG runs it (the day is gone after)."""
    with psycopg.connect(url, autocommit=True) as conn:
        parts = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid), c.reltuples::bigint"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'green_api_health_logs'::regclass AND c.relname ~ '[0-9]{8}$'"
            "   AND c.reltuples > 0 ORDER BY c.relname").fetchall()
        if len(parts) < 3:
            print("retention: fewer than 3 days of partitions, not measured")
            return
        whole = parts[1:-1]  # the first and the last days are partial
        name, total, indexes, rows = max(whole, key=lambda p: p[3])
        agg = sum(conn.execute(f"SELECT pg_total_relation_size('{t}')").fetchone()[0]  # noqa: S608 - fixed names
                  for t in ("green_api_check_hourly", "green_api_check_daily", "green_api_check_hourly_all",
                            "green_api_check_5min_all"))
        print(f"\ndisk for one day ({name}, {rows:,} rows): {total / 2**20:,.0f} MiB with its indexes "
              f"({indexes / 2**20:,.0f} MiB of indexes); the aggregates: {agg / len(parts) / 2**20:,.1f} MiB per day")
        oldest = parts[0][0]
        day_end = conn.execute("SELECT to_date(right(%s, 8), 'YYYYMMDD') + 1", (oldest,)).fetchone()[0]
        began = time.perf_counter()
        dropped = conn.execute("SELECT partitions, rows FROM green_api_drop_health_logs_before(%s::date)",
                               (day_end,)).fetchone()
        took = time.perf_counter() - began
        print(f"retention: {dropped[0]} day(s), {dropped[1]:,} rows, dropped in {took * 1000:,.0f} ms "
              f"(goal: one day of 10,000 instances, 2.88 million rows, under 1 s)")


if __name__ == "__main__":
    sys.exit(main())

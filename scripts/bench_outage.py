"""A fleet failing together, in real runs (`make bench-alert`): what one outage costs support.

Airflow's api-server, dag-processor, scheduler (LocalExecutor) and triggerer run as in production,
against their own metadata database and the bench health database. The simulator has --instances
instances on one host (50 ms to 1 s each), all healthy, and two support contacts. Runs, triggered:

1. all healthy (each instance's history starts);
2. --failing of them stop answering at once (they hang past the state timeout);
3. the same again (the outage goes on);
4. all answer again.

For each run it prints the time from the run's start to the first message delivered at the
simulator, the messages each contact received, and the reboot calls made.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

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

METADATA_DB = "airflow_bench_outage"
CONTACTS = {"33600000001@c.us": 1, "33600000002@c.us": 2}


def run_start(metadata_url: str, run_id: str) -> datetime:
    with psycopg.connect(metadata_url) as conn:
        row = conn.execute("SELECT start_date FROM dag_run WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id)).fetchone()
    assert row is not None and row[0] is not None
    return row[0]  # type: ignore[no-any-return]


def one_run(env: dict[str, str], metadata_url: str, url: str, what: str) -> None:
    messages_before = len(requests.get(f"{url}/_sim/messages", timeout=30).json())
    reboots_before = len(requests.get(f"{url}/_sim/reboots", timeout=30).json())
    run_id = f"bench_outage__{time.time_ns()}"
    airflow(env, "dags", "trigger", DAG_ID, "--run-id", run_id)
    wait_for(lambda: run_state(metadata_url, run_id) in ("success", "failed"), 900, f"run {run_id} to finish")
    started = run_start(metadata_url, run_id).timestamp()
    messages = requests.get(f"{url}/_sim/messages", timeout=30).json()[messages_before:]
    reboots = len(requests.get(f"{url}/_sim/reboots", timeout=30).json()) - reboots_before
    per_contact = {chat: sum(1 for m in messages if m["chatId"] == chat) for chat in CONTACTS}
    first = f"{min(m['at'] for m in messages) - started:.1f} s" if messages else "-"
    with psycopg.connect(metadata_url) as conn:
        [(ended,)] = conn.execute("SELECT end_date FROM dag_run WHERE run_id = %s", (run_id,)).fetchall()
    print(f"{what:<40} {run_state(metadata_url, run_id):>7} {ended.timestamp() - started:7.1f} s {first:>9} "
          f"{', '.join(str(n) for n in per_contact.values()):>10} {reboots:>7}")  # fmt: skip
    for m in messages:
        lines = m["message"].splitlines()
        head = next((line for line in lines if "*" in line and not any(w in line for w in ("GREEN API", "CRITI"))), "")
        print(f"{'':42}-> {m['chatId']}: {head[:90]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--failing", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=5.0, help="state-check timeout (s)")
    args = parser.parse_args()
    db_url = os.environ["GREEN_API_DB_URL"]
    base = os.environ["GREEN_API_AIRFLOW_DB_URL"]
    sim, url = start_simulator()
    try:
        conns, _ = configure(url, args.instances, args.timeout, seed=7)
        session = requests.Session()
        ids = sorted(i["instance_id"] for i in session.get(f"{url}/_sim/instances", timeout=30).json())
        for instance_id in ids:  # all healthy to start with
            session.patch(f"{url}/_sim/instances/{instance_id}", json={"state": "authorized", "faults": {}},
                          timeout=10).raise_for_status()  # fmt: skip
        sender_id = "1299999999"
        session.put(f"{url}/_sim/instances/{sender_id}", json={"token": "bench-alert-token"}, timeout=10)
        conns["green_api_alerts"] = json.dumps({"conn_type": "greenapi", "host": url, "login": sender_id,
                                                "password": "bench-alert-token"})  # fmt: skip
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("TRUNCATE green_api_health_logs, green_api_alert_deliveries, green_api_incidents,"
                         " green_api_instance_status RESTART IDENTITY")  # fmt: skip
            conn.execute("DELETE FROM system_support_contacts WHERE full_name LIKE 'bench support%'")
            for n, (phone, level) in enumerate(CONTACTS.items()):
                conn.execute("INSERT INTO system_support_contacts (full_name, phone_number, notification_priority)"
                             " VALUES (%s, %s, %s)", (f"bench support {n}", phone, level))  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
            tmp_path = Path(tmp)
            metadata_url = fresh_metadata_db(METADATA_DB, base)
            env = service_env(tmp_path, metadata_url, sorted(k for k in conns if k != "green_api_alerts"),
                              AIRFLOW__CORE__EXECUTOR="LocalExecutor", AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
                              **{f"AIRFLOW_CONN_{k.upper()}": v for k, v in conns.items()})  # fmt: skip
            env["AIRFLOW_VAR_GREEN_API_SETTINGS"] = json.dumps({"send_backoff_seconds": 0.2, "reboot_poll_seconds": 2,
                                                                "reboot_verify_minutes": 1})  # fmt: skip
            components = {name: [name] for name in ("api-server", "dag-processor", "scheduler", "triggerer")}
            print(f"{args.instances} instances on one host ({url}), {args.failing} of them stop answering; "
                  "real runs (LocalExecutor), default outage and grouping settings\n")  # fmt: skip
            with running(env, tmp_path, components):
                wait_for(lambda: dag_known(env), 180, "the dag-processor to parse the DAG")
                airflow(env, "dags", "unpause", DAG_ID)
                print(f"{'run':<40} {'state':>7} {'length':>9} {'1st msg':>9} {'msgs L1,L2':>10} {'reboots':>7}")
                one_run(env, metadata_url, url, "1. all healthy")
                down = ids[: args.failing]
                for instance_id in down:
                    session.patch(f"{url}/_sim/instances/{instance_id}", timeout=10,
                                  json={"faults": {"getStateInstance": {"mode": "hang", "seconds": args.timeout + 5}}},
                                  ).raise_for_status()  # fmt: skip
                one_run(env, metadata_url, url, f"2. {args.failing} stop answering")
                one_run(env, metadata_url, url, "3. still down")
                for instance_id in down:
                    session.patch(f"{url}/_sim/instances/{instance_id}", json={"faults": {}},
                                  timeout=10).raise_for_status()  # fmt: skip
                one_run(env, metadata_url, url, "4. all answer again")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM system_support_contacts WHERE full_name LIKE 'bench support%'")
    return 0


if __name__ == "__main__":
    sys.exit(main())

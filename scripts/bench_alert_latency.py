"""Latency from a health-check run's start to the alert reaching the simulator, in a running
`make run` deployment in demo mode (`make bench-alert` while `make run` runs in another terminal).

Each round: the demo instance 1101000001 (connection green_api_default) is made `notAuthorized`
in the simulator, a run of green_api_health_check is triggered through Airflow's REST API, and the
time from the run's start (Airflow's start_date) to the WhatsApp alert arriving at the simulator
(its sendMessage record) is measured. Then the instance is made healthy again and a second run
resolves the incident, so that the next round opens a new one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "green_api_health_check"
INSTANCE = "1101000001"


class Deployment:
    def __init__(self, api: str, sim: str) -> None:
        self.api, self.sim = api.rstrip("/"), sim.rstrip("/")
        passwords = ROOT / ".airflow" / "simple_auth_manager_passwords.json.generated"
        try:
            requests.get(f"{self.sim}/_sim/health", timeout=3).raise_for_status()
            password = json.loads(passwords.read_text())["admin"]
        except (requests.RequestException, OSError) as exc:
            raise SystemExit(f"start `make run` (demo mode) first, then run this again ({exc})") from None
        token = requests.post(f"{self.api}/auth/token", json={"username": "admin", "password": password}, timeout=10)
        token.raise_for_status()
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def state(self, state: str) -> None:
        requests.patch(f"{self.sim}/_sim/instances/{INSTANCE}", json={"state": state}, timeout=10).raise_for_status()

    def trigger(self) -> str:
        response = self.http.post(f"{self.api}/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None}, timeout=30)
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.api}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def wait_finished(self, run_id: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(0.5)
        raise SystemExit(f"run {run_id} did not finish within {timeout:.0f} s")

    def alert_after(self, seq: int, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in requests.get(f"{self.sim}/_sim/messages", timeout=10).json():
                if message["seq"] > seq and f"Instance: {INSTANCE}" in message["message"] and "🚨" in message["message"]:
                    return dict(message)
            time.sleep(0.2)
        raise SystemExit(f"no alert about {INSTANCE} within {timeout:.0f} s")

    def last_seq(self) -> int:
        return max((r["seq"] for r in requests.get(f"{self.sim}/_sim/requests", timeout=10).json()), default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    parser.add_argument("--sim", default="http://127.0.0.1:8765")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    dep = Deployment(args.api, args.sim)
    dep.state("authorized")  # start from a resolved incident
    dep.wait_finished(dep.trigger())
    latencies, totals = [], []
    for n in range(1, args.rounds + 1):
        seq = dep.last_seq()
        dep.state("notAuthorized")
        asked = time.time()
        run_id = dep.trigger()
        alert = dep.alert_after(seq)
        run = dep.wait_finished(run_id)
        started = datetime.fromisoformat(run["start_date"].replace("Z", "+00:00")).timestamp()
        latencies.append(alert["at"] - started)
        totals.append(alert["at"] - asked)
        print(f"round {n}: run {run_id} {run['state']}: alert {latencies[-1]:.1f} s after the run started "
              f"({totals[-1]:.1f} s after the trigger request)")
        dep.state("authorized")
        dep.wait_finished(dep.trigger())  # resolves the incident
    print(f"\nmedian over {args.rounds} rounds: run start -> alert at the simulator {statistics.median(latencies):.1f} s "
          f"(goal under 20 s); trigger request -> alert {statistics.median(totals):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

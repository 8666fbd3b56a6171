"""Fault to first alert, under the real scheduler (`make bench-detect`).

`make run` as a user runs it (scripts/run.sh: api-server, dag-processor, scheduler with the
LocalExecutor, triggerer), with 100 simulated instances, one alerts sender and one support contact,
on a database of its own. Each trial waits a random time (up to --max-delay seconds), turns one
random healthy instance `notAuthorized` (or silent: --fault hang) in the simulator, and records
when the first alert naming it reached the simulator's message log. The instance stays failing
(its incident open): every trial takes a fresh one.

--mode watch: Variable green_api_watch on (--watch-seconds), the health check runs on its schedule
or on a change; --mode schedule: the 5-minute schedule alone (today's figure). Prints each
trial's latency, then the median, p95 and max.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from greenapi_simulator import GreenApiSimulator  # noqa: E402
from tests.airflow_services import wait_for  # noqa: E402
from tests.deployed.conftest import deployed, finished  # noqa: E402

SUPPORT = "33600000001@c.us"
FIRST = 1101880001


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("watch", "schedule"), default="watch")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--watch-seconds", type=float, default=20)
    parser.add_argument("--max-delay", type=float, default=None, help="default: 60 s (watch), 300 s (schedule)")
    parser.add_argument("--fault", choices=("notAuthorized", "hang"), default="notAuthorized")
    parser.add_argument("--seed", type=int, default=27)
    args = parser.parse_args()
    max_delay = args.max_delay if args.max_delay is not None else (60.0 if args.mode == "watch" else 300.0)
    rng = random.Random(args.seed)
    ids = [str(FIRST + n) for n in range(1, args.instances)]  # FIRST is green_api_default
    with GreenApiSimulator() as sim, tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        tokens = {i: f"TOKEN-SECRET-{rng.getrandbits(64):016x}" for i in ids}
        env = [f"AIRFLOW_CONN_GREEN_API_{i}='" + json.dumps({"conn_type": "greenapi", "host": sim.url, "login": i,
               "password": tokens[i], "extra": {"state_timeout": 5}}) + "'" for i in ids]  # fmt: skip
        for i in ids:
            sim.add_instance(i, tokens[i])
        listed = ["green_api_default", *(f"green_api_{i}" for i in ids)]
        env.append(f"AIRFLOW_VAR_GREEN_API_INSTANCES='{json.dumps(listed)}'")
        if args.mode == "watch":
            env.append(f"AIRFLOW_VAR_GREEN_API_WATCH='{json.dumps({'enabled': True, 'watch_seconds': args.watch_seconds})}'")
        with deployed(Path(tmp), sim, f"detect_{args.mode}", str(FIRST), "1101880999", SUPPORT, {},
                      more_env=env) as (deployment, _):  # fmt: skip
            print(f"== fault -> first alert, {args.mode} ({args.instances} instances"
                  + (f", watch every {args.watch_seconds:g} s" if args.mode == "watch" else ", */5 schedule")
                  + f"), {args.trials} trials, fault {args.fault}, random wait up to {max_delay:g} s", flush=True)
            wait_for(lambda: finished(deployment, "green_api_health_check", "scheduled"), 600, "the first check")
            latencies: list[float] = []
            healthy = list(ids)
            for trial in range(1, args.trials + 1):
                time.sleep(rng.uniform(0, max_delay))
                victim = healthy.pop(rng.randrange(len(healthy)))
                fault = {"state": "notAuthorized"} if args.fault == "notAuthorized" else {
                    "faults": {"*": {"mode": "hang", "seconds": 3600}}}
                sim.configure(victim, **fault)
                began = time.time()
                while True:
                    alert = next((m for m in sim.messages() if m["chatId"] == SUPPORT and victim in m["message"]), None)
                    if alert is not None:
                        break
                    if time.time() - began > 900:
                        raise SystemExit(f"trial {trial}: no alert about {victim} within 15 minutes")
                    time.sleep(0.2)
                latencies.append(alert["at"] - began)
                print(f"trial {trial:2d}: {victim} -> alert in {latencies[-1]:6.1f} s", flush=True)
            print(f"\n{args.mode}: median {statistics.median(latencies):.1f} s, p95 {p95(latencies):.1f} s, "
                  f"max {max(latencies):.1f} s over {len(latencies)} trials")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Parse time of each DAG file (Airflow's DagBag timings), median of several parses.

Run with the test environment (`. scripts/env.sh test`):  python scripts/bench_parse.py [--rounds 15]
Shows the cost of reading Variable green_api_reboot_schedule at parse time: from the environment
(AIRFLOW_VAR_...), from Airflow's metadata database, and with no value (default schedule).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

DAGS = Path(__file__).resolve().parents[1] / "dags"
VARIABLE = "green_api_reboot_schedule"
VALUE = '{"time": "03:00", "timezone": "Europe/Paris", "enabled": true}'


def parse_times(rounds: int) -> dict[str, float]:
    from airflow.dag_processing.dagbag import DagBag

    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        for path in sorted(DAGS.glob("*.py")):
            bag = DagBag(dag_folder=str(path))
            assert not bag.import_errors, bag.import_errors
            for stat in bag.dagbag_stats:
                samples.setdefault(path.name, []).append(stat.duration.total_seconds() * 1000)
        started = time.perf_counter()
        DagBag(dag_folder=str(DAGS))
        samples.setdefault("(whole folder)", []).append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


COLD = """
import time, sys
import airflow.sdk  # the dag-processor has Airflow imported before it parses a file:
from airflow.dag_processing.dagbag import DagBag
import airflow.dag_processing.processor  # its parsing processes are forked from this module's supervisor
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print((time.perf_counter() - started) * 1000)
"""


BARE = """
import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def bare():
    @task
    def one() -> int:
        return 1

    @task
    def two(x: int) -> int:
        return x

    @task
    def three(x: int) -> None:
        print(x)

    three(two(one()))


bare()
"""


def cold_times(rounds: int) -> dict[str, float]:
    """A fresh process per parse: this package's own imports are paid every time. Also the whole
    folder, and a bare three-task DAG (what any DAG costs) to tell this package's share."""
    import subprocess
    import sys
    import tempfile

    bare = Path(tempfile.mkdtemp()) / "bare_dag.py"
    bare.write_text(BARE)
    out = {}
    for path in [*sorted(DAGS.glob("*.py")), DAGS, bare]:
        values = []
        for _ in range(rounds):
            done = subprocess.run([sys.executable, "-c", COLD, str(path)], capture_output=True, text=True, check=True)
            values.append(float(done.stdout.strip().splitlines()[-1]))
        out["(whole folder)" if path == DAGS else path.name] = statistics.median(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    started = time.perf_counter()
    import airflow.sdk  # noqa: F401
    from airflow.models.variable import Variable

    print(f"import airflow.sdk: {(time.perf_counter() - started) * 1000:.0f} ms (once per process)")
    cases = {}
    os.environ.pop(f"AIRFLOW_VAR_{VARIABLE.upper()}", None)
    Variable.delete(VARIABLE)
    cases["no value (default)"] = parse_times(args.rounds)
    Variable.set(VARIABLE, VALUE)
    cases["metadata DB"] = parse_times(args.rounds)
    Variable.delete(VARIABLE)
    os.environ[f"AIRFLOW_VAR_{VARIABLE.upper()}"] = VALUE
    cases["environment"] = parse_times(args.rounds)
    cases["environment, fresh process"] = cold_times(max(3, args.rounds // 3))
    names = sorted(next(iter(cases.values())))
    print(f"\nmedian parse time (ms) over {args.rounds} rounds, {VARIABLE} read from:")
    print(f"{'file':34}" + "".join(f"{c:>28}" for c in cases))
    for name in [*names, "bare_dag.py"]:
        print(f"{name:34}" + "".join(f"{cases[c].get(name, float('nan')):>28.1f}" for c in cases))
    cold = cases["environment, fresh process"]
    print("\nadded by this package to a fresh parse (file minus the bare DAG): "
          + ", ".join(f"{n} {cold[n] - cold['bare_dag.py']:.0f} ms" for n in names if n != "(whole folder)")
          + "; goal under 200 ms")


if __name__ == "__main__":
    main()

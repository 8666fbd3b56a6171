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

Also per run: the whole run's wall time (dag_run start_date -> end_date), the XCom it wrote, what
the check tasks found (timeouts beyond the hanging instances are healthy ones the machine was too
busy to hear in time), and the CPU that each component used from the trigger to the run's end as
the bench sees it (CPU seconds of its process tree, exited children included, over that window,
as % of one core; "others" is the machine's busy time outside them). --executor celery runs
the tasks on --celery-workers ``airflow celery worker`` processes (Redis on 127.0.0.1:6379, a
queue of their own) instead of the scheduler's LocalExecutor.

Past about 5,400 instances the instance list no longer fits in one environment variable (Linux
refuses any exec whose environment holds a string over 128 KiB): it is then stored as Variable
``green_api_instances`` in the metadata database, where the tasks read it through the API server.
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

import psutil
import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_check import configure, start_simulator  # noqa: E402

from tests.airflow_services import (  # noqa: E402
    DAG_ID,
    airflow,
    celery_env,
    celery_worker,
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
INSTANCES_ENV = "AIRFLOW_VAR_GREEN_API_INSTANCES"
# Linux's limits on what exec() takes: one string of the environment (MAX_ARG_STRLEN), and all of
# the arguments and environment with their pointers (a quarter of the stack limit, ARG_MAX).
MAX_ARG_STRLEN = 32 * os.sysconf("SC_PAGE_SIZE")
ARG_MAX = os.sysconf("SC_ARG_MAX")


def exec_size(env: dict[str, str]) -> int:
    """Bytes an exec() of ``airflow <a few args>`` with ``env`` takes of ARG_MAX (strings, NULs, pointers)."""
    return sum(len(k.encode()) + len(v.encode()) + 2 + 8 for k, v in env.items()) + 4096


# ---- CPU: seconds used by a process tree, read from /proc (psutil)


def tree_cpu(pid: int, tree: bool = True) -> float:
    """CPU seconds (user + system) used so far by ``pid``, and with ``tree`` by all its descendants:
    the live ones' own, plus the children each of them has reaped (cutime/cstime). A process that
    exits while the tree is read moves its time to its parent's: the tree is read again then."""
    total = 0.0
    for _ in range(10):
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)] if tree else [root]
            total = 0.0
            for proc in procs:
                times = proc.cpu_times()
                total += times.user + times.system
                if tree:
                    total += times.children_user + times.children_system
            after = {p.pid for p in ([root, *root.children(recursive=True)] if tree else [root])}
        except psutil.NoSuchProcess:
            continue
        if after == {p.pid for p in procs}:
            return total
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (every core; /proc/stat, idle and iowait excluded)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def shared_servers() -> dict[str, int]:
    """PostgreSQL's postmaster and Redis on this machine (shared with whatever else runs here)."""
    found = {}
    for proc in psutil.process_iter(["name", "ppid"]):
        try:
            if proc.info["name"] == "postgres" and psutil.Process(proc.info["ppid"]).name() != "postgres":
                found["postgres"] = proc.pid
            elif proc.info["name"] == "redis-server":
                found["redis"] = proc.pid
        except psutil.Error:
            continue
    return found


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: each component's process tree, the scheduler's own process apart, this
    bench process (polling), PostgreSQL and Redis, and the whole machine."""
    snap = {name: tree_cpu(pid) for name, pid in pids.items()}
    if "scheduler" in pids:
        snap["scheduler (own)"] = tree_cpu(pids["scheduler"], tree=False)
    snap["bench"] = tree_cpu(os.getpid(), tree=False)
    snap |= {name: tree_cpu(pid) for name, pid in shared_servers().items()}
    snap["machine"] = machine_busy()
    return snap


def cpu_percent(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Each entry's CPU between two snapshots, as % of one core over ``seconds``; "others": the
    machine's busy time that none of the entries' processes used."""
    used = {name: 100 * (after[name] - before[name]) / seconds for name in before if name in after}
    used["others"] = used["machine"] - sum(v for k, v in used.items() if k not in ("machine", "scheduler (own)"))
    return used


def trigger(env: dict[str, str], run_id: str) -> None:
    """A run of the DAG through the REST API (the CLI would add seconds of its own start to the run's window)."""
    api = env["AIRFLOW__API__BASE_URL"]
    token = requests.get(f"{api}/auth/token", timeout=30).json()["access_token"]
    requests.post(f"{api}/api/v2/dags/{DAG_ID}/dagRuns", json={"dag_run_id": run_id, "logical_date": None},
                  headers={"Authorization": f"Bearer {token}"}, timeout=60).raise_for_status()  # fmt: skip


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


def run_times(metadata_url: str, run_id: str) -> tuple[Any, Any]:
    """The run's start_date and end_date, as the metadata database records them."""
    with psycopg.connect(metadata_url) as conn:
        row = conn.execute("SELECT start_date, end_date FROM dag_run WHERE dag_id = %s AND run_id = %s",
                           (DAG_ID, run_id)).fetchone()  # fmt: skip
    assert row is not None
    return row[0], row[1]


def shard_results(metadata_url: str, run_id: str) -> dict[str, int]:
    """What the check tasks found, from their XCom: the healthy instances they settled, and the
    other checks by result (a timeout; else the state answered). A healthy instance that timed out
    because the machine was too busy shows here as one timeout more than the instances made to hang."""
    with psycopg.connect(metadata_url) as conn:
        values = conn.execute("SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = 'check_shard'",
                              (DAG_ID, run_id)).fetchall()  # fmt: skip
    found = {"settled": 0}
    for (value,) in values:
        batch = json.loads(value) if isinstance(value, str) else value
        found["settled"] += int(batch.get("settled") or 0)
        for check in batch.get("checks") or []:
            result = check.get("result") or {}
            kind = result.get("kind") if result.get("kind") != "ok" else (result.get("data") or {}).get("stateInstance")
            found[str(kind)] = found.get(str(kind), 0) + 1
    return found


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


# How long a run may take before the bench gives up on it: the DAG's dagrun_timeout (15 minutes),
# after which Airflow fails the run itself, and a minute more.
RUN_DEADLINE = 16 * 60


def one_round(env: dict[str, str], metadata_url: str, url: str, hanging: list[str], per_task: int,
              timeout: float, concurrency: int, every_read: bool = False,
              pids: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
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
    cpu_before, cpu_from = cpu_snapshot(pids or {}), time.monotonic()
    trigger(env, run_id)
    peaks: dict[str, float] = {}

    def check_over() -> list[tuple[Any, ...]] | None:
        peaks.update(task_peaks())
        rows = task_rows(metadata_url, run_id)
        done = [
            r for r in rows if r[0] == "check_instances" and r[2] in ("success", "failed", "upstream_failed")
        ]
        return rows if done else None

    deadline = time.monotonic() + RUN_DEADLINE
    rows = None
    while rows is None and time.monotonic() < deadline:
        rows = check_over()
        time.sleep(0.2)
    if rows is None:
        raise SystemExit(f"run {run_id}: the check did not finish in {RUN_DEADLINE} s")
    for instance_id in hanging:  # the rest of the run need not wait for them
        requests.patch(
            f"{url}/_sim/instances/{instance_id}", json={"faults": {}}, timeout=10
        ).raise_for_status()
    every = requests.get(f"{url}/_sim/requests", timeout=60).json()
    log = [r for r in every if r["method"] == "getStateInstance"]
    while run_state(metadata_url, run_id) not in ("success", "failed"):
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id} did not finish in {RUN_DEADLINE} s")
        time.sleep(0.5)
    cpu_seconds = time.monotonic() - cpu_from
    cpu = cpu_percent(cpu_before, cpu_snapshot(pids or {}), cpu_seconds)
    run_start, run_end = run_times(metadata_url, run_id)
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
        "run": (run_end - run_start).total_seconds(), "cpu": cpu, "cpu_seconds": cpu_seconds,
        "load": os.getloadavg()[0], "statuses": shard_results(metadata_url, run_id),
    }  # fmt: skip


READS = ("getStatusInstance", "showMessagesQueue", "getSettings")  # what a check reads beyond the state


def kb(sizes: dict[str, int]) -> str:
    return f"{sum(sizes.values()) / 1000:.1f} KB"


def cpu_line(result: dict[str, Any]) -> str:
    """The run's CPU, % of one core from the trigger to the run's end (the machine: of all its cores)."""
    cpu = result["cpu"]
    workers = sorted(k for k in cpu if k.startswith("worker"))
    parts = [f"scheduler {cpu['scheduler (own)']:.0f} % (its tree {cpu['scheduler']:.0f} %)"]
    if workers:
        parts.append(f"workers {sum(cpu[w] for w in workers):.0f} % ("
                     + ", ".join(f"{cpu[w]:.0f}" for w in workers) + ")")  # fmt: skip
    parts += [f"api-server {cpu['api-server']:.0f} %", f"dag-processor {cpu['dag-processor']:.0f} %",
              f"simulator {cpu['simulator']:.0f} %", f"bench {cpu['bench']:.0f} %",
              *(f"{name} {cpu[name]:.0f} %" for name in ("postgres", "redis") if name in cpu),
              f"others {cpu['others']:.0f} %",
              f"machine {cpu['machine']:.0f} % of {100 * (os.cpu_count() or 1)} %"]  # fmt: skip
    return f"CPU over {result['cpu_seconds']:.0f} s: " + ", ".join(parts) + f"; load {result['load']:.1f}"


def statuses(result: dict[str, Any]) -> str:
    found = result["statuses"]
    return ", ".join(f"{kind} {found[kind]}" for kind in sorted(found, key=lambda k: -found[k]))


def round_line(n: int, result: dict[str, Any]) -> str:
    return (f"{'':14}run {n}: whole run {result['run']:.1f} s, check {result['check']:.1f} s, "
            f"check tasks' span {result['span']:.1f} s, longest task {result['longest']:.1f} s, "
            f"peak/task {result['peak_mb']:.0f} MB, 429s {result['too_many']}, XCom {kb(result['xcom'])}, "
            f"{result['run_state']}\n{'':20}check results: {statuses(result)}\n{'':20}{cpu_line(result)}")  # fmt: skip


def healthy_rounds(env: dict[str, str], metadata_url: str, url: str, instances: list[dict[str, Any]],
                   args: argparse.Namespace, pids: dict[str, int]) -> None:  # fmt: skip
    """Every instance healthy: the XCom a run writes then (goal: at most 100 KB, O(problems)). The
    first run after the failing ones recover resolves their incidents; the next ones are steady."""
    if not args.healthy_rounds:
        return
    session = requests.Session()
    for inst in instances:
        session.patch(f"{url}/_sim/instances/{inst['instance_id']}", json={"state": "authorized", "faults": {}},
                      timeout=10).raise_for_status()  # fmt: skip
    print(f"\nall {args.instances} instances healthy (250 per task): XCom written per run, by task")
    for n in range(args.healthy_rounds):
        result = one_round(env, metadata_url, url, [], 250, args.timeout, args.concurrency, pids=pids)
        tasks = ", ".join(f"{t} {b / 1000:.1f}" for t, b in sorted(result["xcom"].items(), key=lambda kv: -kv[1]))
        print(f"  run {n + 1}: {kb(result['xcom'])} in all ({tasks} KB); check {result['check']:.1f} s, "
              f"{result['run_state']}")
        print(f"{'':9}whole run {result['run']:.1f} s, check tasks' span {result['span']:.1f} s, "
              f"peak/task {result['peak_mb']:.0f} MB, 429s {result['too_many']}\n{'':9}check results: {statuses(result)}"
              f"\n{'':9}{cpu_line(result)}")


def api_up(env: dict[str, str]) -> bool:
    try:
        return requests.get(f"{env['AIRFLOW__API__BASE_URL']}/api/v2/monitor/health", timeout=5).ok
    except requests.RequestException:
        return False


def executor_settings(args: argparse.Namespace, metadata_url: str) -> tuple[dict[str, str], dict[str, list[str]], str]:
    """The services' environment for the executor, the worker commands, and how the runs are made."""
    if args.executor == "local":
        return {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}, {}, "LocalExecutor"
    try:
        env, queue = celery_env(metadata_url, "green_api_bench", "--executor celery")
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    # As tests/scale starts its worker; the workers' log servers are left off: they would all want
    # port 8793 (the task logs are files on this machine either way).
    workers = {f"worker-{n}": celery_worker(queue, f"bench-worker-{n}", args.celery_concurrency, "--skip-serve-logs")
               for n in range(1, args.celery_workers + 1)}  # fmt: skip
    how = (f"CeleryExecutor, {args.celery_workers} workers x concurrency {args.celery_concurrency} "
           f"(Redis broker, queue {queue})")
    return env, workers, how


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=10.0, help="state-check timeout (s)")
    parser.add_argument("--per-task", default="1000,250,100", help="instances_per_check_task values")
    parser.add_argument("--concurrency", type=int, default=256, help="max_concurrency")
    parser.add_argument("--rounds", type=int, default=3, help="runs per value (the median is reported)")
    parser.add_argument("--every-read", action="store_true",
                        help="every connection has expected_settings and every run reads them (an hourly run's case)")
    parser.add_argument("--healthy-rounds", type=int, default=3,
                        help="runs with every instance healthy, at the end (the steady state's XCom)")
    parser.add_argument("--executor", choices=("local", "celery"), default="local",
                        help="LocalExecutor in the scheduler, or CeleryExecutor with --celery-workers workers")
    parser.add_argument("--celery-workers", type=int, default=2, help="`airflow celery worker` processes (celery)")
    parser.add_argument("--celery-concurrency", type=int, default=8,
                        help="task slots per Celery worker; 8: two workers give the 16 tasks a DAG run may run at "
                             "once ([core] max_active_tasks_per_dag)")  # fmt: skip
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
        conns["green_api_alerts"] = json.dumps({"conn_type": "greenapi", "host": url, "login": sender_id,
                                                "password": "bench-alert-token"})  # fmt: skip
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM system_support_contacts WHERE full_name = 'bench support'")
            conn.execute("INSERT INTO system_support_contacts (full_name, phone_number, notification_priority, is_active)"
                         " VALUES ('bench support', %s, 1, true)", (SUPPORT_PHONE,))  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="bench-check-run-") as tmp:
            tmp_path = Path(tmp)
            metadata_url = fresh_metadata_db(METADATA_DB, base)
            ids = sorted(k for k in conns if k != "green_api_alerts")
            executor_env, workers, how = executor_settings(args, metadata_url)
            env = service_env(tmp_path, metadata_url, ids, **executor_env,
                              AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",  # the bench's REST trigger
                              AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="5",  # Airflow's default
                              AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",  # only the triggered runs
                              **{f"AIRFLOW_CONN_{k.upper()}": v for k, v in conns.items()})  # fmt: skip
            env.pop("AIRFLOW_VAR_GREEN_API_SETTINGS", None)
            # The instance list in the environment while it fits in one exec() string, else in the
            # metadata database (below): an exec with a longer string fails with E2BIG.
            listed = env[INSTANCES_ENV]
            in_env = len(INSTANCES_ENV) + 1 + len(listed.encode()) < MAX_ARG_STRLEN
            if not in_env:
                del env[INSTANCES_ENV]
            if exec_size(env) > ARG_MAX:
                raise SystemExit(f"the services' environment ({exec_size(env)} bytes with {len(conns)} connections) "
                                 f"does not fit in ARG_MAX ({ARG_MAX}): fewer --instances")  # fmt: skip
            components = {
                "api-server": ["api-server"],
                "dag-processor": ["dag-processor"],
                "scheduler": ["scheduler"],
                **workers,
            }
            limits = {key: airflow(env, "config", "get-value", "core", key).strip()
                      for key in ("parallelism", "max_active_tasks_per_dag")}  # fmt: skip
            print(
                f"{args.instances} instances at {url}: {kinds['hanging']} hanging past the {args.timeout:g} s timeout; "
                f"real runs ({how}; parallelism {limits['parallelism']}, max_active_tasks_per_dag "
                f"{limits['max_active_tasks_per_dag']}), max_concurrency {args.concurrency}"
            )
            print(f"connections in the services' environment ({exec_size(env) / 1e6:.2f} MB of the "
                  f"{ARG_MAX / 1e6:.2f} MB an exec takes); Variable green_api_instances "
                  + ("in the environment" if in_env else
                     f"in the metadata database ({len(listed) / 1000:.0f} KB: over the {MAX_ARG_STRLEN // 1024} KiB "
                     "of one environment string)"))  # fmt: skip
            print(
                f"goal: the check tasks' span <= {1.25 * args.timeout:.1f} s (1.25 x timeout), peak RSS < 300 MB "
                "per task, no 429\n"
            )
            with running(env, tmp_path, components) as pids:
                if not in_env:
                    variables = tmp_path / "variables.json"
                    variables.write_text(json.dumps({"green_api_instances": listed}))
                    airflow(env, "variables", "import", str(variables))
                pids = {**pids, "simulator": sim.pid}
                wait_for(lambda: dag_known(env), 180, "the dag-processor to parse the DAG")
                wait_for(lambda: api_up(env), 180, "the api-server")
                airflow(env, "dags", "unpause", DAG_ID)
                print(
                    f"{'per task':>8} {'tasks':>5} {'check':>7} {'runs':>20} {'mapped span':>11} {'longest':>8} "
                    f"{'calls from-to':>13} {'req/s':>6} {'peak/task':>9} {'429s':>5} {'XCom':>8}  run"
                )
                for per_task in (int(v) for v in args.per_task.split(",")):
                    results = [one_round(env, metadata_url, url, hanging, per_task, args.timeout, args.concurrency,
                                         args.every_read, pids) for _ in range(args.rounds)]  # fmt: skip
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
                    for n, result in enumerate(results, 1):
                        print(round_line(n, result))
                healthy_rounds(env, metadata_url, url, instances, args, pids)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM system_support_contacts WHERE full_name = 'bench support'")
            bench_ids = (
                "instance_id LIKE '120000____' OR instance_id = '1299999999'"  # bench_check.ID_BASE + i, i < 10,000
            )
            for table in ("green_api_incidents", "green_api_health_logs", "green_api_instance_status"):
                conn.execute(f"DELETE FROM {table} WHERE {bench_ids}")  # noqa: S608 - constants only
    return 0


if __name__ == "__main__":
    sys.exit(main())

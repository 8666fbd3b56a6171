"""Airflow's real services as subprocesses, for the tests that need a scheduler: a fresh metadata
database, the environment they share, starting and stopping them, and small CLI helpers."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import requests

from tests.conftest import require_env, tagged

VENV_BIN = Path(sys.executable).parent
DAG_ID = "green_api_health_check"
REDIS = ("127.0.0.1", 6379)


def celery_env(metadata_url: str, queue_prefix: str, needed_by: str) -> tuple[dict[str, str], str]:
    """The CeleryExecutor's settings (the Redis broker, results in the metadata database) and a
    queue of their own that no other worker listens to; Redis down is a RuntimeError naming
    ``needed_by``."""
    try:
        socket.create_connection(REDIS, timeout=3).close()
    except OSError as exc:
        raise RuntimeError(f"{needed_by} needs Redis on {REDIS[0]}:{REDIS[1]} ({exc})") from None
    queue = f"{queue_prefix}_{secrets.token_hex(4)}"
    return {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url, "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue}, queue


def celery_worker(queue: str, name: str, concurrency: int, *extra: str) -> list[str]:
    """The `airflow celery worker` arguments of a worker of ``queue`` only, named ``name``."""
    return ["celery", "worker", "--queues", queue, "--concurrency", str(concurrency), "--celery-hostname",
            f"{name}-{queue}@%h", "--without-mingle", "--without-gossip", *extra]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(VENV_BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def fresh_metadata_db(name: str, base: str | None = None) -> str:
    """A new, empty Airflow metadata database (on the server of ``base``, by default the test
    metadata database's): the DAGs have no past runs, as on a first start."""
    base = base or require_env("GREEN_API_AIRFLOW_DB_URL")
    name = tagged(name)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return base.rsplit("/", 1)[0] + "/" + name


def run_state(metadata_url: str, run_id: str, dag_id: str = DAG_ID) -> str | None:
    """A DAG run's state, as the metadata database has it (None before it exists)."""
    with psycopg.connect(metadata_url) as conn:
        row = conn.execute("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)).fetchone()
    return row[0] if row else None


def dag_known(env: dict[str, str], dag_id: str = DAG_ID) -> bool:
    return dag_id in subprocess.run([str(VENV_BIN / "airflow"), "dags", "list", "-o", "plain"], env=env,
                                    capture_output=True, text=True, timeout=120).stdout


def service_env(tmp_path: Path, metadata_url: str, instances: list[str], **extra: str) -> dict[str, str]:
    """The environment every component shares: its own API port, metadata database and log folder."""
    port = free_port()
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "logs"),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW_VAR_GREEN_API_INSTANCES": json.dumps(instances),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url.replace("postgresql://", "postgresql+psycopg2://"),
        **extra,
    }


@contextmanager
def running(env: dict[str, str], tmp_path: Path, commands: dict[str, list[str]]) -> Iterator[dict[str, int]]:
    """`airflow db migrate`, then each command (`airflow <args>`) in its own session, logging to
    ``tmp_path/<name>.log``; all stopped (SIGTERM, then SIGKILL) on exit. Yields each command's
    process id by name (the benchmarks measure their CPU)."""
    airflow(env, "db", "migrate")
    procs = []
    try:
        for name, args in commands.items():
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            procs.append((subprocess.Popen([str(VENV_BIN / "airflow"), *args], env=env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True), log))
        yield {name: proc.pid for name, (proc, _log) in zip(commands, procs, strict=True)}
    finally:
        for proc, _log in procs:
            os.killpg(proc.pid, 15)
        for proc, log in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
            log.close()


@contextmanager
def api_server(env: dict[str, str], folder: Path) -> Iterator[str]:
    """`airflow api-server` on a free port with ``env``; yields its URL once it answers."""
    port = free_port()
    env = {**env, "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}"}
    log_path = folder / "api-server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [str(VENV_BIN / "airflow"), "api-server", "--port", str(port), "--host", "127.0.0.1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"airflow api-server exited: {log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("airflow api-server did not answer within 90 s")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()

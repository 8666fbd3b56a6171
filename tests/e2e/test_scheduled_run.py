"""A real scheduled run: Airflow's scheduler, dag-processor, api-server and LocalExecutor.

The other end-to-end tests use ``dag.test()`` (a manual run, in-process). This one proves that the
schedule itself produces a run, that its rows say ``trigger_type = 'automatic'``, and that the
task log files the executor writes do not contain the token.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import require_env
from tests.e2e.conftest import log_rows

VENV_BIN = Path(sys.executable).parent
DAG_ID = "green_api_health_check"


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


@pytest.fixture
def airflow_services(tmp_path, make_instance, add_contact, sim):
    add_contact("Support", "33600000001@c.us", 1)
    healthy = make_instance("green_api_default", state="authorized")
    failing = make_instance("green_api_second", state="notAuthorized")
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "logs"),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW_VAR_GREEN_API_INSTANCES": json.dumps(["green_api_default", "green_api_second"]),
    }
    _pause(env)  # a run must come from this test's unpause, not from an earlier session
    procs = []
    for component in ("api-server", "dag-processor", "scheduler"):
        log = open(tmp_path / f"{component}.log", "w")  # noqa: SIM115 - closed with the process
        procs.append((subprocess.Popen([str(VENV_BIN / "airflow"), component], env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True), log))
    try:
        yield env, tmp_path, (healthy, failing)
    finally:
        for proc, _log in procs:
            proc.terminate()
        for proc, log in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        _pause(env)


def _dag_known(env) -> bool:
    return DAG_ID in subprocess.run([str(VENV_BIN / "airflow"), "dags", "list", "-o", "plain"], env=env,
                                    capture_output=True, text=True, timeout=120).stdout


def _pause(env) -> None:
    subprocess.run([str(VENV_BIN / "airflow"), "dags", "pause", DAG_ID], env=env, capture_output=True, timeout=120)


def scheduled_runs(since: float) -> list[tuple[str, str]]:
    with psycopg.connect(require_env("GREEN_API_PG_URL_AIRFLOW_TEST")) as conn:
        return conn.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND run_type = 'scheduled'"
            " AND queued_at >= to_timestamp(%s) ORDER BY queued_at", (DAG_ID, since),
        ).fetchall()


def test_the_schedule_runs_the_check_and_logs_automatic_rows(airflow_services, db, sim):
    env, tmp_path, (healthy, failing) = airflow_services
    started = time.time()
    wait_for(lambda: _dag_known(env), 90, "the dag-processor to parse the DAG")
    airflow(env, "dags", "unpause", DAG_ID)
    # catchup=False: unpausing creates the run of the latest 5-minute slot at once.
    runs = wait_for(
        lambda: [r for r in scheduled_runs(started) if r[1] in ("success", "failed")], 180, "a scheduled run to finish"
    )
    run_id, state = runs[0]
    assert state == "success", (tmp_path / "scheduler.log").read_text()[-3000:]
    rows = {r["instance_id"]: r for r in log_rows(db)}
    assert set(rows) == {healthy.instance_id, failing.instance_id}
    assert {r["trigger_type"] for r in rows.values()} == {"automatic"}
    assert {r["run_id"] for r in rows.values()} == {run_id}
    assert rows[failing.instance_id]["support_notified"] is True
    assert [m["chatId"] for m in sim.messages(failing.instance_id)] == ["33600000001@c.us"]
    logs = [p for p in (tmp_path / "logs").rglob("*") if p.is_file()]
    task_logs = [p for p in logs if "dag_id=" + DAG_ID in str(p)]
    assert len({p.parent.parent.name for p in task_logs}) >= 1 and task_logs  # the executor wrote task logs
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert healthy.instance_id in text  # the logs do describe the checks...
    for token in (healthy.token, failing.token):
        assert token not in text  # ...but never carry the token

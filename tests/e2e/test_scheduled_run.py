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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

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


SCHED_DB = "airflow_sched_test"


def fresh_metadata_db(name: str = SCHED_DB) -> str:
    """A new, empty Airflow metadata database: the DAGs have no past runs, as on a first start."""
    base = require_env("GREEN_API_PG_URL_AIRFLOW_TEST")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def airflow_services(tmp_path, make_instance, add_contact, sim):
    add_contact("Support", "33600000001@c.us", 1)
    healthy = make_instance("green_api_default", state="authorized")
    failing = make_instance("green_api_second", state="notAuthorized")
    make_instance("green_api_alerts")
    port = free_port()
    metadata_url = fresh_metadata_db()
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
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url.replace("postgresql://", "postgresql+psycopg2://"),
        "SCHED_METADATA_URL": metadata_url,
    }
    airflow(env, "db", "migrate")
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


def dag_known(env) -> bool:
    return DAG_ID in subprocess.run([str(VENV_BIN / "airflow"), "dags", "list", "-o", "plain"], env=env,
                                    capture_output=True, text=True, timeout=120).stdout


def scheduled_runs(env: dict[str, str]) -> list[tuple[str, str]]:
    with psycopg.connect(env["SCHED_METADATA_URL"]) as conn:
        return conn.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND run_type = 'scheduled' ORDER BY queued_at",
            (DAG_ID,),
        ).fetchall()


def test_the_schedule_runs_the_check_and_logs_automatic_rows(airflow_services, db, sim):
    env, tmp_path, (healthy, failing) = airflow_services
    wait_for(lambda: dag_known(env), 90, "the dag-processor to parse the DAG")
    airflow(env, "dags", "unpause", DAG_ID)
    # catchup=False and no past run: unpausing creates the run of the latest 5-minute slot at once.
    runs = wait_for(
        lambda: [r for r in scheduled_runs(env) if r[1] in ("success", "failed")], 180, "a scheduled run to finish"
    )
    run_id, state = runs[0]
    assert state == "success", (tmp_path / "scheduler.log").read_text()[-3000:]
    rows = {r["instance_id"]: r for r in log_rows(db)}
    assert set(rows) == {healthy.instance_id, failing.instance_id}
    assert {r["trigger_type"] for r in rows.values()} == {"automatic"}
    assert {r["run_id"] for r in rows.values()} == {run_id}
    assert rows[failing.instance_id]["support_notified"] is True
    assert [m["chatId"] for m in sim.messages()] == ["33600000001@c.us"]
    assert f"📱 Instance: {failing.instance_id}" in sim.messages()[0]["message"]
    logs = [p for p in (tmp_path / "logs").rglob("*") if p.is_file()]
    task_logs = [p for p in logs if "dag_id=" + DAG_ID in str(p)]
    assert len({p.parent.parent.name for p in task_logs}) >= 1 and task_logs  # the executor wrote task logs
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert healthy.instance_id in text  # the logs do describe the checks...
    for token in (healthy.token, failing.token):
        assert token not in text  # ...but never carry the token
    # The same dag-processor serialized the daily reboot's custom timetable (registered by the
    # plugin): the scheduler knows when the next reboot is, at 03:00 in Paris.
    next_at = wait_for(lambda: next_reboot(env), 60, "green_api_scheduled_reboot to be parsed")
    local = next_at.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (3, 0)
    assert timedelta(0) < next_at - datetime.now(UTC) <= timedelta(days=1, hours=1)


def next_reboot(env: dict[str, str]) -> datetime | None:
    with psycopg.connect(env["SCHED_METADATA_URL"]) as conn:
        row = conn.execute(
            "SELECT next_dagrun_create_after, last_parsed_time FROM dag WHERE dag_id = 'green_api_scheduled_reboot'"
        ).fetchone()
        errors = conn.execute("SELECT filename, stacktrace FROM import_error").fetchall()
    assert errors == [], errors
    return row[0] if row else None

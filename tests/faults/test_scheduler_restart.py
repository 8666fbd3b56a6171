"""Airflow's scheduler restarted while a health-check run is in flight (real services)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess

import psycopg
import pytest

from tests.airflow_services import (
    DAG_ID,
    VENV_BIN,
    airflow,
    dag_known,
    fresh_metadata_db,
    run_state,
    running,
    service_env,
    wait_for,
)
from tests.e2e.conftest import log_rows

pytestmark = pytest.mark.faults
RESTART_DB = "airflow_restart_test"


def start_scheduler(env: dict[str, str], log_path) -> subprocess.Popen[bytes]:
    log = open(log_path, "a")  # noqa: SIM115 - handed to the process
    return subprocess.Popen([str(VENV_BIN / "airflow"), "scheduler"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def task_states(metadata_url: str, run_id: str) -> dict[str, str | None]:
    with psycopg.connect(metadata_url) as conn:
        rows = conn.execute("SELECT task_id, state FROM task_instance WHERE dag_id = %s AND run_id = %s",
                            (DAG_ID, run_id)).fetchall()  # fmt: skip
    return dict(rows)


@pytest.mark.slow
def test_a_run_survives_a_scheduler_restart_in_the_middle_of_its_check(tmp_path, make_instance, add_contact, sim, db):
    add_contact("Support", "33600000001@c.us", 1)
    make_instance("green_api_alerts")
    # Answers after 6 s: the check is in flight long enough to restart the scheduler under it.
    slow = make_instance("green_api_default", faults={"getStateInstance": {"mode": "delay", "ms": 6000}},
                         extra={"state_timeout": 15})  # fmt: skip
    metadata_url = fresh_metadata_db(RESTART_DB)
    env = service_env(tmp_path, metadata_url, ["green_api_default"], AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False")
    with running(env, tmp_path, {"api-server": ["api-server"], "dag-processor": ["dag-processor"]}):
        scheduler = start_scheduler(env, tmp_path / "scheduler.log")
        try:
            wait_for(lambda: dag_known(env), 120, "the dag-processor to parse the DAG")
            run_id = "restart__" + secrets.token_hex(4)
            airflow(env, "dags", "unpause", DAG_ID)
            airflow(env, "dags", "trigger", DAG_ID, "--run-id", run_id)
            wait_for(lambda: sim.requests_log(slow.instance_id, "getStateInstance"), 120, "the check to call")
            assert task_states(metadata_url, run_id)["check_shard"] == "running"
            os.killpg(scheduler.pid, signal.SIGTERM)  # a restart: stop, then start again
            stopped = scheduler.wait(timeout=90)
            scheduler = start_scheduler(env, tmp_path / "scheduler.log")
            state = wait_for(lambda: run_state(metadata_url, run_id) in ("success", "failed")
                             and run_state(metadata_url, run_id), 240, "the run to finish")  # fmt: skip
        finally:
            os.killpg(scheduler.pid, signal.SIGTERM)
            try:
                scheduler.wait(timeout=90)
            except subprocess.TimeoutExpired:  # never leave a scheduler behind, whatever failed
                os.killpg(scheduler.pid, signal.SIGKILL)
                raise
    log = (tmp_path / "scheduler.log").read_text()
    assert stopped is not None and log.count("Starting the scheduler") == 2, log[-4000:]
    assert state == "success", log[-4000:]
    # The instance was checked once: the task in flight finished, nothing was lost or redone.
    assert len(sim.requests_log(slow.instance_id, "getStateInstance")) == 1
    assert set(task_states(metadata_url, run_id).values()) <= {"success", "skipped"}
    rows = [r for r in log_rows(db) if r["run_id"] == run_id]
    assert [(r["instance_id"], r["status"]) for r in rows] == [(slow.instance_id, "healthy")]

"""Scale-out for real (`make test-scale`): CeleryExecutor with Redis as the broker.

Airflow's api-server, dag-processor and scheduler, and one Celery worker listening on a queue of
its own, against Redis on 127.0.0.1:6379 and PostgreSQL. A triggered health-check run completes,
and every one of its tasks was sent to that queue and picked up by that worker.
"""

from __future__ import annotations

import re
import secrets

import psycopg
import pytest

from tests.airflow_services import (
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
from tests.e2e.conftest import log_rows

pytestmark = pytest.mark.scale
SCALE_DB = "airflow_scale_test"


@pytest.fixture
def celery_cluster(tmp_path, make_instance, add_contact, sim):
    add_contact("Support", "33600000001@c.us", 1)
    instances = (make_instance("green_api_default", state="authorized"),
                 make_instance("green_api_second", state="notAuthorized"))
    make_instance("green_api_alerts")
    metadata_url = fresh_metadata_db(SCALE_DB)
    celery, queue = celery_env(metadata_url, "green_api_scale", "make test-scale")
    env = service_env(tmp_path, metadata_url, ["green_api_default", "green_api_second"], **celery)
    components = {
        "api-server": ["api-server"],
        "dag-processor": ["dag-processor"],
        "scheduler": ["scheduler"],
        "worker": celery_worker(queue, "scale-worker", 4),
    }
    with running(env, tmp_path, components):
        yield env, metadata_url, queue, tmp_path, instances


def test_a_health_check_run_completes_on_the_celery_worker(celery_cluster, db, sim):
    env, metadata_url, queue, tmp_path, (healthy, failing) = celery_cluster
    wait_for(lambda: dag_known(env), 120, "the dag-processor to parse the DAG")
    run_id = "scale__" + secrets.token_hex(4)
    airflow(env, "dags", "trigger", DAG_ID, "--run-id", run_id)
    airflow(env, "dags", "unpause", DAG_ID)

    def finished():
        state = run_state(metadata_url, run_id)
        return state if state in ("success", "failed") else None

    state = wait_for(finished, 300, "the triggered run to finish")
    worker_log = (tmp_path / "worker.log").read_text()
    assert state == "success", worker_log[-3000:] + (tmp_path / "scheduler.log").read_text()[-3000:]

    with psycopg.connect(metadata_url) as conn:
        tasks = conn.execute(
            "SELECT task_id, state, queue, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run_id),
        ).fetchall()
    ran = [t for t in tasks if t[1] == "success"]
    assert {t[0] for t in ran} >= {"plan_checks", "check_shard", "check_instances", "send_alerts", "log_results", "report"}
    assert {t[2] for t in tasks} == {queue}  # sent to the worker's own queue...
    received = re.findall(r"Task \S*execute_workload\[[0-9a-f-]+\] received", worker_log)
    assert len(received) >= len(ran)  # ...and received by that worker, one Celery task per task run
    rows = {r["instance_id"]: r for r in log_rows(db) if r["run_id"] == run_id}
    assert set(rows) == {healthy.instance_id, failing.instance_id}
    assert rows[failing.instance_id]["status"] == "unhealthy"
    # Unpausing also queued the latest scheduled slot: whichever run saw the failure first alerted,
    # once; the incident keeps the other from alerting again.
    alerts = [m for m in sim.messages() if f"📱 Instance: {failing.instance_id}" in m["message"]]
    assert len(alerts) == 1
    assert any(r["support_notified"] for r in log_rows(db) if r["instance_id"] == failing.instance_id)

"""A real scheduled run: Airflow's scheduler, dag-processor, api-server and LocalExecutor.

The other end-to-end tests use ``dag.test()`` (a manual run, in-process). This one proves that the
schedule itself produces a run, that its rows say ``trigger_type = 'automatic'``, and that the
task log files the executor writes do not contain the token. Beside the package's DAGs, a probe
DAG reads two connections of its own as the check shards do (greenapi.masking) and writes their
passwords to its log, its stdout and its stderr: a real task's supervisor must hide them too.

The probe's passwords are not Green API tokens (the suite's final scan looks for those): Airflow
3.3's LocalExecutor also echoes a task's log lines to the scheduler's console, without masking
them whatever the masker knows (measured with Airflow's own ``Connection.get``), so the probe's
secrets do appear there. This package's tasks never log a token (docs/security.md).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.airflow_services import (
    DAG_ID,
    airflow,
    dag_known,
    fresh_metadata_db,
    running,
    service_env,
    wait_for,
)
from tests.e2e.conftest import log_rows

pytestmark = pytest.mark.e2e
SCHED_DB = "airflow_sched_test"
REPO = Path(__file__).resolve().parents[2]
PROBE_ID = "green_api_masking_probe"
PROBE_SECRETS = {"A": f"probe-secret-{secrets.token_hex(8)}", "B": f"probe-secret-{secrets.token_hex(8)}"}
PROBE = f"""
import logging
import sys

from airflow.sdk import dag, task

@dag(dag_id="{PROBE_ID}", schedule=None)
def probe():
    @task
    def read_tokens():
        from greenapi.masking import load_connections

        found = load_connections(["green_api_probe_a", "green_api_probe_b"])
        assert found is not None, "[logging] secret_mask_adapter is not greenapi.masking.expand_bundle"
        for conn in found.values():
            logging.getLogger("probe").warning("probe log %s", conn.password)
            print("probe stdout", conn.password, flush=True)
            print("probe stderr", conn.password, file=sys.stderr, flush=True)

    read_tokens()


probe()
"""


@pytest.fixture
def airflow_services(tmp_path, make_instance, add_contact, sim, reboot_schedule_away_from_now):
    add_contact("Support", "33600000001@c.us", 1)
    healthy = make_instance("green_api_default", state="authorized")
    failing = make_instance("green_api_second", state="notAuthorized")
    make_instance("green_api_alerts")
    metadata_url = fresh_metadata_db(SCHED_DB)
    dags = tmp_path / "dags"
    dags.mkdir()
    for path in (REPO / "dags").glob("*.py"):
        (dags / path.name).symlink_to(path)
    (dags / "masking_probe.py").write_text(PROBE)
    probes = {f"AIRFLOW_CONN_GREEN_API_PROBE_{x}": json.dumps({"conn_type": "greenapi", "host": sim.url,
              "login": "1101000999", "password": secret}) for x, secret in PROBE_SECRETS.items()}  # fmt: skip
    env = service_env(tmp_path, metadata_url, ["green_api_default", "green_api_second"],
                      SCHED_METADATA_URL=metadata_url, AIRFLOW__CORE__DAGS_FOLDER=str(dags), **probes)
    components = {name: [name] for name in ("api-server", "dag-processor", "scheduler")}
    with running(env, tmp_path, components):
        yield env, tmp_path, (healthy, failing)


def runs_of(env: dict[str, str], dag_id: str) -> list[tuple[str, str]]:
    with psycopg.connect(env["SCHED_METADATA_URL"]) as conn:
        return conn.execute("SELECT run_id, state FROM dag_run WHERE dag_id = %s", (dag_id,)).fetchall()


def scheduled_runs(env: dict[str, str]) -> list[tuple[str, str]]:
    with psycopg.connect(env["SCHED_METADATA_URL"]) as conn:
        return conn.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND run_type = 'scheduled' ORDER BY queued_at",
            (DAG_ID,),
        ).fetchall()


@pytest.mark.slow
def test_the_schedule_runs_the_check_and_logs_automatic_rows(
    airflow_services, db, sim, reboot_schedule_away_from_now
):
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
    # Beyond the state, the authorized instance's socket and queue were read (and only its).
    readings = {i: (r["socket_status"], r["queue_length"]) for i, r in rows.items()}
    assert readings == {healthy.instance_id: ("online", 0), failing.instance_id: (None, None)}
    assert [m["chatId"] for m in sim.messages()] == ["33600000001@c.us"]
    assert f"📱 Instance: {failing.instance_id}" in sim.messages()[0]["message"]
    logs = [p for p in (tmp_path / "logs").rglob("*") if p.is_file()]
    task_logs = [p for p in logs if "dag_id=" + DAG_ID in str(p)]
    assert len({p.parent.parent.name for p in task_logs}) >= 1 and task_logs  # the executor wrote task logs
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert failing.instance_id in text  # the logs do describe the checks (a healthy one is counted, not named)...
    for token in (healthy.token, failing.token):
        assert token not in text  # ...but never carry the token
    # The same dag-processor serialized the daily reboot's custom timetable (registered by the
    # plugin): the scheduler knows when the next reboot is, at the time of green_api_reboot_schedule.
    next_at = wait_for(lambda: next_reboot(env), 60, "green_api_scheduled_reboot to be parsed")
    local = next_at.astimezone(ZoneInfo("UTC"))
    assert local.strftime("%H:%M") == reboot_schedule_away_from_now
    assert timedelta(0) < next_at - datetime.now(UTC) <= timedelta(days=1, hours=1)

    # Connections read with one masker update (greenapi.masking, as the check shards read theirs):
    # each token is hidden in the task's log lines and in what it printed, which its supervisor logs.
    airflow(env, "dags", "unpause", PROBE_ID)
    airflow(env, "dags", "trigger", PROBE_ID)
    probe = wait_for(lambda: [r for r in runs_of(env, PROBE_ID) if r[1] in ("success", "failed")], 120,
                     "the masking probe to finish")  # fmt: skip
    probe_logs = [p for p in (tmp_path / "logs").rglob("*") if p.is_file() and f"dag_id={PROBE_ID}" in str(p)]
    said = "\n".join(p.read_text(errors="replace") for p in probe_logs)
    assert probe[0][1] == "success", said[-3000:]
    for where in ("log", "stdout", "stderr"):
        assert said.count(f"probe {where} ***") == 2, (where, said[-3000:])
    for secret in PROBE_SECRETS.values():
        assert secret not in said


def next_reboot(env: dict[str, str]) -> datetime | None:
    with psycopg.connect(env["SCHED_METADATA_URL"]) as conn:
        row = conn.execute(
            "SELECT next_dagrun_create_after, last_parsed_time FROM dag WHERE dag_id = 'green_api_scheduled_reboot'"
        ).fetchone()
        errors = conn.execute("SELECT filename, stacktrace FROM import_error").fetchall()
    assert errors == [], errors
    return row[0] if row else None

"""The state watch (issue 27) under the real scheduler: `make run` with Variable green_api_watch
on, a GreenApiStateChangeTrigger in the real triggerer as the health check's asset watcher.

An instance that turns notAuthorized between two scheduled slots is alerted within seconds by a
run the watch started, which checks only that instance; a later run does not alert it again, and
while nothing changes the watch starts no run."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.airflow_services import wait_for
from tests.deployed.conftest import Deployment, deployed, run_state, trigger

pytestmark = pytest.mark.deployed
DAG_ID = "green_api_health_check"
INSTANCE, OTHER, ALERTS = "1101779001", "1101779002", "1101779009"
SUPPORT = "33600000001@c.us"


@pytest.fixture
def deployment(tmp_path: Path, sim: Any) -> Iterator[tuple[Deployment, dict[str, str]]]:
    # The check's schedule: on 1 January (no scheduled run comes during the test but the last slot's).
    watch = json.dumps({"enabled": True, "watch_seconds": 2})
    sim.add_instance(OTHER, "TOKEN-SECRET-0000000000000other")
    other = json.dumps({"conn_type": "greenapi", "host": sim.url, "login": OTHER,
                        "password": "TOKEN-SECRET-0000000000000other"})  # fmt: skip
    with deployed(tmp_path, sim, "watch", INSTANCE, ALERTS, SUPPORT, {},
                  more_env=[f"AIRFLOW_VAR_GREEN_API_WATCH='{watch}'", f"AIRFLOW_CONN_GREEN_API_OTHER='{other}'",
                            "AIRFLOW_VAR_GREEN_API_CHECK_SCHEDULE='0 0 1 1 *'",
                            """AIRFLOW_VAR_GREEN_API_INSTANCES='["green_api_default", "green_api_other"]'"""],
                  ) as found:  # fmt: skip
        yield found


def runs(deployment: Deployment) -> list[tuple[str, str, str]]:
    return deployment.rows("SELECT run_id, run_type, state FROM dag_run WHERE dag_id = %s ORDER BY queued_at", DAG_ID)


def watch_rounds(deployment: Deployment) -> int:
    try:
        with psycopg.connect(deployment.health_url) as conn:
            row = conn.execute("SELECT rounds FROM green_api_state_watch").fetchone()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):  # make run has not made it yet
        return 0
    return int(row[0]) if row else 0


def test_a_change_between_slots_is_alerted_within_seconds_once(deployment, sim):
    deployment, tokens = deployment
    wait_for(lambda: watch_rounds(deployment), 240, "the watch's first round in the real triggerer")
    # Nothing changes: the watch starts no run (it looks every 2 s: four rounds). The one scheduled
    # run is the schedule's last slot, run once at the start (catchup off).
    time.sleep(8)
    assert [r[1] for r in runs(deployment)] == ["scheduled"]

    sim.configure(INSTANCE, state="notAuthorized")
    changed_at = time.time()
    [alert] = wait_for(lambda: [m for m in sim.messages() if m["chatId"] == SUPPORT], 120, "the watch's alert")
    latency = alert["at"] - changed_at
    assert "⚠️ *INSTANCE NON AUTORISÉE*" in alert["message"] and f"📱 Instance: {INSTANCE}" in alert["message"]
    assert latency < 60, latency  # the schedule alone: the next slot, a day away here
    event_runs = [r for r in runs(deployment) if r[1] == "asset_triggered"]
    assert event_runs, runs(deployment)
    assert wait_for(lambda: run_state(deployment, DAG_ID, event_runs[0][0]), 120, "the watch's run") == "success"
    with psycopg.connect(deployment.health_url) as conn:
        checked = conn.execute("SELECT instance_id FROM green_api_health_logs WHERE run_id = %s",
                               (event_runs[0][0],)).fetchall()  # fmt: skip
    assert checked == [(INSTANCE,)]  # the instance that changed, not the other one

    # A later run (here one triggered by hand) checks it again and does not alert it again.
    again = trigger(deployment, deployment.token(), DAG_ID)
    assert wait_for(lambda: run_state(deployment, DAG_ID, again), 180, "the next check") == "success"
    assert len([m for m in sim.messages() if m["chatId"] == SUPPORT]) == 1
    # The watch records its rounds from the real triggerer, which the scheduled runs read; it kept
    # to its own method: no 429 for the watch, none for the checks.
    with psycopg.connect(deployment.health_url) as conn:
        watched, rounds, changes, fresh = conn.execute(
            "SELECT watched, rounds, changes, now() - last_round_at < interval '30 s' FROM green_api_state_watch"
        ).fetchone()  # fmt: skip
    assert (watched, changes, fresh) == (2, 1, True) and rounds > 10
    assert [r for r in sim.requests_log() if r["status"] == 429] == []
    for secret in tokens.values():
        assert secret not in deployment.log.read_text(errors="replace")

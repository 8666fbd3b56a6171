"""Clearing and running again, through Airflow's REST API under the real scheduler: a health check
run that is run again keeps its promises (each check counted once, each message sent once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.airflow_services import wait_for
from tests.deployed.conftest import Deployment, deployed, finished, run_state, trigger

pytestmark = pytest.mark.deployed
DAG_ID = "green_api_health_check"
INSTANCE = "1101778001"
SUPPORT = "33600000001@c.us"


@pytest.fixture
def deployment(tmp_path: Path, sim) -> Iterator[Deployment]:
    """make run watching one notAuthorized instance, with an incident after 2 failing checks."""
    with deployed(tmp_path, sim, "rerun", INSTANCE, "1101778009", SUPPORT, {"failure_threshold": 2},
                  state="notAuthorized") as (deployment, _tokens):  # fmt: skip
        yield deployment


def clear(deployment: Deployment, token: str, run_id: str, task_ids: list[str] | None) -> None:
    """Airflow's clear, as the UI's Clear button asks for it (with the tasks after them)."""
    body: dict[str, Any] = {"dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True,
                            "include_downstream": True}  # fmt: skip
    if task_ids:
        body["task_ids"] = task_ids
    reply = requests.post(f"{deployment.url}/api/v2/dags/{DAG_ID}/clearTaskInstances", json=body,
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["total_entries"] >= 1, reply.text


def rerun_done(deployment: Deployment, run_id: str, task_id: str) -> str | None:
    """The run's state once ``task_id`` ran a second time and the run finished."""
    tries = deployment.rows("SELECT try_number, state FROM task_instance WHERE dag_id = %s AND run_id = %s"
                            " AND task_id = %s", DAG_ID, run_id, task_id)  # fmt: skip
    if not tries or tries[0][0] < 2 or tries[0][1] not in ("success", "failed", "upstream_failed"):
        return None
    return run_state(deployment, DAG_ID, run_id)


def settled(deployment: Deployment) -> list[str] | None:
    """The finished runs of the health check, once none is queued or running (a scheduled check
    may come during the test: every 5 minutes)."""
    runs = deployment.rows("SELECT run_id, state FROM dag_run WHERE dag_id = %s", DAG_ID)
    if any(state not in ("success", "failed") for _, state in runs):
        return None
    return sorted(run_id for run_id, _ in runs)


def kept_promises(deployment: Deployment, sim) -> dict[str, Any]:
    """Each finished check counted once, one row each, and the incident's opening sent once: with a
    threshold of 2, the second failing check opens it."""
    runs = wait_for(lambda: settled(deployment), 180, "no health check running")
    with psycopg.connect(deployment.health_url) as conn:
        [failures] = conn.execute("SELECT consecutive_failures FROM green_api_instance_status WHERE instance_id = %s",
                                  (INSTANCE,)).fetchone()  # fmt: skip
        incidents = conn.execute("SELECT count(*) FROM green_api_incidents").fetchone()[0]
        logged = [r[0] for r in conn.execute("SELECT run_id FROM green_api_health_logs ORDER BY id").fetchall()]
    assert failures == len(runs), (failures, runs)
    assert sorted(logged) == runs  # one row per run, none twice
    assert incidents == (1 if len(runs) >= 2 else 0)
    messages = sim.messages()
    assert len(messages) == incidents, messages
    for message in messages:
        assert message["chatId"] == SUPPORT and "INSTANCE NON AUTORISÉE" in message["message"]
    return {"runs": runs, "failures": failures, "incidents": incidents}


def test_clearing_a_run_sends_nothing_twice_and_counts_each_check_once(deployment, sim):
    first = wait_for(lambda: finished(deployment, DAG_ID, "scheduled"), 240, "the first scheduled check")
    assert first[1] == "success", deployment.log.read_text(errors="replace")[-5000:]
    kept_promises(deployment, sim)
    token = deployment.token()

    # Clearing the alert step (and what follows it) of that run: the check it saw is not counted
    # again, so a re-run alone never reaches the threshold of 2.
    clear(deployment, token, first[0], ["send_alerts"])
    assert wait_for(lambda: rerun_done(deployment, first[0], "send_alerts"), 180, "the re-run alert step") == "success"
    kept_promises(deployment, sim)

    # A second check (triggered by hand) is the second failure: one incident, one message.
    second = trigger(deployment, token, DAG_ID)
    assert wait_for(lambda: run_state(deployment, DAG_ID, second), 180, "the second check") == "success"
    assert kept_promises(deployment, sim)["incidents"] == 1

    # Clearing that whole run: checked, concluded, alerted and logged again; still each check once,
    # one message, one row per run.
    clear(deployment, token, second, None)
    assert wait_for(lambda: rerun_done(deployment, second, "report"), 180, "the re-run of the whole run") == "success"
    kept_promises(deployment, sim)

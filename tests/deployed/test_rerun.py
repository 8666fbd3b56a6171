"""Clearing and running again, through Airflow's REST API under the real scheduler: a health check
run that is run again keeps its promises (each check counted once, each message sent once).

The three scenarios share one `make run` (a module's deployment, first in the file's order): each
starts with the health database emptied, the simulator's instances as it needs them and
``green_api_settings`` set through the REST API, as a user would between two incidents. The
check's schedule runs once, at the start (``checks_once``): no scheduled run comes between a
scenario's own runs."""

from __future__ import annotations

import json
import os
import signal
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
INSTANCE = "1101778001"  # the monitored instance (green_api_default)
ALERTS = "1101778009"  # the alerts sender (green_api_alerts)
SUPPORT = "33600000001@c.us"
SECOND = "33600000002@c.us"


class Shared:
    """The module's deployment, and what each scenario starts from."""

    def __init__(self, deployment: Deployment, tokens: dict[str, str]) -> None:
        self.deployment, self.tokens = deployment, tokens
        self.before: set[str] = set()  # the runs of the scenarios before this one

    def start(self, sim: Any, state: str) -> Deployment:
        """The first scenario: the deployment as make run set it up (the simulator, emptied
        before each test, gets its instances back before make run is up)."""
        sim.add_instance(INSTANCE, self.tokens["monitored"], state=state)
        sim.add_instance(ALERTS, self.tokens["alerts"])
        return self.deployment

    def scenario(self, sim: Any, settings: dict[str, Any], state: str = "authorized") -> Deployment:
        """A later scenario (no run in flight): its instances in the simulator, its settings, an
        empty health database with the support contact, and the runs so far set aside."""
        d = self.start(sim, state)
        reply = requests.patch(f"{d.url}/api/v2/variables/green_api_settings", timeout=30,
                               headers={"Authorization": f"Bearer {d.token()}"},
                               json={"key": "green_api_settings", "value": json.dumps(settings)})  # fmt: skip
        assert reply.status_code == 200, reply.text
        with psycopg.connect(d.health_url, autocommit=True) as conn:
            conn.execute("TRUNCATE green_api_health_logs, system_support_contacts, green_api_alert_deliveries,"
                         " green_api_incidents, green_api_instance_status RESTART IDENTITY")  # fmt: skip
            conn.execute("INSERT INTO system_support_contacts (full_name, phone_number, notification_priority)"
                         " VALUES ('Rerun Support', %s, 1)", (SUPPORT,))  # fmt: skip
        self.before = {run_id for (run_id,) in d.rows("SELECT run_id FROM dag_run WHERE dag_id = %s", DAG_ID)}
        return d


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, sim_server: Any) -> Iterator[Shared]:
    """make run watching one instance (notAuthorized at the start: the first scenario's first
    scheduled check fails), an incident after 2 failing checks."""
    with deployed(tmp_path_factory.mktemp("rerun"), sim_server, "rerun", INSTANCE, ALERTS, SUPPORT,
                  {"failure_threshold": 2}, state="notAuthorized", checks_once=True,
                  first_start=False) as (deployment, tokens):  # fmt: skip
        yield Shared(deployment, tokens)


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


def settled(deployment: Deployment, before: set[str]) -> list[str] | None:
    """The finished runs of the health check since ``before``, once none is queued or running."""
    runs = [r for r in deployment.rows("SELECT run_id, state FROM dag_run WHERE dag_id = %s", DAG_ID) if r[0] not in before]
    if any(state not in ("success", "failed") for _, state in runs):
        return None
    return sorted(run_id for run_id, _ in runs)


def kept_promises(deployment: Deployment, sim, before: set[str]) -> dict[str, Any]:
    """Each finished check counted once, one row each, and the incident's opening sent once: with a
    threshold of 2, the second failing check opens it."""
    runs = wait_for(lambda: settled(deployment, before), 180, "no health check running")
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


def test_clearing_a_run_sends_nothing_twice_and_counts_each_check_once(shared, sim):
    deployment = shared.start(sim, "notAuthorized")  # threshold 2, as the env file sets it
    before: set[str] = set()  # the first scenario: its first check is the deployment's first scheduled one
    first = wait_for(lambda: finished(deployment, DAG_ID, "scheduled"), 240, "the first scheduled check")
    assert first[1] == "success", deployment.log.read_text(errors="replace")[-5000:]
    kept_promises(deployment, sim, before)
    token = deployment.token()

    # Clearing the alert step (and what follows it) of that run: the check it saw is not counted
    # again, so a re-run alone never reaches the threshold of 2.
    clear(deployment, token, first[0], ["send_alerts"])
    assert wait_for(lambda: rerun_done(deployment, first[0], "send_alerts"), 180, "the re-run alert step") == "success"
    kept_promises(deployment, sim, before)

    # A second check (triggered by hand) is the second failure: one incident, one message.
    second = trigger(deployment, token, DAG_ID)
    assert wait_for(lambda: run_state(deployment, DAG_ID, second), 180, "the second check") == "success"
    assert kept_promises(deployment, sim, before)["incidents"] == 1

    # Clearing that whole run: checked, concluded, alerted and logged again; still each check once,
    # one message, one row per run.
    clear(deployment, token, second, None)
    assert wait_for(lambda: rerun_done(deployment, second, "report"), 180, "the re-run of the whole run") == "success"
    kept_promises(deployment, sim, before)


def task_process(ti_id: str) -> int | None:
    """The pid of the process running this task instance (the task runner names itself after it)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip() == f"airflow worker -- {ti_id}".encode():
                    return int(entry.name)
            except OSError:
                continue
    return None


def test_an_alert_step_killed_between_two_contacts_sends_no_message_twice(shared, sim):
    # One healthy instance; an incident opens at the first failing check.
    deployment = shared.scenario(sim, {"failure_threshold": 1, "send_retries": 1})
    token = deployment.token()
    first = trigger(deployment, token, DAG_ID)
    assert wait_for(lambda: run_state(deployment, DAG_ID, first), 180, "the first check") == "success"
    assert sim.messages() == []
    # No scheduled check comes between the killed run and its re-run (checks_once): it would send
    # the opening to SECOND itself, or hang on it.
    with psycopg.connect(deployment.health_url, autocommit=True) as conn:
        conn.execute("INSERT INTO system_support_contacts (full_name, phone_number, notification_priority)"
                     " VALUES ('Second Support', %s, 1)", (SECOND,))  # fmt: skip
    # The instance fails; the opening goes to SUPPORT, then hangs on its way to SECOND.
    sim.configure(INSTANCE, state="notAuthorized")
    sim.configure(ALERTS, faults={"sendMessage": {"mode": "hang", "seconds": 300, "chat_id": SECOND}})
    run_id = trigger(deployment, token, DAG_ID)

    def hanging() -> bool:
        asked = [r["body"]["chatId"] for r in sim.requests_log(ALERTS, "sendMessage")]
        return SECOND in asked

    wait_for(hanging, 180, "the opening to reach SUPPORT and hang on its way to SECOND")
    assert [m["chatId"] for m in sim.messages()] == [SUPPORT]
    [(ti_id,)] = deployment.rows("SELECT id::text FROM task_instance WHERE dag_id = %s AND run_id = %s"
                                 " AND task_id = 'send_alerts'", DAG_ID, run_id)  # fmt: skip
    pid = wait_for(lambda: task_process(ti_id), 30, "the send_alerts task process")
    os.kill(pid, signal.SIGKILL)  # a worker lost between two contacts
    assert wait_for(lambda: run_state(deployment, DAG_ID, run_id), 180, "the run to end") == "failed"
    [(state,)] = deployment.rows("SELECT state FROM task_instance WHERE dag_id = %s AND run_id = %s"
                                 " AND task_id = 'send_alerts'", DAG_ID, run_id)  # fmt: skip
    assert state == "failed"
    with psycopg.connect(deployment.health_url) as conn:
        kept = conn.execute("SELECT recipient FROM green_api_alert_deliveries WHERE ok").fetchall()
    assert kept == [(SUPPORT,)]  # recorded as it was made, before the kill

    # Run again (Airflow's clear): SECOND gets the opening, SUPPORT does not get it a second time.
    sim.configure(ALERTS, faults={})
    clear(deployment, token, run_id, ["send_alerts"])
    assert wait_for(lambda: rerun_done(deployment, run_id, "report"), 180, "the re-run alert step") == "success"
    openings = sorted(m["chatId"] for m in sim.messages() if "INSTANCE NON AUTORISÉE" in m["message"])
    assert openings == sorted([SUPPORT, SECOND]), sim.messages()
    # Besides, the killed run's report told support that the run failed (GreenApiNotifier).
    others = [m for m in sim.messages() if "INSTANCE NON AUTORISÉE" not in m["message"]]
    assert len(others) == 1 and "send_alerts" in others[0]["message"], others
    with psycopg.connect(deployment.health_url) as conn:
        sent = conn.execute("SELECT recipient, message_kind FROM green_api_alert_deliveries WHERE ok"
                            " ORDER BY id").fetchall()  # fmt: skip
        [(notified,)] = conn.execute("SELECT opening_notified_at FROM green_api_incidents").fetchall()
    assert sent == [(SUPPORT, "opening"), (SECOND, "opening")]
    assert notified is not None

    # The next check: the incident's opening is not sent again to anyone.
    again = trigger(deployment, token, DAG_ID)
    assert wait_for(lambda: run_state(deployment, DAG_ID, again), 180, "the next check") == "success"
    assert len(sim.messages()) == 3


def try_done(deployment: Deployment, run_id: str, task_id: str, try_number: int) -> str | None:
    """The task's state once its try ``try_number`` (or a later one) finished."""
    rows = deployment.rows("SELECT try_number, state FROM task_instance WHERE dag_id = %s AND run_id = %s"
                           " AND task_id = %s", DAG_ID, run_id, task_id)  # fmt: skip
    if rows and rows[0][0] >= try_number and rows[0][1] in ("success", "failed", "skipped", "upstream_failed"):
        return str(rows[0][1])
    return None


def test_clearing_the_reboot_task_never_reboots_twice_with_the_database_up_or_down(shared, sim):
    # No cooldown between automatic reboots: only the guard against a second reboot for one
    # failure stands between a re-run and a second reboot.
    deployment = shared.scenario(sim, {"reboot_cooldown_minutes": 0, "reboot_poll_seconds": 2,
                                       "reboot_verify_minutes": 1})  # fmt: skip
    token = deployment.token()
    first = trigger(deployment, token, DAG_ID)
    assert wait_for(lambda: run_state(deployment, DAG_ID, first), 180, "the first check") == "success"
    # No scheduled check comes meanwhile (checks_once): it would use up the faults.
    failing = {"getStateInstance": {"mode": "http", "status": 500, "times": 2}}  # the check and the re-check
    sim.configure(INSTANCE, faults=failing)
    run_id = trigger(deployment, token, DAG_ID)
    assert wait_for(lambda: run_state(deployment, DAG_ID, run_id), 240, "the check that reboots") == "success"
    assert len(sim.reboots(INSTANCE)) == 1

    # Cleared with the database up, the instance failing its re-check again: the reboot recorded
    # at this run's time is found, and not made a second time (the cooldown is 0).
    sim.configure(INSTANCE, faults={"getStateInstance": {"mode": "http", "status": 500, "times": 1}})
    clear(deployment, token, run_id, ["reboot_instances"])
    assert wait_for(lambda: try_done(deployment, run_id, "reboot_instances", 2), 180, "the re-run reboot") == "success"
    assert wait_for(lambda: run_state(deployment, DAG_ID, run_id), 180, "the re-run to end")
    assert len(sim.reboots(INSTANCE)) == 1
    with psycopg.connect(deployment.health_url) as conn:
        [(reboots,)] = conn.execute("SELECT cardinality(auto_reboots) FROM green_api_instance_status"
                                    " WHERE instance_id = %s", (INSTANCE,)).fetchall()  # fmt: skip
    assert reboots == 1

    # Cleared again with the health database refusing every connection: this try cannot know
    # what the earlier ones did, so it reboots nothing.
    name = deployment.health_url.rsplit("/", 1)[1]
    server = deployment.health_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    try:
        sim.configure(INSTANCE, faults={"getStateInstance": {"mode": "http", "status": 500, "times": 1}})
        clear(deployment, token, run_id, ["reboot_instances"])
        assert wait_for(lambda: try_done(deployment, run_id, "reboot_instances", 3), 180, "the third try") == "success"
        assert len(sim.reboots(INSTANCE)) == 1
        assert wait_for(lambda: try_done(deployment, run_id, "conclude", 3), 120, "the conclusion") == "success"
        [(found,)] = deployment.rows("SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = 'conclude'"
                                     " AND key = 'return_value'", DAG_ID, run_id)  # fmt: skip
        [finding] = found
        assert "automatic reboot not repeated: an earlier try of this run made it, or may have" in finding["error"]
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def put(deployment: Deployment, token: str, kind: str, key: str, body: dict[str, Any]) -> None:
    """Create or replace a Variable or a connection through the REST API, as a user would."""
    headers = {"Authorization": f"Bearer {token}"}
    made = requests.post(f"{deployment.url}/api/v2/{kind}", json=body, headers=headers, timeout=30)
    if made.status_code == 409:
        made = requests.patch(f"{deployment.url}/api/v2/{kind}/{key}", json=body, headers=headers, timeout=30)
    assert made.status_code in (200, 201), made.text


def test_an_outage_under_the_scheduler_is_one_message_and_a_cleared_alert_step_sends_it_once(shared, sim):
    # The runs of the scenario before end first (a re-run may still be alerting): none of theirs counts here.
    wait_for(lambda: settled(shared.deployment, set()), 240, "the earlier scenarios' runs to end")
    sim.clear_records()
    deployment = shared.scenario(sim, {"failure_threshold": 1})
    token = deployment.token()
    # Twelve instances of the simulator's host, added as a user would (connections, the list), hanging.
    fleet = {f"green_api_outage_{n:02d}": f"1101779{n:03d}" for n in range(12)}
    hanging = {"getStateInstance": {"mode": "hang", "seconds": 5}}
    for conn_id, instance_id in fleet.items():
        secret = f"TOKEN-SECRET-{os.urandom(8).hex()}"
        sim.add_instance(instance_id, secret, faults=hanging)
        put(deployment, token, "connections", conn_id, {
            "connection_id": conn_id, "conn_type": "greenapi", "host": sim.url, "login": instance_id,
            "password": secret, "extra": json.dumps({"state_timeout": 1})})  # fmt: skip
    put(deployment, token, "variables", "green_api_instances",
        {"key": "green_api_instances", "value": json.dumps(list(fleet))})  # fmt: skip
    try:
        run_id = trigger(deployment, token, DAG_ID)
        assert wait_for(lambda: run_state(deployment, DAG_ID, run_id), 240, "the check of the fleet") == "success"
        messages = sim.messages()
        assert len(messages) == 1, [m["message"][:300] for m in messages]
        [opening] = messages
        assert opening["chatId"] == SUPPORT and "PANNE DE LA PLATEFORME" in opening["message"]
        assert "Instances touchées: 12 sur 12" in opening["message"]
        assert sim.reboots() == []  # no reboot stampede
        with psycopg.connect(deployment.health_url) as conn:
            kinds = conn.execute("SELECT kind FROM green_api_incidents").fetchall()
        assert kinds == [("platform_outage",)]

        # Cleared and run again, the alert step sends the outage's opening to nobody twice.
        clear(deployment, token, run_id, ["send_alerts"])
        assert wait_for(lambda: rerun_done(deployment, run_id, "report"), 180, "the re-run alert step") == "success"
        assert sim.messages() == [opening]
        with psycopg.connect(deployment.health_url) as conn:
            assert conn.execute("SELECT checks FROM green_api_incidents").fetchall() == [(1,)]  # the run counted once

        # All answer again: one resolution.
        for instance_id in fleet.values():
            sim.configure(instance_id, faults={})
        again = trigger(deployment, token, DAG_ID)
        assert wait_for(lambda: run_state(deployment, DAG_ID, again), 240, "the check after the outage") == "success"
        [_, resolution] = sim.messages()
        assert "INCIDENT RÉSOLU" in resolution["message"] and "Rétablies: 12 sur 12" in resolution["message"]
    finally:
        put(deployment, token, "variables", "green_api_instances",
            {"key": "green_api_instances", "value": json.dumps(["green_api_default"])})  # fmt: skip

"""`make run` as a user runs it: scripts/run.sh with an env file, Airflow's real api-server,
dag-processor, scheduler (LocalExecutor) and triggerer, against the simulator.

Each of the four DAGs runs once through the scheduler (the scheduled health check and maintenance
of a first start, the daily reboot and the confirmed manual reboot triggered through the REST
API): every task instance succeeds at its first try and support gets no message at all. The same
start proves the deployment's promises: the schema lands in the database that
AIRFLOW_CONN_GREEN_API_DB names, Airflow's metadata in a database of its own, the connections of
the env file are in Airflow's connection list (and pass the UI's Test), the retention job ran, and
nothing listens beyond 127.0.0.1. Beside the instance of its own, the env file gives a partner
account of three instances (issue 26): checked, rebooted and waited for with no connection each,
their tokens taken from the account in each task and in the triggerer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import requests

from tests.airflow_services import wait_for
from tests.deployed.conftest import (
    Deployment,
    deployed,
    descendants,
    finished,
    listening,
    run_state,
    trigger,
)
from tests.deployed.log_kinds import KNOWN, sql_at_info, warning_kinds

pytestmark = pytest.mark.deployed
DAG_IDS = ("green_api_health_check", "green_api_maintenance", "green_api_scheduled_reboot", "green_api_reboot")
PARTNER = ["1101778001", "1101778002", "1101778003"]


@pytest.fixture
def deployment(tmp_path: Path, sim) -> Iterator[tuple[Deployment, dict[str, str]]]:
    settings = {"reboot_poll_seconds": 2, "reboot_verify_minutes": 1}
    with deployed(tmp_path, sim, "smoke", "1101777001", "1101777009", "33600000001@c.us", settings,
                  partner=PARTNER) as found:  # fmt: skip
        yield found


def test_make_run_runs_every_dag_through_the_scheduler_and_support_hears_nothing(deployment, sim):
    deployment, tokens = deployment
    # A first start: the scheduled health check of the current 5 minutes, and the maintenance DAG's
    # latest daily run (catchup=False), come on their own.
    health = wait_for(lambda: finished(deployment, "green_api_health_check", "scheduled"), 240,
                      "the first scheduled health check")  # fmt: skip
    maintenance = wait_for(lambda: finished(deployment, "green_api_maintenance", "scheduled"), 120,
                           "the maintenance DAG's run")  # fmt: skip
    token = deployment.token()
    reboot_run = trigger(deployment, token, "green_api_scheduled_reboot")
    reboot_state = wait_for(lambda: run_state(deployment, "green_api_scheduled_reboot", reboot_run), 180,
                            "the daily reboot")  # fmt: skip
    manual_run = trigger(deployment, token, "green_api_reboot", {"instance": "all", "confirm": True})
    manual_state = wait_for(lambda: run_state(deployment, "green_api_reboot", manual_run), 180, "the manual reboot")

    log = deployment.log.read_text(errors="replace")
    assert (health[1], maintenance[1], reboot_state, manual_state) == ("success",) * 4, log[-5000:]
    runs = [health[0], maintenance[0], reboot_run, manual_run]
    instances = deployment.rows(
        "SELECT dag_id, task_id, map_index, state, try_number FROM task_instance WHERE run_id = ANY(%s)", runs
    )
    assert {row[0] for row in instances} == set(DAG_IDS)
    assert len(instances) == 9 + 3 + 7 + 7, instances  # one per task of the four DAGs
    # Every task succeeded at its first try; the health check's reboot task skipped itself (no
    # reboot needed), and so its recovery wait never ran.
    unexpected = sorted(r for r in instances if (r[3], r[4]) != ("success", 1))
    assert unexpected == [("green_api_health_check", "reboot_instances", -1, "skipped", 1),
                          ("green_api_health_check", "wait_for_recovery", -1, "skipped", 0)], instances  # fmt: skip
    # Support heard nothing: no failure notice, no alert (the instance is healthy throughout).
    assert sim.messages() == []
    for instance_id in ("1101777001", *PARTNER):
        assert len(sim.reboots(instance_id)) == 2, instance_id  # the daily reboot and the manual one

    # The health data went to the database AIRFLOW_CONN_GREEN_API_DB names (migrated by run.sh).
    with psycopg.connect(deployment.health_url) as conn:
        logged = conn.execute("SELECT dag_id, trigger_type, status, instance_id, connection_id FROM green_api_health_logs"
                              " WHERE run_id = ANY(%s) ORDER BY id", (runs,)).fetchall()  # a later check may have come too
        names = dict(conn.execute("SELECT instance_id, name FROM green_api_partner_instances").fetchall())
    expected_conns = {"1101777001": "green_api_default", **{i: f"green_api_partner/{i}" for i in PARTNER}}
    for dag_id, trigger_type, status in [("green_api_health_check", "automatic", "healthy"),
                                         ("green_api_scheduled_reboot", "scheduled", "rebooted"),
                                         ("green_api_reboot", "manual", "rebooted")]:  # fmt: skip
        rows = {(r[3], r[4]) for r in logged if r[:3] == (dag_id, trigger_type, status)}
        assert rows == set(expected_conns.items()), logged
    assert len(logged) == 12 and names == {i: f"Smoke client {n}" for n, i in enumerate(PARTNER, 1)}
    # Airflow's metadata is in its own database, marked as this project's.
    mark = deployment.rows("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()")
    assert mark == [("green-api-health: Airflow metadata database",)]

    # The env file's connections are in Airflow's list, the token encrypted, and the UI's Test works.
    conns = dict(deployment.rows("SELECT conn_id, is_encrypted FROM connection"))
    assert conns == {"green_api_default": True, "green_api_alerts": True, "green_api_partner": True, "green_api_db": False}
    headers = {"Authorization": f"Bearer {token}"}
    listed = requests.get(f"{deployment.url}/api/v2/connections", headers=headers, timeout=10).json()
    assert {c["connection_id"] for c in listed["connections"]} == set(conns)
    tested = requests.post(f"{deployment.url}/api/v2/connections/test", headers=headers, timeout=30, json={
        "connection_id": "green_api_default", "conn_type": "greenapi", "host": sim.url, "login": "1101777001",
        "password": "***"}).json()  # fmt: skip
    assert tested["status"] is True, tested
    assert tested["message"].startswith("Instance 1101777001 answered in") and "state 'authorized'" in tested["message"]
    # Nothing red in the UI: no DAG import error, no plugin import error (a plugin registered twice).
    assert deployment.rows("SELECT filename, stacktrace FROM import_error") == []
    plugin_errors = requests.get(f"{deployment.url}/api/v2/plugins/importErrors", headers=headers, timeout=10).json()
    assert plugin_errors["total_entries"] == 0, plugin_errors
    variables = dict(deployment.rows("SELECT key, val IS NOT NULL FROM variable"))
    assert set(variables) == {"green_api_settings", "green_api_reboot_schedule", "green_api_instances"}

    # Nothing red in any task log of the four runs (the UI colours error lines).
    task_logs = [f for run in runs for f in (deployment.home / "logs").glob(f"dag_id=*/run_id={run}/**/*.log")]
    assert len(task_logs) >= 9 + 3 + 4 + 4, task_logs
    errors = [line for f in task_logs for line in f.read_text().splitlines()
              if '"level":"error"' in line or '"level":"critical"' in line]  # fmt: skip
    assert errors == []
    # The check's task log reads as a summary, not as a dump of its return value.
    [shard_log] = (deployment.home / "logs" / "dag_id=green_api_health_check").glob(
        f"run_id={health[0]}/task_id=check_shard/**/attempt=1.log")  # fmt: skip
    assert "4 instances: 4 healthy" in shard_log.read_text()
    assert "Returned value was" not in shard_log.read_text()

    # The retention job ran beside the scheduler.
    retention = (deployment.home / "logs" / "retention.log").read_text()
    assert "retention: removed 0 run(s) of this package's DAGs" in retention, retention

    # Only the UI listens, and only on 127.0.0.1.
    addresses = listening(descendants(deployment.proc.pid))
    port = deployment.url.rsplit(":", 1)[1]
    assert addresses == {f"127.0.0.1:{port}"}, addresses
    assert "listening only from this machine" in log
    # Nor in what make run printed (what a newcomer watches).
    assert [line for line in log.splitlines() if "[error" in line or "[critical" in line] == []
    # A log a person can read: no SQL, no access log, and no warning of a kind docs/operations.md
    # does not list (this package's own warnings about instances aside: none here, all are healthy).
    printed = log + "\n".join(f.read_text() for f in task_logs)
    assert sql_at_info(printed) == []
    assert "[http.access]" not in log and "shall not contain '_'" not in printed
    kinds = warning_kinds(printed)
    assert set(kinds) <= set(KNOWN), kinds
    # No token in what make run printed.
    for secret in tokens.values():
        assert secret not in log

    # A failure under the real scheduler (a broken Variable, set in the UI) reaches support as a
    # notice naming the job and the task, with the link to the task's log in the UI.
    made = requests.patch(f"{deployment.url}/api/v2/variables/green_api_instances", headers=headers, timeout=10,
                          json={"key": "green_api_instances", "value": "[green_api_default"})  # fmt: skip
    assert made.status_code == 200, made.text
    broken_run = trigger(deployment, token, "green_api_scheduled_reboot")
    assert wait_for(lambda: run_state(deployment, "green_api_scheduled_reboot", broken_run), 120,
                    "the broken daily reboot") == "failed"  # fmt: skip
    [notice] = wait_for(lambda: [m for m in sim.messages() if "green_api_scheduled_reboot" in m["message"]], 60,
                        "the failure notice")  # a scheduled health check may fail meanwhile, too  # fmt: skip
    assert notice["chatId"] == "33600000001@c.us"
    text = notice["message"]
    assert text.startswith("⚠️ *MONITORING GREEN API EN ÉCHEC*\n\nLe reboot quotidien des instances a échoué le ")
    assert "(DAG green_api_scheduled_reboot, tâche pick_instances, essai 1) : Variable green_api_instances is not " \
           "valid JSON" in text  # fmt: skip
    assert text.endswith(f"🔎 Log de la tâche : http://localhost:{port}/dags/green_api_scheduled_reboot/runs/"
                         f"{quote(broken_run)}/tasks/pick_instances?try_number=1")  # fmt: skip
    assert "Traceback" not in text and not any(secret in text for secret in tokens.values())

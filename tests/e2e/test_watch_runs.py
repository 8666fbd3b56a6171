"""Health-check runs the state watch started (issue 27), under dag.test(): the same change
reported twice (two triggerers, a triggerer restarted, two events in one run) never alerts twice
or reboots twice; and a watch that stopped looking fails the scheduled run, naming it, and
support hears of it."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import log_rows, run_dag
from tests.e2e.test_health_check_dag import contacts, sender  # noqa: F401 - fixtures
from tests.e2e.test_incidents import L1, inbox, run_at, settings, setup, t0  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e
HANG = {"getStateInstance": {"mode": "hang", "seconds": 3}}


def test_the_same_change_reported_twice_alerts_once_and_reboots_once(
    health_dag, make_instance, sim, db, setup, t0, monkeypatch  # noqa: F811
):
    hung = make_instance("green_api_default", faults=HANG)
    gone = make_instance("green_api_gone", state="notAuthorized")
    calm = make_instance("green_api_calm")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(["green_api_default", "green_api_gone",
                                                                       "green_api_calm"]))  # fmt: skip
    # Both runs carry the same event: the instances it names, as the run's triggering asset events give them.
    monkeypatch.setattr("greenapi.tasks.health_check.changed_instances", lambda: {"green_api_default", "green_api_gone"})
    first, second = run_at(health_dag, t0, 0), run_at(health_dag, t0, 1)
    assert first.state == second.state == "success", (first.tasks, second.tasks)
    assert len(sim.reboots(hung.instance_id)) == 1  # the second run is in the reboot's cooldown
    opened = inbox(sim, L1)
    assert len(opened) == 2, opened  # one incident each, alerted once
    assert sum(gone.instance_id in m for m in opened) == 1 and sum(hung.instance_id in m for m in opened) == 1
    rows = log_rows(db)
    assert calm.instance_id not in {r["instance_id"] for r in rows}  # an event run checks what changed only
    assert [r["reboot_triggered"] for r in rows if r["instance_id"] == hung.instance_id] == [True, False]


def test_a_run_the_watch_started_for_a_partner_instance_checks_that_instance(
    health_dag, make_instance, make_partner, sim, db, setup, t0, monkeypatch  # noqa: F811
):
    make_instance("green_api_default")
    account = make_partner(count=3)
    changed = list(account.instances)[1]
    sim.configure(changed, state="notAuthorized")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(["green_api_default",
                                                                       {"partner": account.conn_id}]))  # fmt: skip
    monkeypatch.setattr("greenapi.tasks.health_check.changed_instances", lambda: {account.key(changed)})
    assert run_at(health_dag, t0, 0).state == "success"
    assert [(r["instance_id"], r["connection_id"], r["status"]) for r in log_rows(db)] == [
        (changed, account.key(changed), "unhealthy")]
    [alert] = inbox(sim, L1)
    assert f"📱 Instance: {changed}" in alert


def test_a_watch_that_stopped_fails_the_run_naming_it_until_it_looks_again(
    health_dag, make_instance, sim, db, contacts, sender, monkeypatch  # noqa: F811
):
    inst = make_instance()
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_WATCH", json.dumps({"enabled": True, "watch_seconds": 20}))
    db.execute("INSERT INTO green_api_state_watch VALUES ('green_api_state_watch', now() - interval '1 hour',"
               " now() - interval '10 minutes', 20, 1, 1, 0, 0, 150, 0, 40)")  # fmt: skip
    stopped = run_dag(health_dag)
    assert stopped.state == "failed" and stopped.tasks["check_instances"] == "success", stopped.tasks
    assert [(r["instance_id"], r["status"]) for r in log_rows(db)] == [(inst.instance_id, "healthy")]
    notices = [text for chat, text in ((m["chatId"], m["message"]) for m in sim.messages(sender.instance_id))]
    assert notices and all("MONITORING GREEN API EN ÉCHEC" in t for t in notices)
    assert all("the state watch green_api_state_watch has not looked since" in t for t in notices), notices
    assert all("is the Airflow triggerer running?" in t for t in notices)

    db.execute("UPDATE green_api_state_watch SET last_round_at = now()")
    assert run_dag(health_dag).state == "success"

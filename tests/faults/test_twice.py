"""The same run retried, and the DAG triggered twice, for one failure: one reboot, one alert."""

from __future__ import annotations

import json

import pendulum
import pytest

from tests.e2e.conftest import log_rows, run_dag
from tests.e2e.test_health_check_dag import FAST, HANG

pytestmark = pytest.mark.faults
SUPPORT = "33600000001@c.us"


def test_one_failure_gets_one_reboot_and_one_alert_however_often_it_runs(
    health_dag, make_instance, sim, db, add_contact, monkeypatch
):
    add_contact("Support", SUPPORT, 1)
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps(FAST))
    sender = make_instance("green_api_alerts")
    hung = make_instance("green_api_hung", faults={"getStateInstance": HANG})  # a reboot does not cure it
    unlinked = make_instance("green_api_unlinked", state="notAuthorized")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(["green_api_hung", "green_api_unlinked"]))
    t0 = pendulum.datetime(2026, 6, 1, 12, 0, tz="UTC")
    first = run_dag(health_dag, logical_date=t0, run_after=t0)
    again = run_dag(health_dag, logical_date=t0, run_after=t0)  # the same run, run again
    later = t0.add(minutes=5)
    second = run_dag(health_dag, logical_date=later, run_after=later)  # the next trigger
    assert first.run_id == again.run_id != second.run_id
    # Three checks of each instance were made and logged, one row per run and instance...
    assert len(sim.requests_log(unlinked.instance_id, "getStateInstance")) == 3
    assert sorted(r["run_id"] for r in log_rows(db) if r["instance_id"] == hung.instance_id) == sorted(
        [first.run_id, second.run_id]
    )
    # ...but the hung instance was rebooted once (the cooldown holds for the rerun and the next
    # run), and each instance's incident was announced once.
    assert len(sim.reboots(hung.instance_id)) == 1
    alerts = [m["message"] for m in sim.messages(sender.instance_id) if m["chatId"] == SUPPORT]
    assert sum(f"📱 Instance: {hung.instance_id}" in a for a in alerts) == 1
    assert sum(f"📱 Instance: {unlinked.instance_id}" in a for a in alerts) == 1
    assert len(alerts) == 2

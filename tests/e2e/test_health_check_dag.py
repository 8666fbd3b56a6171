"""End-to-end runs of green_api_health_check: Airflow, the simulator over HTTP, PostgreSQL."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import log_rows, run_dag

SUPPORT_1 = "33600000001@c.us"
SUPPORT_2 = "33600000002@c.us"


@pytest.fixture
def contacts(add_contact):
    add_contact("Support Principal", SUPPORT_1, 1)
    add_contact("Support Secondaire", SUPPORT_2, 2)


def test_healthy_instance_logs_one_row_and_alerts_nobody(health_dag, make_instance, sim, db, contacts):
    inst = make_instance(state="authorized")
    outcome = run_dag(health_dag)
    assert outcome.state == "success", outcome.tasks
    rows = log_rows(db)
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "healthy"
    assert row["state_instance"] == "authorized"
    assert row["instance_id"] == inst.instance_id
    assert row["reboot_triggered"] is False
    assert row["support_notified"] is False
    assert row["trigger_type"] == "manual"
    assert sim.messages() == []
    assert sim.reboots() == []

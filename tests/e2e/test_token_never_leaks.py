"""The Green API token is in the URL path of every call: it must leak nowhere.

Runs the DAG through healthy, failing, rebooting and alerting paths with recognisable tokens,
then scans everything Airflow and this package wrote: what the tasks printed, Airflow's task log
files, every row of Airflow's metadata database (XComs, rendered fields, task instances...) and
of the health database, and the simulator's records.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from tests.conftest import require_env
from tests.e2e.conftest import run_dag
from tests.e2e.test_health_check_dag import FAST

pytestmark = pytest.mark.e2e

SCENARIOS = [
    {"state": "authorized"},
    {"state": "notAuthorized"},
    {"faults": {"getStateInstance": {"mode": "hang", "seconds": 3}}},
    {"faults": {"getStateInstance": {"mode": "hang", "seconds": 3}, "reboot": {"mode": "http", "status": 500}}},
    {"faults": {"getStateInstance": {"mode": "http", "status": 401}}},
    {"faults": {"getStateInstance": {"mode": "reset"}}, "reboot_result": False},
    {"faults": {"getStateInstance": {"mode": "malformed"}, "sendMessage": {"mode": "http", "status": 500}}},
]


def all_rows_as_text(url: str) -> str:
    chunks = []
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            for (text,) in conn.execute(f'SELECT t::text FROM "{table}" t'):  # noqa: S608 - names from pg_tables
                chunks.append(text)
    return "\n".join(chunks)


@pytest.mark.slow
def test_token_appears_nowhere_after_every_kind_of_run(
    health_dag, make_instance, sim, db, add_contact, capfd, monkeypatch
):
    add_contact("Support", "33600000001@c.us", 1)
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps(FAST))
    tokens, instance_ids = [], []
    for scenario in SCENARIOS:
        sim.reset()
        sender = make_instance("green_api_alerts")
        inst = make_instance(**scenario)
        tokens += [inst.token, sender.token]
        instance_ids.append(inst.instance_id)
        run_dag(health_dag)
    out = capfd.readouterr()
    printed = out.out + out.err
    logs = "\n".join(
        p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"], "logs").rglob("*") if p.is_file()
    )
    metadata = all_rows_as_text(require_env("GREEN_API_AIRFLOW_DB_URL"))
    health = all_rows_as_text(require_env("GREEN_API_DB_URL"))
    records = json.dumps([sim.requests_log(), sim.messages(), sim.reboots()])
    # The scan did read what the runs wrote: the XComs name each instance, the rows too, and the
    # task output each instance with a problem (a healthy one is counted, not named: no SQL is logged).
    assert all(i in metadata and i in health for i in instance_ids)
    assert all(i in printed for i in instance_ids[1:]) and SCENARIOS[0] == {"state": "authorized"}
    for token in tokens:
        for where, text in {
            "task output": printed, "task log files": logs, "Airflow metadata DB": metadata,
            "health DB": health, "simulator records": records,
        }.items():
            assert token not in text, f"token found in {where}"


@pytest.mark.parametrize("token_fragment", ["TOKEN-SECRET"])
def test_the_scan_would_see_a_leak(health_dag, db, token_fragment):
    """Guard against a scan that cannot fail: a value written to a row is found by it."""
    db.execute(
        "INSERT INTO green_api_health_logs (status, error_message) VALUES ('unhealthy', %s)",
        (f"{token_fragment}-planted",),
    )
    assert f"{token_fragment}-planted" in all_rows_as_text(require_env("GREEN_API_DB_URL"))

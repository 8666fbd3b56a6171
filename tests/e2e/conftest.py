"""Runs whole DAGs with Airflow's own execution (``dag.test()``) against real services."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import require_env

DAGS = Path(__file__).resolve().parents[2] / "dags"


@dataclass
class RunOutcome:
    state: str
    tasks: dict[str, str | None]
    run_id: str
    mapped: dict[str, list[str | None]]  # a mapped task's states, by map index


def load_dag(dag_id: str) -> Any:
    require_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"{dag_id} not found in {DAGS}"
    return dag


def run_dag(dag: Any, **kwargs: Any) -> RunOutcome:
    dr = dag.test(**kwargs)
    instances = sorted(dr.get_task_instances(), key=lambda ti: (ti.task_id, ti.map_index))
    tasks = {ti.task_id: _text(ti.state) for ti in instances}
    mapped: dict[str, list[str | None]] = {}
    for ti in instances:
        if ti.map_index >= 0:
            mapped.setdefault(ti.task_id, []).append(_text(ti.state))
    return RunOutcome(state=_text(dr.state) or "", tasks=tasks, run_id=dr.run_id, mapped=mapped)


def _text(state: Any) -> str | None:
    return None if state is None else str(getattr(state, "value", state))


AIRFLOW_BASE_URL = "https://airflow.example.org:8443"


@pytest.fixture
def alert_link(monkeypatch: pytest.MonkeyPatch) -> str:
    """Airflow's ``[api] base_url``, as a deployment sets it; alerts link to the dashboard under it."""
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", AIRFLOW_BASE_URL)
    return f"{AIRFLOW_BASE_URL}/green-api/"


@pytest.fixture(scope="session")
def health_dag() -> Any:
    return load_dag("green_api_health_check")


def log_rows(db: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM green_api_health_logs ORDER BY instance_id, id")
        return list(cur.fetchall())


@pytest.fixture(scope="session")
def scheduled_reboot_dag() -> Any:
    return load_dag("green_api_scheduled_reboot")


@pytest.fixture(scope="session")
def manual_reboot_dag() -> Any:
    return load_dag("green_api_reboot")


def printed(capfd: Any) -> str:
    """What the run printed: dag.test() runs tasks in-process and their logs go to stdout/stderr."""
    out = capfd.readouterr()
    return out.out + out.err


@pytest.fixture(scope="session")
def maintenance_dag() -> Any:
    return load_dag("green_api_maintenance")


@pytest.fixture
def smtp_server():
    """A local SMTP server (aiosmtpd): its port, and its inbox (``messages``: recipients, message)."""
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=email_policy)))
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, handler
    controller.stop()

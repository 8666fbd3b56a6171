"""Faults injected for real: a PostgreSQL server of the tests' own that they stop and start,
simulators that they kill, and a look into Airflow's metadata database for task attempts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import require_env
from tests.e2e.conftest import health_dag  # noqa: F401 - the same DAG fixture as the e2e tests
from tests.private_postgres import PrivatePostgres


@pytest.fixture
def health_db(private_pg: PrivatePostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection[Any]]:
    """The DAGs log to the private server (connection green_api_db); emptied, with one contact."""
    if not private_pg.answers():
        private_pg.start()
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DB", private_pg.url)
    with psycopg.connect(private_pg.url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE green_api_health_logs, system_support_contacts, green_api_alert_deliveries,"
            " green_api_incidents, green_api_instance_status RESTART IDENTITY"
        )
        conn.execute(
            "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority)"
            " VALUES ('Support', '33600000001@c.us', 1)"
        )
    conn = psycopg.connect(private_pg.url, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()
        if not private_pg.answers():
            private_pg.start()


def rows_of(url: str, run_id: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM green_api_health_logs WHERE run_id = %s ORDER BY instance_id", (run_id,))
        return list(cur.fetchall())


def metadata_url() -> str:
    return require_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN").replace("postgresql+psycopg2://", "postgresql://")


def attempts(dag_id: str, run_id: str, task_id: str) -> list[str]:
    """The states of every attempt of a task in a run, oldest first (Airflow's own records)."""
    with psycopg.connect(metadata_url()) as conn:
        past = conn.execute(
            "SELECT state FROM task_instance_history WHERE dag_id = %s AND run_id = %s AND task_id = %s"
            " ORDER BY try_number", (dag_id, run_id, task_id),
        ).fetchall()  # fmt: skip
        now = conn.execute(
            "SELECT state FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s",
            (dag_id, run_id, task_id),
        ).fetchall()
    return [r[0] for r in past + now]


def task_state_now(dag_id: str, task_id: str) -> list[str]:
    """States of that task in the DAG's runs that are still running."""
    with psycopg.connect(metadata_url()) as conn:
        return [r[0] for r in conn.execute(
            "SELECT ti.state FROM task_instance ti JOIN dag_run dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id"
            " WHERE ti.dag_id = %s AND ti.task_id = %s AND dr.state = 'running'", (dag_id, task_id),
        ).fetchall()]  # fmt: skip


class Watcher(threading.Thread):
    """Waits, beside a running ``dag.test()``, for ``until()``, then does ``then()`` once."""

    def __init__(self, until: Callable[[], bool], then: Callable[[], None], timeout: float = 120) -> None:
        super().__init__(daemon=True)
        self.until, self.then, self.timeout = until, then, timeout
        self.done_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                if self.until():
                    self.then()
                    self.done_at = time.monotonic()
                    return
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def result(self) -> None:
        self.join(timeout=5)
        assert self.error is None, f"the watcher failed: {self.error!r}"
        assert self.done_at is not None, "the watcher's condition never came"

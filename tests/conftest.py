"""Shared fixtures: the real simulator over HTTP, the real PostgreSQL health database.

`make test` exports the environment these need (scripts/env.sh test): a migrated Airflow
metadata database, the health database ``green_api_test`` and Airflow's folders.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from greenapi.simulator import GreenApiSimulator

_ids = itertools.count(1)


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the tests with `make test`, which sets up PostgreSQL and Airflow")
    return value


@pytest.fixture(scope="session")
def sim_server() -> Iterator[GreenApiSimulator]:
    with GreenApiSimulator() as server:
        yield server


@pytest.fixture
def sim(sim_server: GreenApiSimulator) -> GreenApiSimulator:
    sim_server.reset()
    return sim_server


@pytest.fixture
def db() -> Iterator[psycopg.Connection[Any]]:
    """The health database, emptied before each test."""
    with psycopg.connect(require_env("GREEN_API_DB_URL"), autocommit=True) as conn:
        conn.execute(
            "TRUNCATE green_api_health_logs, system_support_contacts, green_api_alert_deliveries,"
            " green_api_incidents, green_api_instance_status RESTART IDENTITY"
        )
        yield conn


@dataclass(frozen=True)
class SimInstance:
    conn_id: str
    instance_id: str
    token: str


@pytest.fixture
def make_instance(sim: GreenApiSimulator, monkeypatch: pytest.MonkeyPatch):
    """Create a simulator instance and its Airflow connection (env var); unique ids per test.

    Tokens are recognisable (``TOKEN-SECRET-...``) so leak scans can look for them.
    """

    def create(conn_id: str = "green_api_default", *, extra: dict[str, Any] | None = None, **config: Any) -> SimInstance:
        instance_id = f"77{os.getpid() % 10000:04d}{next(_ids):05d}"
        token = f"TOKEN-SECRET-{secrets.token_hex(8)}"
        sim.add_instance(instance_id, token, **config)
        conn = {
            "conn_type": "green_api",
            "host": sim.url,
            "login": instance_id,
            "password": token,
            "extra": {"state_timeout": 1, "reboot_timeout": 2, "send_timeout": 2, **(extra or {})},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return SimInstance(conn_id, instance_id, token)

    return create


@pytest.fixture
def add_contact(db: psycopg.Connection[Any]):
    def add(name: str, phone: str, priority: int = 1, active: bool = True) -> int:
        row = db.execute(
            "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority, is_active)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (name, phone, priority, active),
        ).fetchone()
        assert row is not None
        return int(row[0])

    return add

"""Shared fixtures: the real simulator over HTTP, the real PostgreSQL health database.

`make test` exports the environment these need (scripts/env.sh test): a migrated Airflow
metadata database, the health database ``green_api_test`` and Airflow's folders.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from greenapi_simulator import GreenApiSimulator

_ids = itertools.count(1)


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the tests with `make test`, which sets up PostgreSQL and Airflow")
    return value


def tagged(name: str) -> str:
    """A database name of the suite, suffixed like scripts/env.sh does with GREEN_API_DB_TAG, so
    that two checkouts can run their suites side by side on one server."""
    tag = os.environ.get("GREEN_API_DB_TAG", "")
    return f"{name}_{tag}" if tag else name


@pytest.fixture(scope="session")
def sim_server() -> Iterator[GreenApiSimulator]:
    with GreenApiSimulator() as server:
        yield server


# Every token the tests create looks like this (make_instance), so a scan can look for all of them.
TOKEN_PATTERN = re.compile(r"TOKEN-SECRET-[0-9a-f]{16}")
# Where a token was seen in what a test printed or made the simulator deliver: scanned at the end
# of the suite by tests/test_zz_no_token_left.py with everything the suite wrote.
TOKENS_SEEN: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for section, content in report.sections:
        if TOKEN_PATTERN.search(content):
            TOKENS_SEEN.append(f"{report.nodeid}: {section}")


@pytest.fixture
def sim(sim_server: GreenApiSimulator, request: pytest.FixtureRequest) -> Iterator[GreenApiSimulator]:
    sim_server.reset()
    yield sim_server
    delivered = json.dumps([sim_server.requests_log(), sim_server.messages(), sim_server.reboots()])
    if TOKEN_PATTERN.search(delivered):
        TOKENS_SEEN.append(f"{request.node.nodeid}: what the simulator received (messages, bodies)")


@pytest.fixture(autouse=True)
def no_daily_reboot(monkeypatch: pytest.MonkeyPatch) -> None:
    """No daily reboot, hence no settle window (``settle_window_start``) silencing failing checks.

    The window follows a run's logical time: with the default schedule (03:00 in Paris) a check
    run between 02:00 and 02:10 UTC alerts nobody, and any other fixed time would meet the logical
    times of some test (``dag.test()`` runs at the current time unless given one). A disabled
    schedule has no window, so no test depends on the hour it runs at. Tests of the schedule and
    of the window set their own.
    """
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE", json.dumps({"enabled": False}))


@pytest.fixture
def reboot_schedule_away_from_now(monkeypatch: pytest.MonkeyPatch) -> str:
    """A daily reboot 12 hours from now, for a real scheduler: its runs happen at the current time."""
    at = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE", json.dumps({"time": at, "timezone": "UTC"}))
    return at


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

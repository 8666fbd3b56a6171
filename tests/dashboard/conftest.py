"""Airflow's own API server app in-process, with the simple auth manager and real logins."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

USER, PASSWORD = "oncall", "pw-oncall-Zq81"
_runs = itertools.count(1)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def api(monkeypatch_module: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    monkeypatch_module.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch_module.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"{USER}:viewer")
    monkeypatch_module.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    monkeypatch_module.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "dashboard-tests-" + "k" * 64)
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app(apps="core")) as client:
        yield client


@pytest.fixture(scope="module")
def token(api) -> str:
    response = api.post("/auth/token", json={"username": USER, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def get(api, token, db):
    """GET as the logged-in on-call user; the health database starts empty."""

    def call(path: str, **kwargs: Any):
        return api.get(path, headers={"Authorization": f"Bearer {token}"}, **kwargs)

    return call


def log_check(
    db: psycopg.Connection[Any],
    instance_id: str,
    minutes_ago: float,
    status: str = "healthy",
    *,
    state: str | None = "authorized",
    response_ms: int | None = 200,
    error: str | None = None,
    reboot: bool = False,
    notified: bool = False,
    in_window: bool = False,
    trigger_type: str = "automatic",
    incident_id: int | None = None,
    run_id: str | None = None,
    queue: int | None = None,
    socket: str | None = None,
    settings: str | None = None,
    at: datetime | None = None,
) -> int:
    """One row of green_api_health_logs, as the health-check DAG writes it; returns its id.

    ``queue``, ``socket`` and ``settings`` are what the check read beyond the state (the outgoing
    queue's length, ``online``/``offline``, ``match``/``drift``); ``at`` replaces ``minutes_ago``.
    """
    at = at or datetime.now(UTC) - timedelta(minutes=minutes_ago)
    row = db.execute(
        "INSERT INTO green_api_health_logs (checked_at, status, state_instance, error_message, reboot_triggered,"
        " reboot_success, response_time_ms, support_notified, trigger_type, instance_id, connection_id, dag_id,"
        " run_id, incident_id, in_maintenance_window, queue_length, socket_status, settings_status)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'green_api_health_check', %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (at, status, state, error, reboot, True if reboot else None, response_ms, notified, trigger_type,
         instance_id, f"conn_{instance_id}", run_id or f"run_{next(_runs)}", incident_id, in_window,
         queue, socket, settings),
    ).fetchone()
    assert row is not None
    return int(row[0])

"""Airflow's UI data, its REST API and this package's pages refuse anonymous visitors, with the
authentication `make run` uses (airflow standalone's defaults) and the one docker-compose.yaml
sets (read from the file itself), each on a real `airflow api-server`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import requests
import yaml

from tests.airflow_services import api_server

pytestmark = pytest.mark.faults
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a-long-test-password-9f2c"
JWT_SECRET = "anonymous-test-" + "j" * 48

# Every way in that carries data or acts: nothing answers without a login.
PROBES = [
    ("GET", "/api/v2/dags"),
    ("GET", "/api/v2/connections"),
    ("GET", "/api/v2/variables"),
    ("GET", "/api/v2/dags/green_api_health_check/dagRuns"),
    ("POST", "/api/v2/dags/green_api_health_check/dagRuns"),
    ("PATCH", "/api/v2/dags/green_api_health_check"),
    ("GET", "/ui/dags"),
    ("GET", "/green-api/"),
    ("GET", "/green-api/api/instances"),
    ("GET", "/green-api/api/checks"),
    ("GET", "/green-api/charts/24h.svg"),
]


def make_run_env(folder: Path) -> dict[str, str]:
    """As scripts/run.sh leaves it: standalone's simple auth manager, admin password generated."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER")}
    env.pop("AIRFLOW__CORE__AUTH_MANAGER", None)
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(folder / "passwords.json.generated")
    env["AIRFLOW__API_AUTH__JWT_SECRET"] = JWT_SECRET
    return env


def compose_env(folder: Path) -> dict[str, str]:
    """docker-compose.yaml's authentication settings, with .env's values and this machine's paths."""
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    common = compose["x-airflow-common"]["environment"]
    keys = [k for k in common if k.startswith(("AIRFLOW__CORE__SIMPLE_AUTH", "AIRFLOW__CORE__AUTH_MANAGER"))]
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in keys  # never "everyone is admin"
    dot_env = {"AIRFLOW_ADMIN_USER": "admin", "AIRFLOW_JWT_SECRET": JWT_SECRET}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER")}
    for key in keys:
        env[key] = re.sub(r"\$\{(\w+)(?::-([^}]*))?[^}]*\}", lambda m: dot_env.get(m[1], m[2] or ""), str(common[key]))
    # docker/init.sh writes the passwords file from AIRFLOW_ADMIN_PASSWORD; here, in a folder of the test's.
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(folder / "passwords.json")
    (folder / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    env["AIRFLOW__API_AUTH__JWT_SECRET"] = re.sub(
        r"\$\{(\w+)[^}]*\}", lambda m: dot_env[m[1]], common["AIRFLOW__API_AUTH__JWT_SECRET"]
    )
    return env


@pytest.mark.parametrize("way", ["make run", "docker compose"])
def test_anonymous_visitors_get_nothing(tmp_path, way):
    env = make_run_env(tmp_path) if way == "make run" else compose_env(tmp_path)
    with api_server(env, tmp_path) as url:
        refused = {}
        for method, path in PROBES:
            answer = requests.request(method, url + path, json={}, timeout=10, allow_redirects=False)
            refused[(method, path)] = answer.status_code
        # The login itself works: the refusals are the authentication's, not a broken server's.
        password = PASSWORD if way == "docker compose" else json.loads(
            (tmp_path / "passwords.json.generated").read_text())["admin"]  # fmt: skip
        token = requests.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=10)
        assert token.status_code == 201, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert requests.get(f"{url}/api/v2/dags", headers=headers, timeout=10).status_code == 200
        assert requests.get(f"{url}/green-api/api/instances", headers=headers, timeout=10).status_code != 401
    assert {probe: code for probe, code in refused.items() if code not in (401, 403)} == {}

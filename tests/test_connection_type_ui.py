"""The "Green API" connection type as the Airflow UI sees it: its form and its Test button.

Uses Airflow's own API server app in-process (the same FastAPI app `airflow api-server` serves).
"""

from __future__ import annotations

import re

import pytest


@pytest.fixture(scope="module")
def api(monkeypatch_module):
    monkeypatch_module.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    monkeypatch_module.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app(apps="core")) as client:
        yield client


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_form_has_labelled_fields_and_timeouts(api):
    response = api.get("/ui/connections/hook_meta")
    assert response.status_code == 200
    [meta] = [m for m in response.json() if m["connection_type"] == "greenapi"]
    assert meta["hook_name"] == "Green API"
    fields = meta["standard_fields"]
    assert fields["host"]["title"] == "API URL (apiUrl)"
    assert fields["login"]["title"] == "Instance id (idInstance)"
    assert fields["password"]["title"] == "API token (apiTokenInstance)"
    assert fields["port"]["hidden"] is True
    assert meta["extra_fields"]["state_timeout"]["schema"]["default"] == 10


def test_test_button_reports_the_instance_state(api, sim, make_instance):
    inst = make_instance(state="yellowCard")
    body = {"connection_id": "ui_test", "conn_type": "greenapi", "host": sim.url, "login": inst.instance_id,
            "password": inst.token}
    response = api.post("/api/v2/connections/test", json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["status"] is True
    assert re.fullmatch(rf"Instance {inst.instance_id} answered in \d+ ms: state 'yellowCard'", result["message"])
    assert len(sim.requests_log(inst.instance_id, "getStateInstance")) == 1


def test_test_button_names_a_wrong_token_without_echoing_it(api, sim, make_instance):
    inst = make_instance()
    body = {"connection_id": "ui_test", "conn_type": "greenapi", "host": sim.url, "login": inst.instance_id,
            "password": "TOKEN-SECRET-wrong"}
    result = api.post("/api/v2/connections/test", json=body).json()
    assert result["status"] is False
    assert result["message"].startswith(f"Instance {inst.instance_id}: HTTP 401")
    assert "TOKEN-SECRET-wrong" not in result["message"]


def test_the_partner_type_has_its_form_and_its_test_button_lists_the_account(api, sim, make_partner):
    response = api.get("/ui/connections/hook_meta")
    [meta] = [m for m in response.json() if m["connection_type"] == "greenapipartner"]
    assert meta["hook_name"] == "Green API partner"
    assert meta["standard_fields"]["host"]["title"] == "Partner API URL (partnerApiUrl)"
    assert meta["standard_fields"]["password"]["title"] == "Partner token (partnerToken)"
    assert meta["standard_fields"]["login"]["hidden"] is True
    assert meta["extra_fields"]["partner_timeout"]["schema"]["default"] == 30
    partner = make_partner(count=4)
    body = {"connection_id": "ui_partner_test", "conn_type": "greenapipartner", "host": sim.url,
            "password": partner.token, "extra": '{"api_url": "' + sim.url + '"}'}
    result = api.post("/api/v2/connections/test", json=body).json()
    assert result["status"] is True, result
    assert re.fullmatch(r"Partner account listed in \d+ ms: 4 live instance\(s\) \(4 whatsapp\), 0 deleted",
                        result["message"])  # fmt: skip
    wrong = api.post("/api/v2/connections/test", json={**body, "password": "TOKEN-SECRET-wrongpartner"}).json()
    assert wrong["status"] is False and "HTTP 401: the partner token was refused" in wrong["message"]
    assert "TOKEN-SECRET" not in wrong["message"]

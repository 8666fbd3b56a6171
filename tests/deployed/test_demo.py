"""The first thing a newcomer runs: `make run` without credentials (demo mode), here with
UI_HOST=0.0.0.0, the documented way to open the UI to the network.

The demo starts its simulator, its connections and Variable land in Airflow's lists, the first
scheduled health check succeeds and logs both demo instances in the demo's own database, the
demo's failing instance alerts the demo contacts through the alert sender, and the UI listens on
every interface, as asked.
"""

from __future__ import annotations

import json

import psycopg
import pytest
import requests

from tests.airflow_services import free_port, wait_for
from tests.conftest import require_env, tagged
from tests.deployed.conftest import descendants, finished, listening, make_run, recreate

pytestmark = pytest.mark.deployed


def test_the_demo_runs_its_first_check_and_ui_host_opens_the_ui_to_the_network(tmp_path):
    server = require_env("GREEN_API_DB_URL").rsplit("/", 1)[0]
    health_url = recreate(server, tagged("green_api_demo_test"))
    metadata_db = tagged("green_api_airflow_demo_test")
    recreate(server, metadata_db)
    sim_port = free_port()
    settings = {"UI_HOST": "0.0.0.0", "SIM_PORT": str(sim_port), "GREEN_API_DEMO_DB": tagged("green_api_demo_test"),
                "GREEN_API_ENV_FILE": str(tmp_path / "no-such-env-file")}  # fmt: skip
    with make_run(tmp_path, metadata_db, health_url, **settings) as demo:
        run = wait_for(lambda: finished(demo, "green_api_health_check", "scheduled"), 240, "the demo's first check")
        log = demo.log.read_text(errors="replace")
        assert run[1] == "success", log[-5000:]
        assert "DEMO MODE: no credentials" in log
        port = demo.url.rsplit(":", 1)[1]
        assert f"0.0.0.0:{port}" in listening(descendants(demo.proc.pid))
        assert "listening on 0.0.0.0: anyone who reaches this machine's port" in log

        headers = {"Authorization": f"Bearer {demo.token()}"}
        conns = requests.get(f"{demo.url}/api/v2/connections", headers=headers, timeout=10).json()["connections"]
        assert {c["connection_id"] for c in conns} == {"green_api_default", "green_api_flaky", "green_api_alerts",
                                                        "green_api_partner", "green_api_db"}  # fmt: skip
        variable = requests.get(f"{demo.url}/api/v2/variables/green_api_instances", headers=headers, timeout=10)
        assert json.loads(variable.json()["value"]) == ["green_api_default", "green_api_flaky",
                                                        {"partner": "green_api_partner"}]  # fmt: skip

        with psycopg.connect(health_url) as conn:
            rows = conn.execute("SELECT instance_id, status, instance_name FROM green_api_health_logs"
                                " WHERE run_id = %s ORDER BY instance_id", (run[0],)).fetchall()  # fmt: skip
        # The demo's small partner account: three instances with no connection each, named by the account.
        assert rows == [("1101000001", "healthy", None), ("1101000002", "unhealthy", None),
                        ("1101100001", "healthy", "Client 001"), ("1101100002", "healthy", "Client 002"),
                        ("1101100003", "healthy", "Client 003")]  # fmt: skip
        messages = requests.get(f"http://127.0.0.1:{sim_port}/_sim/messages", timeout=10).json()
        assert {(m["instance_id"], m["chatId"]) for m in messages} == {("1101000009", "33600000001@c.us")}
        [not_authorized] = [m["message"] for m in messages if "📱 Instance: 1101000002" in m["message"]]
        assert f"🔗 Dashboard: http://localhost:{port}/green-api/" in not_authorized
        # The third partner instance's subscription ends in 2 days: one warning, no reboot.
        [expiring] = [m["message"] for m in messages if "📱 Instance: 1101100003 (Client 003)" in m["message"]]
        assert "📅 *ABONNEMENT BIENTÔT EXPIRÉ*" in expiring

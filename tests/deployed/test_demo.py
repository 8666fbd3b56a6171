"""The first thing a newcomer runs: `make run` without credentials (demo mode), here with
UI_HOST=0.0.0.0, the documented way to open the UI to the network.

The demo starts its simulator, its connections and Variable land in Airflow's lists, the first
scheduled health check succeeds and logs both demo instances in the demo's own database, the
demo's failing instance alerts the demo contacts through the alert sender, and the UI listens on
every interface, as asked. An instances file (GREEN_API_INSTANCES_FILE: two instances of the
test's simulator) joins the demo's at the start: connections, list and first check. Then more are
added, listed and removed through the REST API with `python -m greenapi.instances`, as a user adds
a fleet to a running `make run`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from greenapi.instances.__main__ import main as instances
from tests.airflow_services import free_port, wait_for
from tests.conftest import require_env, tagged
from tests.deployed.conftest import Deployment, descendants, finished, listening, make_run, recreate

pytestmark = pytest.mark.deployed
DEMO_LIST = ["green_api_default", "green_api_flaky", {"partner": "green_api_partner"}]
FILE_IDS = ["1101000081", "1101000082"]  # the instances file's, in the test's simulator
FILE_CONNS = [f"green_api_{i}" for i in FILE_IDS]


@pytest.fixture
def instances_file(sim: Any) -> Iterator[tuple[Path, list[str]]]:
    """An instances.yaml of two instances of the test's simulator (their tokens outside the folders
    the leak scan reads, as a user's file is), and the tokens."""
    folder = Path(tempfile.mkdtemp(prefix="green-api-instances-"))
    tokens = [f"TOKEN-SECRET-{os.urandom(8).hex()}" for _ in FILE_IDS]
    lines = []
    for n, (ident, token) in enumerate(zip(FILE_IDS, tokens, strict=True), 1):
        sim.add_instance(ident, token)
        lines += [f"- id: {ident}", f"  token: {token}", f"  api_url: {sim.url}", f"  name: Shop {n}"]
    (folder / "instances.yaml").write_text("\n".join(lines) + "\n")
    try:
        yield folder / "instances.yaml", tokens
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_demo_runs_its_first_check_and_ui_host_opens_the_ui_to_the_network(tmp_path, capfd, instances_file):
    server = require_env("GREEN_API_DB_URL").rsplit("/", 1)[0]
    health_url = recreate(server, tagged("green_api_demo_test"))
    metadata_db = tagged("green_api_airflow_demo_test")
    recreate(server, metadata_db)
    sim_port = free_port()
    settings = {"UI_HOST": "0.0.0.0", "SIM_PORT": str(sim_port), "GREEN_API_DEMO_DB": tagged("green_api_demo_test"),
                "GREEN_API_ENV_FILE": str(tmp_path / "no-such-env-file"),
                "GREEN_API_INSTANCES_FILE": str(instances_file[0])}  # fmt: skip
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
                                                        "green_api_partner", "green_api_db", *FILE_CONNS}  # fmt: skip
        variable = requests.get(f"{demo.url}/api/v2/variables/green_api_instances", headers=headers, timeout=10)
        assert json.loads(variable.json()["value"]) == DEMO_LIST + FILE_CONNS  # the file's after the demo's
        assert f"{instances_file[0]}: 2 instance(s): 2 added" in log

        with psycopg.connect(health_url) as conn:
            rows = conn.execute("SELECT instance_id, status, instance_name FROM green_api_health_logs"
                                " WHERE run_id = %s ORDER BY instance_id", (run[0],)).fetchall()  # fmt: skip
        # The demo's small partner account: three instances with no connection each, named by the account.
        # The file's instances are checked from the first run, named: the file's name is also the
        # connection's extra "name" (a task never gets a connection's description).
        assert rows == [("1101000001", "healthy", None), ("1101000002", "unhealthy", None),
                        ("1101000081", "healthy", "Shop 1"), ("1101000082", "healthy", "Shop 2"),
                        ("1101100001", "healthy", "Client 001"), ("1101100002", "healthy", "Client 002"),
                        ("1101100003", "healthy", "Client 003")]  # fmt: skip
        messages = requests.get(f"http://127.0.0.1:{sim_port}/_sim/messages", timeout=10).json()
        assert {(m["instance_id"], m["chatId"]) for m in messages} == {("1101000009", "33600000001@c.us")}
        [not_authorized] = [m["message"] for m in messages if "📱 Instance: 1101000002" in m["message"]]
        assert f"🔗 Dashboard: http://localhost:{port}/green-api/" in not_authorized
        # The third partner instance's subscription ends in 2 days: one warning, no reboot.
        [expiring] = [m["message"] for m in messages if "📱 Instance: 1101100003 (Client 003)" in m["message"]]
        assert "📅 *ABONNEMENT BIENTÔT EXPIRÉ*" in expiring

        add_remove_and_list_instances(demo, sim_port, headers, capfd)
        log = demo.log.read_text(errors="replace")
        assert [t for t in instances_file[1] if t in log] == []


def add_remove_and_list_instances(demo: Deployment, sim_port: int, headers: dict[str, str], capfd: Any) -> None:
    """Three instances of the demo's simulator (made through its control API) added from a file by
    the CLI against the running Airflow: listed after the demo's, a second add changes nothing,
    `list` shows them, `remove` takes one out; no token printed, logged or in Airflow's audit log."""
    sim = f"http://127.0.0.1:{sim_port}"
    ids = ["1101000071", "1101000072", "1101000073"]
    tokens = [f"TOKEN-SECRET-{os.urandom(8).hex()}" for _ in ids]
    for ident, token in zip(ids, tokens, strict=True):
        assert requests.put(f"{sim}/_sim/instances/{ident}", json={"token": token}, timeout=10).ok
    folder = Path(tempfile.mkdtemp(prefix="green-api-instances-"))  # tokens: outside the leak scan's folders
    try:
        path = folder / "instances.csv"
        path.write_text("id,token,api_url,name\n" + "".join(
            f"{i},{t},{sim},Shop {n}\n" for n, (i, t) in enumerate(zip(ids, tokens, strict=True), 1)))  # fmt: skip
        env = {**os.environ, "GREEN_API_AIRFLOW_URL": demo.url, "GREEN_API_AIRFLOW_HOME": str(demo.home)}
        added = subprocess.run([sys.executable, "-m", "greenapi.instances", "add", str(path)], env=env,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        assert (added.returncode, added.stdout.splitlines()) == (0, [
            f"{path}: 3 instance(s): 3 added", "Variable green_api_instances: 3 connection id(s) added (8 entries)"
        ]), added.stderr  # fmt: skip
        where = ["--url", demo.url, "--password", json.loads((demo.home / "simple_auth_manager_passwords.json.generated"
                                                              ).read_text())["admin"]]  # fmt: skip
        outputs = [added.stdout + added.stderr]
        capfd.readouterr()
        for argv, said in [
            (["add", str(path)], f"{path}: 3 instance(s): 3 unchanged"),
            (["list"], f"1101000072 green_api_1101000072 Shop 2 127.0.0.1:{sim_port} yes"),
            (["remove", "1101000072"], "1 removed: green_api_1101000072"),
        ]:  # fmt: skip
            assert instances([argv[0], *where, *argv[1:]]) == 0
            printed = capfd.readouterr()
            outputs.append(printed.out + printed.err)
            assert said in [" ".join(line.split()) for line in printed.out.splitlines()], printed
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    variable = requests.get(f"{demo.url}/api/v2/variables/green_api_instances", headers=headers, timeout=10).json()
    assert json.loads(variable["value"]) == DEMO_LIST + FILE_CONNS + ["green_api_1101000071", "green_api_1101000073"]
    conn = requests.get(f"{demo.url}/api/v2/connections/green_api_1101000071", headers=headers, timeout=10).json()
    assert (conn["login"], conn["host"], conn["description"], conn["password"]) == ("1101000071", sim, "Shop 1", "***")
    gone = requests.get(f"{demo.url}/api/v2/connections/green_api_1101000072", headers=headers, timeout=10)
    assert gone.status_code == 404
    audit = [str(row) for row in demo.rows("SELECT extra FROM log WHERE event IN ('bulk_connections', 'bulk_variables')")]
    assert audit  # Airflow's audit log has the bulk writes, their secrets masked
    seen = "\n".join([*outputs, *audit, demo.log.read_text(errors="replace")])
    assert [t for t in tokens if t in seen] == []

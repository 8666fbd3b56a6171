"""Network faults in whole health-check runs: each ends in the right status, within the timeout,
with a reboot only where one is right, and the run never hangs."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.airflow_services import free_port
from tests.e2e.conftest import log_rows, run_dag
from tests.e2e.test_health_check_dag import FAST
from tests.faults.conftest import Watcher

pytestmark = pytest.mark.faults
SUPPORT = "33600000001@c.us"


@pytest.fixture
def support(add_contact, make_instance, monkeypatch):
    add_contact("Support", SUPPORT, 1)
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps(FAST))
    return make_instance("green_api_alerts")


def alerts_sent(sim, sender) -> list[str]:
    return [m["message"] for m in sim.messages(sender.instance_id) if m["chatId"] == SUPPORT]


@pytest.mark.parametrize(
    ("fault", "status", "reboots", "error"),
    [
        pytest.param({"mode": "reset", "times": 2}, "rebooted", 1, "Connection error: connection reset by peer",
                     id="connection-reset"),
        pytest.param({"mode": "trickle", "interval_ms": 400, "times": 2}, "rebooted", 1,
                     "Connection timeout", id="trickle-past-timeout"),
        pytest.param({"mode": "big", "bytes": 50 * 1024 * 1024}, "unhealthy", 0,
                     "response body larger than 1048576 bytes", id="50-MB-body"),
        pytest.param({"mode": "non_utf8"}, "unhealthy", 0, "Malformed answer: body is not UTF-8", id="non-UTF-8"),
        pytest.param({"mode": "redirect", "location": "http://127.0.0.2:9/elsewhere"}, "unhealthy", 0,
                     "HTTP 302", id="redirect-to-another-host"),
    ],
)  # fmt: skip
def test_a_network_fault_ends_in_the_right_status_in_time(
    health_dag, make_instance, sim, db, support, fault, status, reboots, error
):
    inst = make_instance(faults={"getStateInstance": fault}, starting_seconds=1)
    started = time.monotonic()
    outcome = run_dag(health_dag)
    took = time.monotonic() - started
    [row] = log_rows(db)
    assert row["status"] == status, row
    assert error in row["error_message"]
    assert row["response_time_ms"] < 1500  # the connection's state_timeout is 1 s
    assert len(sim.reboots(inst.instance_id)) == reboots
    if status == "unhealthy":  # no reboot for an answer that is wrong, but support is told
        assert alerts_sent(sim, support) and f"📱 Instance: {inst.instance_id}" in alerts_sent(sim, support)[0]
        assert row["alert_type"] == "invalid_response" or "HTTP 302" in row["error_message"]
    else:  # no answer: rebooted, back to "authorized", nothing to tell
        assert alerts_sent(sim, support) == []
    assert outcome.state == "success", outcome.tasks
    assert took < 60


@pytest.fixture
def doomed_simulator():
    """A simulator in a process of its own, for the test to kill."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "greenapi_simulator", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{url}/_sim/health", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            time.sleep(0.1)
    yield proc, url
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_the_simulator_killed_mid_check_is_a_failure_found_in_time(
    health_dag, sim, db, support, doomed_simulator, monkeypatch
):
    proc, url = doomed_simulator
    instance_id, token = "7799000001", "TOKEN-SECRET-" + secrets.token_hex(8)
    requests.put(f"{url}/_sim/instances/{instance_id}", timeout=5,
                 json={"token": token, "faults": {"getStateInstance": {"mode": "hang", "seconds": 60}}}).raise_for_status()  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DEFAULT", json.dumps({
        "conn_type": "greenapi", "host": url, "login": instance_id, "password": token,
        "extra": {"state_timeout": 10, "reboot_timeout": 5},
    }))  # fmt: skip

    def in_flight() -> bool:
        log = requests.get(f"{url}/_sim/requests", params={"method": "getStateInstance"}, timeout=2).json()
        return bool(log)

    watcher = Watcher(in_flight, lambda: os.kill(proc.pid, signal.SIGKILL))
    watcher.start()
    started = time.monotonic()
    outcome = run_dag(health_dag)
    took = time.monotonic() - started
    watcher.result()
    [row] = log_rows(db)
    # The cut connection is found at once, not after the 10 s timeout; the reboot is tried and
    # fails (nobody listens any more), and support is told it is down.
    assert row["status"] == "critical_failure"
    assert row["error_message"] == (
        "Primary: Connection error: server closed the connection without answering"
        " | Reboot: Connection error: connection refused"
    )
    assert row["response_time_ms"] < 5000
    assert (row["reboot_triggered"], row["reboot_success"]) == (True, False)
    [alert] = alerts_sent(sim, support)
    assert f"📱 Instance: {instance_id}" in alert
    assert outcome.state == "success", outcome.tasks
    assert took < 60

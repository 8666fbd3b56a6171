"""As root, a clone in a 0700 home directory and no PostgreSQL answering: make's private cluster
lives outside the checkout, in a directory of the account that runs it (issue 16)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.airflow_services import free_port
from tests.e2e.conftest import run_dag
from tests.faults.conftest import rows_of
from tests.test_ensure_postgres import REPO, SCRIPT, clean_env, load_script, parse_exports

pytestmark = pytest.mark.faults


@pytest.fixture
def root_home_clone():
    """A clone of this repository in a 0700 directory, as /root is (its script: the one under test)."""
    if os.geteuid() != 0:
        pytest.fail("this test is about running as root: run the suite as root (as CI does)")
    home = Path(tempfile.mkdtemp(prefix="root_home_", dir="/tmp"))
    home.chmod(0o700)
    clone = home / "green-api-health"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    shutil.copy2(SCRIPT, clone / "scripts" / "ensure_postgres.py")  # the working tree's, committed or not
    try:
        yield clone
    finally:
        ensure(clone, "--remove")
        shutil.rmtree(home, ignore_errors=True)


def ensure(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(clone / "scripts" / "ensure_postgres.py"), *args],
                          capture_output=True, text=True, env=clean_env(), timeout=240, check=False)  # fmt: skip


def test_as_root_in_a_private_home_the_cluster_lives_outside_the_checkout_and_logs_a_check(
    root_home_clone, health_dag, make_instance, sim, monkeypatch
):  # fmt: skip
    clone, port = root_home_clone, str(free_port())
    # No server on the port make would use: the private cluster (what make does when none answers).
    args = ("--force-private", "--port", port, "--health-db", "green_api", "--airflow-db", "airflow")
    first = ensure(clone, *args)
    assert first.returncode == 0, first.stderr
    data = load_script().outside_pgdata(clone)
    assert data.parent == Path("/var/lib/green-api-health") and data.name.startswith("green-api-health-")
    assert f"the private cluster's data goes in {data}" in first.stderr  # make says where it is
    assert not (clone / ".pgdata").exists()
    owner = pwd.getpwuid(data.stat().st_uid).pw_name
    assert owner != "root" and (data / "PG_VERSION").is_file() and data.stat().st_mode & 0o777 == 0o700
    exports = parse_exports(first.stdout)
    url = exports["GREEN_API_DB_URL"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
        psycopg.connect(f"postgresql://intruder@127.0.0.1:{port}/green_api", connect_timeout=3).close()

    # The schema, then one health-check run logged there.
    subprocess.run([sys.executable, "-m", "greenapi.migrate", "--url", url], check=True, capture_output=True)
    with psycopg.connect(url) as conn:  # a run with nobody to alert reports it as a failure
        conn.execute("INSERT INTO system_support_contacts (full_name, phone_number, notification_priority)"
                     " VALUES ('Support', '33600000001@c.us', 1)")  # fmt: skip
    inst = make_instance()
    make_instance("green_api_alerts")
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DB", url)
    outcome = run_dag(health_dag)
    assert outcome.state == "success", outcome.tasks
    [row] = rows_of(url, outcome.run_id)
    assert (row["instance_id"], row["status"]) == (inst.instance_id, "healthy")

    # Stopped and run again: the same directory, the data kept.
    assert ensure(clone, "--stop").returncode == 0
    again = ensure(clone, *args)
    assert again.returncode == 0, again.stderr
    assert f"(data in {data})" in again.stderr
    assert [r["run_id"] for r in rows_of(url, outcome.run_id)] == [outcome.run_id]

    removed = ensure(clone, "--remove")
    assert removed.returncode == 0, removed.stderr
    assert not data.exists()

"""`make migrate` applies the schema to the database the DAGs write to: the one that
AIRFLOW_CONN_GREEN_API_DB names, in .env or in the environment, and creates no other.

Your server is a PostgreSQL of this test process's own (``private_pg``): on the machine's server,
the suite's other processes create databases at the same time."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.private_postgres import PrivatePostgres

pytestmark = pytest.mark.deployed
ROOT = Path(__file__).resolve().parents[2]


def databases(server: str) -> set[str]:
    with psycopg.connect(f"{server}/postgres") as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


@pytest.mark.parametrize("where", ["env file", "environment"])
def test_make_migrate_applies_the_schema_to_your_own_database(tmp_path, where, private_pg: PrivatePostgres):
    server = private_pg.url.rsplit("/", 1)[0]
    mine, metadata = f"mydb_{uuid.uuid4().hex[:8]}", f"meta_{uuid.uuid4().hex[:8]}"
    before = databases(server)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GREEN_API_"))}
    env |= {"GREEN_API_AIRFLOW_DB": metadata, "GREEN_API_ENV_FILE": str(tmp_path / "env")}
    if where == "env file":
        (tmp_path / "env").write_text(f"AIRFLOW_CONN_GREEN_API_DB={server}/{mine}\n")
    else:
        env["AIRFLOW_CONN_GREEN_API_DB"] = f"{server}/{mine}"
    try:
        done = subprocess.run(["make", "-s", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "migrate: applied" in done.stdout and "up to date" not in done.stdout
        with psycopg.connect(f"{server}/{mine}") as conn:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"green_api_health_logs", "system_support_contacts", "green_api_incidents"} <= tables
        # No other health database on that server: only yours, and Airflow's own metadata database.
        assert databases(server) - before == {mine, metadata}
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            for name in (mine, metadata):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

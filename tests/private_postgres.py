"""A PostgreSQL cluster of a test process's own: a server that tests may stop and start, and on
which no other test process creates anything (the suite's processes share the machine's server)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.airflow_services import free_port
from tests.test_ensure_postgres import load_script

HEALTH_DB = "green_api_faults"


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the tests' own, holding a migrated health database."""

    pgdata: Path
    port: int
    url: str

    def _ctl(self, *args: str) -> None:
        ep = load_script()
        user = ep.run_user(self.pgdata)
        done = ep.run(user, [str(ep.require_bindir() / "pg_ctl"), *args, "-D", str(self.pgdata)], 90)
        assert done.returncode == 0, done.stderr or done.stdout

    def stop(self) -> None:
        """Stopped as a crash or a kill would: every session is cut at once."""
        self._ctl("stop", "-m", "immediate", "-w")

    def start(self) -> None:
        self._ctl("start", "-w", "-t", "30", "-l", str(self.pgdata / "server.log"))

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=2)

    def answers(self) -> bool:
        try:
            self.connect().close()
            return True
        except psycopg.OperationalError:
            return False


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    ep = load_script()
    base = Path(tempfile.mkdtemp(prefix="green_api_faults_pg_", dir="/tmp"))
    base.chmod(0o755)  # as root, the cluster runs as an unprivileged account that must reach it
    pgdata, port = base / "pgdata", free_port()
    ep.private_server(pgdata, port)
    admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {HEALTH_DB}")
    url = f"postgresql://postgres@127.0.0.1:{port}/{HEALTH_DB}"
    subprocess.run([sys.executable, "-m", "greenapi.migrate", "--url", url], check=True, capture_output=True)
    try:
        yield PrivatePostgres(pgdata, port, url)
    finally:
        ep.stop_private(pgdata)
        shutil.rmtree(base, ignore_errors=True)

"""Tests for scripts/ensure_postgres.py against real PostgreSQL servers."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "ensure_postgres.py"
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
EXPECTED_NAMES = {
    "GREEN_API_PG_HOST",
    "GREEN_API_PG_PORT",
    "GREEN_API_PG_USER",
    "GREEN_API_PG_PASSWORD",
    "GREEN_API_PG_SOURCE",
}


def load_script() -> ModuleType:
    """Import the script as a module (it lives outside any package)."""
    if "ensure_postgres" in sys.modules:
        return sys.modules["ensure_postgres"]
    spec = importlib.util.spec_from_file_location("ensure_postgres", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ensure_postgres"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without variables that steer the script."""
    env = {k: v for k, v in os.environ.items() if k not in {"AIRFLOW_CONN_GREEN_API_DB", "GREEN_API_PG_PORT"}}
    env.update(extra)
    return env


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the script with the project interpreter and capture its output."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=120,
        check=False,
    )


def parse_exports(stdout: str) -> dict[str, str]:
    """Parse ``export NAME='value'`` lines, failing on anything else."""
    exports: dict[str, str] = {}
    for line in stdout.splitlines():
        words = shlex.split(line)
        assert len(words) == 2 and words[0] == "export", f"unexpected stdout line: {line!r}"
        name, _, value = words[1].partition("=")
        exports[name] = value
    return exports


def free_port() -> int:
    """Ask the kernel for a currently unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_server_answers() -> bool:
    """True if the machine's server accepts ``postgres`` on 127.0.0.1:5432."""
    try:
        with psycopg.connect(LOCAL_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def database_exists(name: str) -> bool:
    """True if database ``name`` exists on the local server."""
    with psycopg.connect(LOCAL_URL) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def select_one(url: str, query: str = "SELECT 1") -> int:
    """Connect to ``url`` and return the one value of ``query`` (by default ``SELECT 1``)."""
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture()
def local_server() -> None:
    """Skip when the machine has no server on 127.0.0.1:5432."""
    if not local_server_answers():
        pytest.skip("no PostgreSQL answering on 127.0.0.1:5432 as postgres")


@pytest.fixture()
def throwaway_db(local_server: None) -> Iterator[str]:
    """A unique database name, dropped from the local server afterwards."""
    name = f"ensure_pg_test_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(LOCAL_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture()
def pgdata() -> Iterator[Path]:
    """A data dir under /tmp that the unprivileged postgres account can reach."""
    base = Path(tempfile.mkdtemp(prefix="ensure_pg_", dir="/tmp"))
    base.chmod(0o755)  # root delegates to postgres/nobody, who must traverse it
    data = base / "pgdata"
    yield data
    run_script("--stop", "--pgdata", str(data))
    shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- parsing


def test_parses_airflow_uri_with_quoted_credentials() -> None:
    module = load_script()
    server = module.parse_airflow_conn("postgres://us%40er:p%2Fw%3Ax@db.example:6543/health")
    assert (server.host, server.port, server.user, server.password, server.dbname) == (
        "db.example",
        6543,
        "us@er",
        "p/w:x",
        "health",
    )
    assert server.url("health") == "postgresql://us%40er:p%2Fw%3Ax@db.example:6543/health"


def test_parses_airflow_json_form() -> None:
    module = load_script()
    value = json.dumps(
        {"conn_type": "postgres", "host": "h", "login": "u", "password": "p", "port": "5433", "schema": "d"}
    )
    server = module.parse_airflow_conn(value)
    assert (server.host, server.port, server.user, server.password, server.dbname) == (
        "h",
        5433,
        "u",
        "p",
        "d",
    )


def test_exports_are_shell_safe() -> None:
    module = load_script()
    server = module.Server("127.0.0.1", 5432, "postgres", "it's $HOME `x`", "configured")
    script = "\n".join(module.export_lines(server, ["green-api"]))
    result = subprocess.run(
        ["sh", "-c", f'{script}\nprintf "%s|%s" "$GREEN_API_PG_PASSWORD" "$GREEN_API_PG_URL_GREEN_API"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        result.stdout
        == "it's $HOME `x`|postgresql://postgres:it%27s%20%24HOME%20%60x%60@127.0.0.1:5432/green-api"
    )


# --------------------------------------------------------------------------- local server


def test_local_server_creates_database_idempotently(throwaway_db: str) -> None:
    first = run_script("--databases", throwaway_db)
    assert first.returncode == 0, first.stderr
    exports = parse_exports(first.stdout)
    assert exports["GREEN_API_PG_SOURCE"] == "local"
    assert exports["GREEN_API_PG_HOST"] == "127.0.0.1"
    assert exports["GREEN_API_PG_PORT"] == "5432"
    url = exports[f"GREEN_API_PG_URL_{throwaway_db.upper()}"]
    assert url.endswith(f"@127.0.0.1:5432/{throwaway_db}")
    assert set(exports) == EXPECTED_NAMES | {f"GREEN_API_PG_URL_{throwaway_db.upper()}"}
    assert database_exists(throwaway_db)
    assert select_one(url) == 1

    second = run_script("--databases", throwaway_db)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout


def test_recreate_starts_the_suites_databases_anew_and_never_a_configured_one(throwaway_db: str) -> None:
    assert run_script("--databases", throwaway_db).returncode == 0
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{throwaway_db}", autocommit=True) as conn:
        conn.execute("CREATE TABLE left_behind (x int)")
    assert run_script("--databases", throwaway_db).returncode == 0  # kept as it is
    assert select_one(f"postgresql://postgres@127.0.0.1:5432/{throwaway_db}", "SELECT count(*) FROM pg_tables"
                      " WHERE tablename = 'left_behind'") == 1  # fmt: skip
    assert run_script("--recreate", "--databases", throwaway_db).returncode == 0
    assert select_one(f"postgresql://postgres@127.0.0.1:5432/{throwaway_db}", "SELECT count(*) FROM pg_tables"
                      " WHERE tablename = 'left_behind'") == 0  # fmt: skip
    refused = run_script("--recreate", "--health-db", throwaway_db,
                         env=clean_env(AIRFLOW_CONN_GREEN_API_DB=f"postgresql://postgres@127.0.0.1:5432/{throwaway_db}"))
    assert refused.returncode == 1 and "--recreate never drops the databases of a configured server" in refused.stderr


# --------------------------------------------------------------------------- configured server


def test_configured_uri_is_used(throwaway_db: str) -> None:
    env = clean_env(AIRFLOW_CONN_GREEN_API_DB=LOCAL_URL)
    result = run_script("--databases", f"postgres,{throwaway_db}", env=env)
    assert result.returncode == 0, result.stderr
    exports = parse_exports(result.stdout)
    assert exports["GREEN_API_PG_SOURCE"] == "configured"
    assert exports["GREEN_API_PG_URL_POSTGRES"] == LOCAL_URL
    assert database_exists(throwaway_db)


def test_configured_json_is_used(local_server: None) -> None:
    conn = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "login": "postgres",
        "port": 5432,
        "schema": "postgres",
    }
    env = clean_env(AIRFLOW_CONN_GREEN_API_DB=json.dumps(conn))
    result = run_script("--databases", "postgres", env=env)
    assert result.returncode == 0, result.stderr
    assert parse_exports(result.stdout)["GREEN_API_PG_SOURCE"] == "configured"


def test_unreachable_configured_server_fails_without_leaking_password() -> None:
    port = free_port()
    password = "Sup3r-Secret-pw"
    env = clean_env(AIRFLOW_CONN_GREEN_API_DB=f"postgresql://green:{password}@127.0.0.1:{port}/green_api")
    result = run_script("--health-db", "green_api", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"127.0.0.1:{port}" in result.stderr
    assert password not in result.stderr


def test_configured_database_is_the_health_database_and_no_other_is_created(throwaway_db: str) -> None:
    # The DAGs write to the database that AIRFLOW_CONN_GREEN_API_DB names: that one is migrated,
    # and no green_api database appears beside it (it is created when missing).
    env = clean_env(AIRFLOW_CONN_GREEN_API_DB=f"postgresql://postgres@127.0.0.1:5432/{throwaway_db}")
    result = run_script("--health-db", "green_api_never_created", env=env)
    assert result.returncode == 0, result.stderr
    exports = parse_exports(result.stdout)
    assert exports["GREEN_API_DB_URL"] == f"postgresql://postgres@127.0.0.1:5432/{throwaway_db}"
    assert database_exists(throwaway_db)
    assert not database_exists("green_api_never_created")


def test_ignore_configured_keeps_the_configured_server_untouched(throwaway_db: str) -> None:
    env = clean_env(AIRFLOW_CONN_GREEN_API_DB=f"postgresql://nobody:x@127.0.0.1:{free_port()}/mine")
    result = run_script("--ignore-configured", "--health-db", throwaway_db, env=env)
    assert result.returncode == 0, result.stderr
    exports = parse_exports(result.stdout)
    assert exports["GREEN_API_PG_SOURCE"] == "local"
    assert exports["GREEN_API_DB_URL"].endswith(f"/{throwaway_db}")


def test_configured_url_without_a_database_is_refused_by_name(local_server: None) -> None:
    env = clean_env(AIRFLOW_CONN_GREEN_API_DB="postgresql://postgres@127.0.0.1:5432")
    result = run_script("--health-db", "green_api", env=env)
    assert result.returncode == 1 and result.stdout == ""
    assert "AIRFLOW_CONN_GREEN_API_DB names no database" in result.stderr


def test_airflow_database_is_created_and_marked_as_this_projects(throwaway_db: str) -> None:
    first = run_script("--airflow-db", throwaway_db)
    assert first.returncode == 0, first.stderr
    assert parse_exports(first.stdout)["GREEN_API_AIRFLOW_DB_URL"].endswith(f"/{throwaway_db}")
    with psycopg.connect(LOCAL_URL) as conn:
        mark = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                            (throwaway_db,)).fetchone()  # fmt: skip
    assert mark == (load_script().AIRFLOW_DB_MARK,)
    # Airflow's tables in it (our own install) are fine the next time.
    with psycopg.connect(LOCAL_URL.rsplit("/", 1)[0] + f"/{throwaway_db}", autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
    again = run_script("--airflow-db", throwaway_db)
    assert again.returncode == 0, again.stderr


def test_another_airflow_installs_database_is_refused(throwaway_db: str) -> None:
    with psycopg.connect(LOCAL_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(throwaway_db)))
    with psycopg.connect(LOCAL_URL.rsplit("/", 1)[0] + f"/{throwaway_db}", autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        conn.execute("CREATE TABLE dag_run (id INTEGER)")
    result = run_script("--airflow-db", throwaway_db)
    assert result.returncode == 1 and result.stdout == ""
    assert f"Database '{throwaway_db}'" in result.stderr
    assert "another Airflow install (alembic_version, dag_run)" in result.stderr
    assert "GREEN_API_AIRFLOW_DB" in result.stderr


# --------------------------------------------------------------------------- private cluster


def test_private_cluster_start_reuse_stop(pgdata: Path) -> None:
    if load_script().find_bindir() is None:
        pytest.skip("no PostgreSQL server binaries on this machine")
    port = free_port()
    args = ("--force-private", "--pgdata", str(pgdata), "--port", str(port), "--databases", "green_api,airflow")
    first = run_script(*args)
    assert first.returncode == 0, first.stderr
    exports = parse_exports(first.stdout)
    assert exports["GREEN_API_PG_SOURCE"] == "private"
    assert exports["GREEN_API_PG_PORT"] == str(port)
    assert select_one(exports["GREEN_API_PG_URL_GREEN_API"]) == 1
    assert select_one(exports["GREEN_API_PG_URL_AIRFLOW"]) == 1

    started = time.monotonic()
    second = run_script(*args)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert time.monotonic() - started < 10, "reusing a running cluster should be fast"

    stop = run_script("--stop", "--pgdata", str(pgdata))
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout == ""
    with pytest.raises(psycopg.OperationalError):
        select_one(exports["GREEN_API_PG_URL_GREEN_API"])

    restarted = run_script(*args)
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout == first.stdout
    assert select_one(exports["GREEN_API_PG_URL_GREEN_API"]) == 1


def test_stop_without_cluster_is_quiet_success(pgdata: Path) -> None:
    result = run_script("--stop", "--pgdata", str(pgdata))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""

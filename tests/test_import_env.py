"""scripts/import_env.py against Airflow's real metadata database (PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests.conftest import require_env

ROOT = Path(__file__).resolve().parents[1]
CONN_ID = "green_api_import_probe"


def import_env(fernet_key: str, password: str) -> subprocess.CompletedProcess[str]:
    # Only the probe: the suite's own connections and Variables must not land in the database.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env |= {"AIRFLOW__CORE__FERNET_KEY": fernet_key,
            f"AIRFLOW_CONN_{CONN_ID.upper()}": f"green-api://1101000001:{password}@sim.example:8080"}  # fmt: skip
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "import_env.py")], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def stored_password(fernet_key: str) -> str | None:
    code = ("from airflow.models.connection import Connection; from airflow.utils.session import create_session;"
            "from sqlalchemy import select\n"
            f"with create_session() as s: print(s.scalar(select(Connection).where(Connection.conn_id == '{CONN_ID}'))"
            ".password)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "AIRFLOW__CORE__FERNET_KEY": fernet_key},
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return done.stdout.strip()


def forget_probe() -> None:
    code = ("from airflow.models.connection import Connection; from airflow.utils.session import create_session;"
            f"from sqlalchemy import delete\nwith create_session() as s: s.execute(delete(Connection)"
            f".where(Connection.conn_id == '{CONN_ID}'))")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ), timeout=120, check=True)


def test_a_second_checkout_with_its_own_fernet_key_replaces_the_connections():
    """Two clones on one machine share the metadata database but not the Fernet key (each has its
    own .airflow): the second clone's start must replace what the first one encrypted, not crash
    trying to read it."""
    require_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    first_key, second_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    try:
        first = import_env(first_key, "TOKEN-SECRET-1111111111111111")
        assert first.returncode == 0, first.stderr
        assert stored_password(first_key) == "TOKEN-SECRET-1111111111111111"
        second = import_env(second_key, "TOKEN-SECRET-2222222222222222")
        assert second.returncode == 0, second.stderr
        # given with the type's former name (green-api:// reads as green_api): stored with its new one
        assert f"connection {CONN_ID} (greenapi, sim.example) is in Admin > Connections" in second.stderr
        assert stored_password(second_key) == "TOKEN-SECRET-2222222222222222"
        assert "TOKEN-SECRET" not in first.stderr + first.stdout + second.stderr + second.stdout
    finally:
        forget_probe()


def test_connections_of_the_former_type_name_are_migrated_at_start():
    """Connections saved as ``green_api`` (before the type was renamed ``greenapi``) get the new name
    at the next start, their secrets untouched; Airflow warns at every read of a type with "_"."""
    require_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    key = Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env["AIRFLOW__CORE__FERNET_KEY"] = key
    code = ("from airflow.models.connection import Connection; from airflow.utils.session import create_session\n"
            f"with create_session() as s: s.add(Connection(conn_id='{CONN_ID}', conn_type='green_api',"
            " host='http://sim', login='1101000001', password='TOKEN-SECRET-3333333333333333'))")  # fmt: skip
    try:
        subprocess.run([sys.executable, "-c", code], env=env, timeout=120, check=True)
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_env.py")], env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "connection(s) of type green_api now have type greenapi (its new name)" in done.stderr
        assert stored_password(key) == "TOKEN-SECRET-3333333333333333"
        check = ("from airflow.models.connection import Connection; from airflow.utils.session import create_session;"
                 "from sqlalchemy import select\n"
                 f"with create_session() as s: print(s.scalar(select(Connection.conn_type)"
                 f".where(Connection.conn_id == '{CONN_ID}')))")  # fmt: skip
        typed = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
        assert typed.stdout.strip() == "greenapi"
    finally:
        forget_probe()

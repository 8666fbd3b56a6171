"""`make run` started as a user starts it (scripts/run.sh), for the deployed tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg import sql

from tests.airflow_services import free_port
from tests.conftest import copy_database, require_env, tagged
from tests.test_ensure_postgres import load_script

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployment:
    url: str
    home: Path
    metadata_url: str
    health_url: str
    log: Path
    proc: subprocess.Popen[bytes]

    def token(self) -> str:
        password = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        reply = requests.post(f"{self.url}/auth/token", json={"username": "admin", "password": password}, timeout=10)
        reply.raise_for_status()
        return str(reply.json()["access_token"])

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.metadata_url) as conn:
            return conn.execute(query, params).fetchall()


def recreate(server: str, name: str) -> str:
    """Drop database ``name`` (make run creates it again); returns its URL."""
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return f"{server}/{name}"


@contextmanager
def make_run(home: Path, metadata_db: str, health_url: str, **settings: str) -> Iterator[Deployment]:
    """`bash scripts/run.sh` (what `make run` runs) with ``settings`` as its environment, in a
    session of its own, on a free UI port; stopped with Ctrl-C (SIGINT) at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GREEN_API_"))}
    env |= {
        "UI_PORT": str(port),
        "GREEN_API_AIRFLOW_HOME": str(home / "airflow"),
        "GREEN_API_AIRFLOW_DB": metadata_db,
        # Airflow's fast-test knobs only: how often the scheduler and the dag-processor look.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        **settings,
    }
    log = home / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    metadata_url = health_url.rsplit("/", 1)[0] + "/" + metadata_db
    try:
        yield Deployment(f"http://127.0.0.1:{port}", home / "airflow", metadata_url, health_url, log, proc)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise


@contextmanager
def deployed(tmp_path: Path, sim: Any, name: str, instance_id: str, alerts_id: str, support: str,
             settings: dict[str, Any], state: str = "authorized", *, checks_once: bool = False,
             first_start: bool = True, partner: list[str] | None = None, more_env: Sequence[str] = (),
             ) -> Iterator[tuple[Deployment, dict[str, str]]]:  # fmt: skip
    """`make run` as a user sets it up in .env: one monitored instance (in ``state``), one alerts
    instance, one support contact, ``settings`` as green_api_settings, the daily reboot 12 h away;
    fresh databases named after ``name``. Yields the deployment and the two tokens.

    ``checks_once``: the health check's schedule (Variable green_api_check_schedule) is once a day at
    the current minute, so its first scheduled run comes at once, as every 5 minutes, and no other
    comes during the test: its own runs, triggered, are never interleaved with a scheduled one.
    ``first_start``: Airflow's metadata database is new and empty, as on a first `make run`; else it
    is migrated already, as on any later start (a copy of the suite's, which saves the migration).
    ``partner``: the ids of a partner account's instances, given in .env by its partner token (the
    tokens are ``partner`` and ``partner:<id>``). ``more_env``: more lines of the env file."""
    server = require_env("GREEN_API_DB_URL").rsplit("/", 1)[0]
    health_url = recreate(server, tagged(f"green_api_{name}"))  # "your own database": run.sh creates it
    metadata_db = tagged(f"green_api_airflow_{name}")
    if first_start:
        recreate(server, metadata_db)
    else:  # as make run left it at its first start: migrated, and marked as this project's
        template = require_env("GREEN_API_AIRFLOW_TEMPLATE_DB_URL").rsplit("/", 1)[1]
        copy_database(server, template, metadata_db)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(metadata_db),
                                                                        sql.Literal(load_script().AIRFLOW_DB_MARK)))
    tokens = {"monitored": f"TOKEN-SECRET-{os.urandom(8).hex()}", "alerts": f"TOKEN-SECRET-{os.urandom(8).hex()}"}
    sim.add_instance(instance_id, tokens["monitored"], state=state)
    sim.add_instance(alerts_id, tokens["alerts"])
    partner_lines = []
    if partner:
        tokens["partner"] = f"TOKEN-SECRET-{os.urandom(8).hex()}"
        sim.add_partner(tokens["partner"])
        for n, ident in enumerate(partner, 1):
            tokens[f"partner:{ident}"] = f"TOKEN-SECRET-{os.urandom(8).hex()}"
            sim.create_partner_instance(tokens["partner"], id_instance=int(ident), api_token=tokens[f"partner:{ident}"],
                                        name=f"{name.title()} client {n}")  # fmt: skip
        partner_lines = [f"GREEN_API_PARTNER_URL={sim.url}", f"GREEN_API_PARTNER_TOKEN={tokens['partner']}",
                         f"GREEN_API_PARTNER_INSTANCES_URL={sim.url}"]  # fmt: skip
    far = time.strftime("%H:%M", time.gmtime(time.time() + 12 * 3600))
    minute, hour = time.gmtime().tm_min, time.gmtime().tm_hour
    # The env file holds the tokens, as .env does: outside the folders the suite's leak scan reads, and
    # removed at the end.
    secrets_dir = Path(tempfile.mkdtemp(prefix="green-api-env-"))
    env_file = secrets_dir / "env"
    env_file.write_text("\n".join([
        f"GREEN_API_URL={sim.url}",
        f"GREEN_API_INSTANCE_ID={instance_id}",
        f"GREEN_API_TOKEN={tokens['monitored']}",
        f"GREEN_API_ALERTS_INSTANCE_ID={alerts_id}",
        f"GREEN_API_ALERTS_TOKEN={tokens['alerts']}",
        f"GREEN_API_SUPPORT_CONTACT='{name.title()} Support|{support}|1'",
        *partner_lines,
        f"AIRFLOW_CONN_GREEN_API_DB={health_url}",
        f"AIRFLOW_VAR_GREEN_API_SETTINGS='{json.dumps(settings)}'",
        f"AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE='{{\"time\": \"{far}\", \"timezone\": \"UTC\"}}'",
        *([f"AIRFLOW_VAR_GREEN_API_CHECK_SCHEDULE='{minute} {hour} * * *'"] if checks_once else []),
        *more_env,
    ]) + "\n")  # fmt: skip
    try:
        with make_run(tmp_path, metadata_db, health_url, GREEN_API_ENV_FILE=str(env_file)) as deployment:
            yield deployment, tokens
    finally:
        shutil.rmtree(secrets_dir, ignore_errors=True)


def finished(deployment: Deployment, dag_id: str, run_type: str | None = None) -> tuple[str, str] | None:
    if deployment.proc.poll() is not None:
        raise AssertionError("make run stopped: " + deployment.log.read_text(errors="replace")[-5000:])
    try:
        rows = deployment.rows(
        "SELECT run_id, state FROM dag_run WHERE dag_id = %s AND (%s::text IS NULL OR run_type = %s)"
            " ORDER BY queued_at", dag_id, run_type, run_type,
        )  # fmt: skip
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):  # make run has not migrated it yet
        return None
    done = [r for r in rows if r[1] in ("success", "failed")]
    return done[0] if done else None


def trigger(deployment: Deployment, token: str, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    reply = requests.post(f"{deployment.url}/api/v2/dags/{dag_id}/dagRuns", headers={"Authorization": f"Bearer {token}"},
                          json={"logical_date": None, "conf": conf or {}}, timeout=30)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return str(reply.json()["dag_run_id"])


def run_state(deployment: Deployment, dag_id: str, run_id: str) -> str | None:
    rows = deployment.rows("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id)
    state = rows[0][0] if rows else None
    return state if state in ("success", "failed") else None


def listening(pids: set[int]) -> set[str]:
    """The TCP addresses these processes listen on (from /proc: no tool needed)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                address, port = fields[1].split(":")
                if len(address) == 8:
                    ip = ".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0))
                else:
                    ip = "::" if set(address) == {"0"} else address
                found.add(f"{ip}:{int(port, 16)}")
    return found


def descendants(root: int) -> set[int]:
    children: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, set()).add(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, set()) - found)
    return found

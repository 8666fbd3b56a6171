"""Shared fixtures: the real simulator over HTTP, the real PostgreSQL health database.

`make test` exports the environment these need (scripts/env.sh test): a migrated Airflow
metadata database, the health database ``green_api_test`` and Airflow's folders.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from greenapi_simulator import GreenApiSimulator

pytest_plugins = ("tests.private_postgres",)  # its fixture private_pg, for the fault and deployed tests
_ids = itertools.count(1)
ROOT = Path(__file__).resolve().parents[1]
LEAKS = ROOT / ".artifacts" / "token-leaks"  # where each test process notes a token it saw


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the tests with `make test`, which sets up PostgreSQL and Airflow")
    return value


def tagged(name: str) -> str:
    """A database name of the suite, suffixed like scripts/env.sh does with GREEN_API_DB_TAG, so
    that two checkouts can run their suites side by side on one server."""
    tag = os.environ.get("GREEN_API_DB_TAG", "")
    return f"{name}_{tag}" if tag else name


# ---- one test process, one set of databases and one Airflow home (pytest-xdist workers)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--token-scan", action="store_true",
                     help="run only the scan for leaked tokens, after the suite (make test does)")  # fmt: skip


def _controller(config: pytest.Config) -> bool:
    """The process that hands tests to pytest-xdist workers and runs none itself."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


def copy_database(server: str, template: str, name: str) -> str:
    """A fresh copy of database ``template`` named ``name`` (dropped first); returns its URL.

    ``make test`` migrates the templates once; each test process copies them, which takes well
    under a second where a migration of Airflow's metadata takes many."""
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return f"{server}/{name}"


def pytest_configure(config: pytest.Config) -> None:
    """Give this test process databases and an Airflow home of its own, before any test module
    imports Airflow (which reads its settings once): copies of the databases ``make test``
    migrated, named after the process (``_gw0``, ``_gw1``... under pytest-xdist, ``_main``
    otherwise), so that processes running at once never share a run, a row or a log file."""
    scan, worker_process = config.getoption("--token-scan"), hasattr(config, "workerinput")
    if not scan and not worker_process:
        shutil.rmtree(LEAKS, ignore_errors=True)  # a new suite: no leak noted yet
    if scan or _controller(config) or "GREEN_API_DB_URL" not in os.environ:
        return
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    os.environ["GREEN_API_DB_TAG"] = "_".join(t for t in (os.environ.get("GREEN_API_DB_TAG"), worker) if t)
    health, metadata = os.environ["GREEN_API_DB_URL"], os.environ["GREEN_API_AIRFLOW_DB_URL"]
    server = health.rsplit("/", 1)[0]
    health = copy_database(server, health.rsplit("/", 1)[1], tagged("green_api_test"))
    metadata = copy_database(server, metadata.rsplit("/", 1)[1], tagged("green_api_airflow_test"))
    home = Path(os.environ["AIRFLOW_HOME"]) / "workers" / worker
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    if (Path(os.environ["AIRFLOW_HOME"]) / "airflow.cfg").exists():
        shutil.copy(Path(os.environ["AIRFLOW_HOME"]) / "airflow.cfg", home / "airflow.cfg")
    os.environ.update({
        "GREEN_API_AIRFLOW_TEMPLATE_DB_URL": os.environ["GREEN_API_AIRFLOW_DB_URL"],  # migrated, used by no process
        "GREEN_API_DB_URL": health,
        "GREEN_API_AIRFLOW_DB_URL": metadata,
        "AIRFLOW_CONN_GREEN_API_DB": health,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace("postgresql://", "postgresql+psycopg2://", 1),
        "AIRFLOW_HOME": str(home),
    })  # fmt: skip


# The tests that start Airflow's real services (an API server, a scheduler...), in two groups: each
# group runs in one test process, one test after the other, so that no more than two such stacks
# share the machine's cores (four at once took longer in all than two). Keys: node id prefixes.
SERVICE_GROUPS = {
    "tests/deployed/test_make_run.py": "services-1",
    "tests/faults/test_scheduler_restart.py": "services-1",
    "tests/e2e/test_scheduled_run.py": "services-1",
    "tests/dashboard/test_dashboard_browser.py": "services-1",
    "tests/deployed/test_watch.py": "services-1",
    "tests/deployed/test_rerun.py": "services-2",  # three scenarios on one make run
    "tests/deployed/test_demo.py": "services-2",
}


def service_group(nodeid: str) -> str | None:
    """The group of SERVICE_GROUPS a test belongs to, if any."""
    return next((group for prefix, group in SERVICE_GROUPS.items() if nodeid.startswith(prefix)), None)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's load scheduling by work unit, a unit being a group of SERVICE_GROUPS or a
    single test, handed out in the order of collection (pytest-xdist's own ``xdist_group`` marks
    are lost with pytest 9.2, which no longer reads the node id they rewrite)."""
    from xdist.scheduler.loadscope import LoadScopeScheduling

    class ByServiceGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return service_group(nodeid) or nodeid

    config.option.loadscopereorder = False
    return ByServiceGroup(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The leak scan runs alone, after the suite (``--token-scan``). The suite runs its slowest
    tests first, so that the test processes end together: the two groups of SERVICE_GROUPS, then
    the others by expected length."""
    scan = config.getoption("--token-scan")
    kept = [i for i in items if ("test_zz_no_token_left" in i.nodeid) == scan]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
    kept.sort(key=_order)
    items[:] = kept


def _order(item: pytest.Item) -> tuple[str, int]:
    group = service_group(item.nodeid)
    if group is not None:
        return "0 " + group, 0
    for marker, seconds in (("deployed", 200), ("slow", 100), ("browser", 60), ("e2e", 10), ("faults", 10)):
        if item.get_closest_marker(marker):
            return "1", -seconds
    return "1", 0


@pytest.fixture(scope="session")
def sim_server() -> Iterator[GreenApiSimulator]:
    with GreenApiSimulator() as server:
        yield server


# Every token the tests create looks like this (make_instance), so a scan can look for all of them.
TOKEN_PATTERN = re.compile(r"TOKEN-SECRET-[0-9a-f]{16}")


def note_leak(where: str) -> None:
    """Note that a token was seen (``where``), for the leak scan that runs after the suite
    (tests/test_zz_no_token_left.py, with everything the suite wrote)."""
    LEAKS.mkdir(parents=True, exist_ok=True)
    with (LEAKS / f"{os.getpid()}.txt").open("a") as out:
        out.write(where + "\n")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A token in what a test printed is a leak (noted by the process that ran the test)."""
    if hasattr(report, "node"):  # pytest-xdist's controller: the worker that ran the test noted it
        return
    for section, content in report.sections:
        if TOKEN_PATTERN.search(content):
            note_leak(f"{report.nodeid}: {section}")


@pytest.fixture
def sim(sim_server: GreenApiSimulator, request: pytest.FixtureRequest) -> Iterator[GreenApiSimulator]:
    """The simulator, emptied for the test; a token in what it received is noted as a leak."""
    sim_server.reset()
    yield sim_server
    delivered = json.dumps([sim_server.requests_log(), sim_server.messages(), sim_server.reboots()])
    if TOKEN_PATTERN.search(delivered):
        note_leak(f"{request.node.nodeid}: what the simulator received (messages, bodies)")


# ---- no test depends on the hour it runs at (tests/test_any_hour.py)

AT_HOURS = (None, "00:30", "02:05")  # None: the current time
TIME_SENSITIVE = (
    "tests/domain/",
    "tests/test_timetable.py",
    "tests/e2e/test_incidents.py",
    # runs at the current time and must alert: at 02:05 UTC, inside the default schedule's window
    "tests/e2e/test_health_check_dag.py::test_not_authorized_states_alert_every_contact_without_reboot",
)


def hours_of(item: Any) -> tuple[str | None, ...]:
    """The hours a time-sensitive test runs at: the pure ones (domain, timetable) at each of
    AT_HOURS; a whole-DAG one (e2e, 5 to 20 s a copy) at the current time and at 02:05, inside the
    default daily reboot's window, where a muted alert would show; a slow one (a minute a copy)
    only at 02:05."""
    if item.get_closest_marker("slow"):
        return AT_HOURS[-1:]
    return (None, AT_HOURS[-1]) if item.get_closest_marker("e2e") else AT_HOURS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each time-sensitive test runs at the current time and at each hour of AT_HOURS (hours_of)."""
    if any(metafunc.definition.nodeid.startswith(prefix) for prefix in TIME_SENSITIVE):
        hours = hours_of(metafunc.definition)
        ids = ["now" if h is None else f"at{h.replace(':', '')}utc" for h in hours]
        metafunc.parametrize("wall_clock", hours, ids=ids, indirect=True)


@pytest.fixture
def moved_clock() -> Any:
    """``moved_clock("00:30")``: a context in which the process's wall clock reads that time (UTC)
    today and ticks on (time-machine: datetime, time.time, pendulum, Airflow; not the monotonic clocks)."""
    import time_machine

    def at(hour: str) -> Any:
        hours, minutes = map(int, hour.split(":"))
        return time_machine.travel(datetime.now(UTC).replace(hour=hours, minute=minutes, second=0, microsecond=0),
                                   tick=True)  # fmt: skip

    return at


@pytest.fixture(autouse=True)
def wall_clock(request: pytest.FixtureRequest, moved_clock: Any) -> Iterator[str | None]:
    """The hour a time-sensitive test runs at (None: the current time); set before its other fixtures."""
    hour = getattr(request, "param", None)
    if hour is None:
        yield None
        return
    with moved_clock(hour):
        yield hour


@pytest.fixture(autouse=True)
def no_daily_reboot(monkeypatch: pytest.MonkeyPatch) -> None:
    """No daily reboot, hence no settle window (``settle_window_start``) silencing failing checks.

    The window follows a run's logical time: with the default schedule (03:00 in Paris) a check
    run between 02:00 and 02:10 UTC alerts nobody, and any other fixed time would meet the logical
    times of some test (``dag.test()`` runs at the current time unless given one). A disabled
    schedule has no window, so no test depends on the hour it runs at. Tests of the schedule and
    of the window set their own.
    """
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE", json.dumps({"enabled": False}))


@pytest.fixture
def reboot_schedule_away_from_now(monkeypatch: pytest.MonkeyPatch) -> str:
    """A daily reboot 12 hours from now, for a real scheduler: its runs happen at the current time."""
    at = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE", json.dumps({"time": at, "timezone": "UTC"}))
    return at


@pytest.fixture
def db() -> Iterator[psycopg.Connection[Any]]:
    """The health database, emptied before each test."""
    with psycopg.connect(require_env("GREEN_API_DB_URL"), autocommit=True) as conn:
        conn.execute(
            "TRUNCATE green_api_health_logs, system_support_contacts, green_api_alert_deliveries,"
            " green_api_incidents, green_api_instance_status, green_api_partner_instances, green_api_state_watch"
            " RESTART IDENTITY"
        )
        yield conn


@dataclass(frozen=True)
class SimInstance:
    conn_id: str
    instance_id: str
    token: str


@pytest.fixture
def make_instance(sim: GreenApiSimulator, monkeypatch: pytest.MonkeyPatch):
    """Create a simulator instance and its Airflow connection (env var); unique ids per test.

    Tokens are recognisable (``TOKEN-SECRET-...``) so leak scans can look for them.
    """

    def create(conn_id: str = "green_api_default", *, extra: dict[str, Any] | None = None, **config: Any) -> SimInstance:
        instance_id = f"77{os.getpid() % 10000:04d}{next(_ids):05d}"
        token = f"TOKEN-SECRET-{secrets.token_hex(8)}"
        sim.add_instance(instance_id, token, **config)
        conn = {
            "conn_type": "greenapi",
            "host": sim.url,
            "login": instance_id,
            "password": token,
            "extra": {"state_timeout": 1, "reboot_timeout": 2, "send_timeout": 2, **(extra or {})},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return SimInstance(conn_id, instance_id, token)

    return create


@dataclass(frozen=True)
class SimPartner:
    conn_id: str
    token: str
    instances: dict[str, str]  # idInstance -> token, as created

    def key(self, instance_id: str) -> str:
        return f"{self.conn_id}/{instance_id}"


@pytest.fixture
def make_partner(sim: GreenApiSimulator, monkeypatch: pytest.MonkeyPatch):
    """Create a partner account in the simulator with ``count`` instances and its Airflow
    connection (env var, type greenapipartner); tokens recognisable as make_instance's."""

    def create(conn_id: str = "green_api_partner", count: int = 3, *, extra: dict[str, Any] | None = None,
               **config: Any) -> SimPartner:  # fmt: skip
        from greenapi.hooks.green_api import LISTINGS

        LISTINGS.clear()  # this process's listings of earlier tests' accounts under the same id
        token = f"TOKEN-SECRET-{secrets.token_hex(8)}"
        sim.add_partner(token, **config)
        made = {}
        for n in range(count):
            instance_id = int(f"8{os.getpid() % 10000:04d}{next(_ids):05d}")
            made[str(instance_id)] = f"TOKEN-SECRET-{secrets.token_hex(8)}"
            sim.create_partner_instance(token, id_instance=instance_id, api_token=made[str(instance_id)],
                                        name=f"Client {n + 1:03d}")  # fmt: skip
        conn = {"conn_type": "greenapipartner", "host": sim.url, "password": token,
                "extra": {"api_url": sim.url, "partner_timeout": 2, "state_timeout": 1, "reboot_timeout": 2,
                          "send_timeout": 2, **(extra or {})}}  # fmt: skip
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return SimPartner(conn_id, token, made)

    return create


@pytest.fixture
def add_contact(db: psycopg.Connection[Any]):
    def add(name: str, phone: str, priority: int = 1, active: bool = True) -> int:
        row = db.execute(
            "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority, is_active)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (name, phone, priority, active),
        ).fetchone()
        assert row is not None
        return int(row[0])

    return add

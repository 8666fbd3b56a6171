"""The health log partitioned by UTC day (sql/012): an upgraded install keeps its rows, a check
never lacks a partition, a day is a UTC day whatever the session's zone, and a run logs an
instance once across partitions."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from greenapi import migrate
from greenapi.store import HealthStore
from tests.conftest import require_env
from tests.store.test_dashboard_views import aggregates_match_raw_rows

# What the log task wrote before sql/012: its unique key made a retried write a no-op.
OLD_INSERT = (
    "INSERT INTO green_api_health_logs (checked_at, status, state_instance, error_message, reboot_triggered,"
    " reboot_success, response_time_ms, support_notified, trigger_type, instance_id, connection_id, alert_type, dag_id,"
    " run_id, in_maintenance_window, queue_length, socket_status, settings_status)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'automatic', %s, %s, %s, 'green_api_health_check', %s, %s, %s, %s, %s)"
    " ON CONFLICT ON CONSTRAINT green_api_health_logs_run_instance_key DO NOTHING"
)


COPY_OLD = (
    "COPY green_api_health_logs (checked_at, status, state_instance, error_message, reboot_triggered, reboot_success,"
    " response_time_ms, support_notified, trigger_type, instance_id, connection_id, alert_type, dag_id, run_id,"
    " in_maintenance_window, queue_length, socket_status) FROM STDIN"
)


@pytest.fixture
def scratch_db() -> Iterator[str]:
    """A database of its own on the test server, dropped after the test."""
    server = require_env("GREEN_API_DB_URL").rsplit("/", 1)[0]
    name = f"green_api_upgrade_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rows(conn: psycopg.Connection[Any], columns: str) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT {columns} FROM green_api_health_logs ORDER BY id").fetchall()  # noqa: S608


def test_an_install_upgraded_from_the_unpartitioned_log_keeps_every_row(scratch_db, tmp_path, monkeypatch):
    before = tmp_path / "sql"
    before.mkdir()
    for path in migrate.discover():
        if path.version < "012":
            shutil.copy(path.path, before / path.path.name)
    assert migrate.apply(scratch_db, before)[-1] == "011_outage_seen.sql"
    now = datetime.now(UTC)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        rows = []  # ten days of two instances, with failures, reboots, readings and gaps
        for n in range(10 * 24 * 6):
            at = now - timedelta(minutes=10 * n)
            for instance in ("1101000001", "1101000002"):
                if instance == "1101000002" and 300 < n < 500:
                    continue  # a gap: not checked for a while
                bad = n % 37 == 0
                rows.append((
                    at, "critical_failure" if bad else "healthy", None if bad else "authorized",
                    "Timeout after 10s" if bad else None, bad, bad or None, None if bad else 100 + n % 300,
                    bad, "automatic", instance, f"conn_{instance}", "timeout" if bad else None, "green_api_health_check",
                    f"scheduled__{n}", n % 50 == 0, None if bad or n % 3 else n % 60, None if bad or n % 3 else "online",
                ))
        with conn.cursor() as cur, cur.copy(COPY_OLD) as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute(OLD_INSERT, (now, "healthy", "authorized", None, False, None, 5, False, "1101000001", "c", None,
                                  "scheduled__0", False, None, None, None))  # a retry: nothing written
        columns = "id, checked_at, status, state_instance, error_message, reboot_triggered, response_time_ms, " \
                  "instance_id, run_id, in_maintenance_window, queue_length, socket_status"
        old_rows = _rows(conn, columns)
        uptime = conn.execute("SELECT * FROM green_api_instance_uptime ORDER BY 1").fetchall()
        seed_stats = conn.execute("SELECT * FROM green_api_stats_7d").fetchall()
    assert len(old_rows) == 2 * 10 * 24 * 6 - 199

    assert migrate.apply(scratch_db)[0] == "012_partitioned_health_log.sql"
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        assert _rows(conn, columns) == old_rows  # every row, its id and its values
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'green_api_health_logs'").fetchone() == ("p",)
        days = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'green_api_health_logs'::regclass"
                            ).fetchone()[0]
        assert days >= 10 + 7  # the ten days of rows, the week ahead, and the default partition
        assert conn.execute("SELECT count(*) FROM green_api_health_logs_default").fetchone() == (0,)
        aggregates_match_raw_rows(conn)
        assert conn.execute("SELECT * FROM green_api_instance_uptime ORDER BY 1").fetchall() == uptime
        assert conn.execute("SELECT * FROM green_api_stats_7d").fetchall() == seed_stats
        # The seed's own queries run unchanged.
        assert conn.execute("SELECT COUNT(*) FILTER (WHERE status = 'healthy'), ROUND(AVG(response_time_ms))"
                            " FROM green_api_health_logs WHERE checked_at > NOW() - INTERVAL '7 days'").fetchone()[0] > 0
        conn.execute("DELETE FROM green_api_health_logs WHERE checked_at < NOW() - INTERVAL '9 days'")
        aggregates_match_raw_rows(conn)

    # The log task writes on, ids going on from the old ones; a retry of an old run is still a no-op.
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DB", scratch_db)
    store = HealthStore()
    row = {"checked_at": now.isoformat(), "status": "healthy", "instance_id": "1101000001",
           "dag_id": "green_api_health_check", "run_id": "scheduled__0", "response_time_ms": 9}
    assert store.insert_health_logs([row]) == 0
    assert store.insert_health_logs([{**row, "run_id": "scheduled__new"}]) == 1
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT id > %s FROM green_api_health_logs WHERE run_id = 'scheduled__new'",
                            (old_rows[-1][0],)).fetchone() == (True,)


def _partition_of(db: psycopg.Connection[Any], row_id: int) -> str:
    return db.execute("SELECT tableoid::regclass::text FROM green_api_health_logs WHERE id = %s", (row_id,)).fetchone()[0]


def test_a_check_never_fails_for_lack_of_a_partition(db):
    """A day with no partition yet (the maintenance DAG paused for weeks) is caught by the default
    partition; making that day's partition later moves its rows in, ids and aggregates unchanged."""
    later = datetime.now(UTC) + timedelta(days=40)
    store = HealthStore()
    rows = [{"checked_at": (later + timedelta(minutes=5 * n)).isoformat(), "status": "healthy", "instance_id": "1",
             "dag_id": "d", "run_id": f"r{n}", "response_time_ms": 100 + n} for n in range(3)]
    assert store.insert_health_logs(rows) == 3
    ids = [r[0] for r in db.execute("SELECT id FROM green_api_health_logs ORDER BY id")]
    assert {_partition_of(db, i) for i in ids} == {"green_api_health_logs_default"}
    assert store.make_partitions(later.date(), later.date() + timedelta(days=1)) == 2
    assert store.make_partitions(later.date(), later.date() + timedelta(days=1)) == 0  # made once
    assert {_partition_of(db, i) for i in ids} <= {f"green_api_health_logs_{d:%Y%m%d}"
                                                   for d in (later.date(), later.date() + timedelta(days=1))}
    assert db.execute("SELECT count(*) FROM green_api_health_logs_default").fetchone() == (0,)
    aggregates_match_raw_rows(db)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata", "Europe/Paris", "UTC"])
def test_checks_at_midnight_in_any_time_zone_land_in_their_utc_day(db, zone):
    db.execute("SELECT green_api_health_log_partitions((now() AT TIME ZONE 'UTC')::date - 2,"
               " (now() AT TIME ZONE 'UTC')::date + 2)")
    local_midnight = datetime.now(ZoneInfo(zone)).replace(hour=0, minute=0, second=0, microsecond=0)
    utc_midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    tick = timedelta(microseconds=1)
    moments = [local_midnight - tick, local_midnight, utc_midnight - tick, utc_midnight]
    with psycopg.connect(require_env("GREEN_API_DB_URL"), autocommit=True) as conn:
        conn.execute("SELECT set_config('TimeZone', %s, false)", (zone,))  # a session in that zone
        ids = [conn.execute("INSERT INTO green_api_health_logs (checked_at, status, instance_id) VALUES (%s, 'healthy',"
                            " '1') RETURNING id", (at,)).fetchone()[0] for at in moments]
    for row_id, at in zip(ids, moments, strict=True):
        assert _partition_of(db, row_id) == f"green_api_health_logs_{at.astimezone(UTC):%Y%m%d}"
    aggregates_match_raw_rows(db)


def test_a_run_logs_an_instance_once_whatever_the_day_of_its_retry(db):
    store = HealthStore()
    first = datetime.now(UTC) - timedelta(days=1)
    row = {"checked_at": first.isoformat(), "status": "unhealthy", "instance_id": "1", "dag_id": "d", "run_id": "r"}
    assert store.insert_health_logs([row, {**row, "instance_id": "2"}]) == 2
    retried = {**row, "checked_at": datetime.now(UTC).isoformat(), "status": "healthy"}  # the check made again
    assert store.insert_health_logs([retried, {**retried, "instance_id": "3"}]) == 1
    assert db.execute("SELECT instance_id, status FROM green_api_health_logs ORDER BY 1").fetchall() == [
        ("1", "unhealthy"), ("2", "unhealthy"), ("3", "healthy")]
    # Twice in one batch: once.
    assert store.insert_health_logs([{**row, "run_id": "r2"}, {**row, "run_id": "r2"}]) == 1


def test_two_makers_of_a_partition_at_once_make_it_once():
    url = require_env("GREEN_API_DB_URL")
    day = (datetime.now(UTC) + timedelta(days=60)).date()
    made: list[Any] = []
    start = threading.Barrier(4)

    def make() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            start.wait()
            made.append(conn.execute("SELECT green_api_health_log_partition(%s)", (day,)).fetchone()[0])

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(made, key=str) == sorted([f"green_api_health_logs_{day:%Y%m%d}", None, None, None], key=str)


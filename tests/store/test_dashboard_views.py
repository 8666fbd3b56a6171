"""The dashboard's roll-ups and views on a real PostgreSQL: always equal to counting the raw rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from greenapi.dashboard.queries import DashboardStore, DatabaseUnavailable
from greenapi.store import HealthStore
from tests.conftest import require_env

ROLLUP_COLUMNS = "checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts"
RAW = """
SELECT COALESCE(instance_id, ''), date_trunc(%(unit)s, checked_at, 'UTC'), status, count(*)::int,
       (count(*) FILTER (WHERE in_maintenance_window))::int, count(response_time_ms)::int,
       COALESCE(sum(response_time_ms), 0)::bigint, max(response_time_ms),
       (count(*) FILTER (WHERE reboot_triggered))::int, (count(*) FILTER (WHERE support_notified))::int
FROM green_api_health_logs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def rollups_match_raw_rows(db: psycopg.Connection[Any]) -> None:
    hourly = db.execute(f"SELECT instance_id, hour, status, {ROLLUP_COLUMNS} FROM green_api_check_hourly"  # noqa: S608
                        " ORDER BY 1, 2, 3").fetchall()
    daily = db.execute(f"SELECT instance_id, day, status, {ROLLUP_COLUMNS} FROM green_api_check_daily"  # noqa: S608
                       " ORDER BY 1, 2, 3").fetchall()
    assert hourly == db.execute(RAW, {"unit": "hour"}).fetchall()
    assert daily == db.execute(RAW, {"unit": "day"}).fetchall()
    everyone = db.execute(f"SELECT hour, status, {ROLLUP_COLUMNS} FROM green_api_check_hourly_all"  # noqa: S608
                          " ORDER BY 1, 2").fetchall()
    assert everyone == db.execute(
        "SELECT date_trunc('hour', checked_at, 'UTC'), status, count(*)::int,"
        " (count(*) FILTER (WHERE in_maintenance_window))::int, count(response_time_ms)::int,"
        " COALESCE(sum(response_time_ms), 0)::bigint, max(response_time_ms),"
        " (count(*) FILTER (WHERE reboot_triggered))::int, (count(*) FILTER (WHERE support_notified))::int"
        " FROM green_api_health_logs GROUP BY 1, 2 ORDER BY 1, 2").fetchall()


def aggregates_match_raw_rows(db: psycopg.Connection[Any]) -> None:
    """The per-hour response times and queue reads, the fleet's 5-minute buckets and each instance's
    last check and readings (sql/012) are what the raw rows give."""
    rollups_match_raw_rows(db)
    assert db.execute(
        "SELECT instance_id, hour, status, (SELECT array_agg(v ORDER BY v) FROM unnest(response_ms) v), queue_max,"
        " queue_reads FROM green_api_check_hourly ORDER BY 1, 2, 3").fetchall() == db.execute(
        "SELECT COALESCE(instance_id, ''), date_trunc('hour', checked_at, 'UTC'), status,"
        " array_agg(response_time_ms ORDER BY response_time_ms) FILTER (WHERE response_time_ms IS NOT NULL),"
        " max(queue_length), count(queue_length)::int FROM green_api_health_logs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    assert db.execute(
        "SELECT bucket, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, queue_max, queue_reads"
        " FROM green_api_check_5min_all ORDER BY 1, 2").fetchall() == db.execute(
        "SELECT date_bin('5 minutes', checked_at, TIMESTAMPTZ '2000-01-01 00:00+00'), status, count(*)::int,"
        " (count(*) FILTER (WHERE in_maintenance_window))::int, count(response_time_ms)::int,"
        " COALESCE(sum(response_time_ms), 0)::bigint, max(response_time_ms), max(queue_length),"
        " count(queue_length)::int FROM green_api_health_logs GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    last = ("SELECT {0} FROM green_api_health_logs g WHERE g.instance_id = i.instance_id{1}"
            " ORDER BY g.checked_at DESC, g.id DESC LIMIT 1")
    raw_latest = (
        "SELECT i.instance_id, c.id, c.checked_at, c.status, c.response_time_ms, q.queue_length, q.checked_at,"  # noqa: S608
        " s.socket_status, s.checked_at FROM (SELECT DISTINCT instance_id FROM green_api_health_logs"
        " WHERE instance_id IS NOT NULL) i"
        f" JOIN LATERAL ({last.format('*', '')}) c ON true"
        f" LEFT JOIN LATERAL ({last.format('g.queue_length, g.checked_at', ' AND g.queue_length IS NOT NULL')}) q ON true"
        f" LEFT JOIN LATERAL ({last.format('g.socket_status, g.checked_at', ' AND g.socket_status IS NOT NULL')}) s"
        " ON true ORDER BY 1")
    assert db.execute(
        "SELECT instance_id, id, checked_at, status, response_time_ms, queue_length, queue_read_at, socket_status,"
        " socket_read_at FROM green_api_instance_latest ORDER BY 1").fetchall() == db.execute(raw_latest).fetchall()


def insert_random_history(db: psycopg.Connection[Any], rows: int, seed: int) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    values = []
    for n in range(rows):
        status = rng.choice(["healthy", "healthy", "healthy", "unhealthy", "critical_failure", "rebooted"])
        values.append((
            now - timedelta(minutes=rng.uniform(0, 40 * 24 * 60)), status,
            rng.choice([None, rng.randint(50, 3000)]), rng.random() < 0.1, rng.random() < 0.1, rng.random() < 0.05,
            rng.choice(["1101000001", "1101000002", None]), f"run_{seed}_{n}",
            rng.choice([None, None, rng.randint(0, 600)]), rng.choice([None, "online", "offline"]),
        ))
    # Four statements, as shards write a run: each adds to aggregate rows the others made (a row at
    # a time would fire the triggers per row, and take seconds).
    for part in range(4):
        with db.cursor() as cur, cur.copy(
            "COPY green_api_health_logs (checked_at, status, response_time_ms, reboot_triggered, support_notified,"
            " in_maintenance_window, instance_id, run_id, queue_length, socket_status, dag_id) FROM STDIN"
        ) as copy:
            for row in values[part::4]:
                copy.write_row((*row, "x"))


def test_rollups_follow_inserts_updates_deletes_and_truncate(db):
    insert_random_history(db, 400, seed=1)
    aggregates_match_raw_rows(db)
    db.execute("UPDATE green_api_health_logs SET status = 'healthy', response_time_ms = 5"
               " WHERE id % 7 = 0")  # edits from psql
    aggregates_match_raw_rows(db)
    db.execute("UPDATE green_api_health_logs SET checked_at = checked_at - interval '3 hours' WHERE id % 5 = 0")
    aggregates_match_raw_rows(db)
    db.execute("DELETE FROM green_api_health_logs WHERE id % 3 = 0")
    aggregates_match_raw_rows(db)
    db.execute("TRUNCATE green_api_health_logs CASCADE")
    assert db.execute("SELECT (SELECT count(*) FROM green_api_check_hourly) + (SELECT count(*) FROM"
                      " green_api_check_daily) + (SELECT count(*) FROM green_api_check_hourly_all) + (SELECT count(*)"
                      " FROM green_api_check_5min_all) + (SELECT count(*) FROM green_api_instance_latest)"
                      ).fetchone() == (0,)


def test_retention_drops_whole_days_and_keeps_the_rollups_exact(db):
    """Days with a partition of their own and days the default partition caught alike: the days
    that ended 30 days ago go whole, the roll-ups stay equal to the rows left."""
    db.execute("SELECT green_api_health_log_partitions((now() AT TIME ZONE 'UTC')::date - 35,"
               " (now() AT TIME ZONE 'UTC')::date - 25)")
    insert_random_history(db, 300, seed=2)  # 40 days back: the oldest in the default partition
    aggregates_match_raw_rows(db)
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=30)
    keep_from = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    expected = db.execute("SELECT count(*) FROM green_api_health_logs WHERE checked_at < %s", (keep_from,)).fetchone()
    days, rows = HealthStore().drop_logs_before(cutoff)
    assert (rows,) == expected and rows > 0
    assert days == 5  # the partitions made from 35 to 31 days back
    assert db.execute("SELECT min(checked_at) >= %s FROM green_api_health_logs", (keep_from,)).fetchone() == (True,)
    aggregates_match_raw_rows(db)
    assert db.execute("SELECT min(hour) >= %s FROM green_api_check_hourly", (keep_from,)).fetchone() == (True,)


def test_idempotent_log_retry_adds_nothing_to_the_rollups(db):
    row = {"checked_at": datetime.now(UTC).isoformat(), "status": "healthy", "instance_id": "1101000001",
           "dag_id": "green_api_health_check", "run_id": "r1", "response_time_ms": 120}
    store = HealthStore()
    assert store.insert_health_logs([row]) == 1
    assert store.insert_health_logs([row]) == 0  # the retried log task
    assert db.execute("SELECT sum(checks) FROM green_api_check_hourly").fetchone() == (1,)
    rollups_match_raw_rows(db)


@pytest.mark.parametrize(("view", "raw"), [
    ("SELECT total_checks, healthy_count, unhealthy_count, critical_count, avg_response_ms, total_reboots,"
     " total_alerts FROM green_api_stats_7d",
     # The seed's "Statistiques globales", on rows away from the window's edge hour.
     "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'healthy'), COUNT(*) FILTER (WHERE status = 'unhealthy'),"
     " COUNT(*) FILTER (WHERE status = 'critical_failure'), ROUND(AVG(response_time_ms)),"
     " COUNT(*) FILTER (WHERE reboot_triggered = true), COUNT(*) FILTER (WHERE support_notified = true)"
     " FROM green_api_health_logs WHERE checked_at > NOW() - INTERVAL '7 days'"),
    ("SELECT check_date, total_checks, healthy, issues, avg_response_ms FROM green_api_daily_checks"
     " ORDER BY check_date DESC",
     # The seed's "Health checks par jour", with UTC days.
     "SELECT (checked_at AT TIME ZONE 'UTC')::date, COUNT(*), COUNT(*) FILTER (WHERE status = 'healthy'),"
     " COUNT(*) FILTER (WHERE status != 'healthy'), ROUND(AVG(response_time_ms)) FROM green_api_health_logs"
     " WHERE checked_at >= date_trunc('day', NOW() - INTERVAL '7 days', 'UTC') GROUP BY 1 ORDER BY 1 DESC"),
    ("SELECT checked_at, status, error_message FROM green_api_recent_problems ORDER BY checked_at DESC LIMIT 20",
     "SELECT checked_at, status, error_message FROM green_api_health_logs WHERE status != 'healthy'"
     " ORDER BY checked_at DESC LIMIT 20"),
])
def test_seed_queries_as_views_agree_with_the_raw_rows(db, view, raw):
    insert_random_history(db, 300, seed=3)
    # The views count whole hours: keep the 7-day edge hour empty so both sides see the same rows.
    db.execute("DELETE FROM green_api_health_logs WHERE checked_at BETWEEN now() - interval '7 days 2 hours'"
               " AND now() - interval '6 days 22 hours'")
    assert db.execute(view).fetchall() == db.execute(raw).fetchall()


def test_unreachable_database_is_named_quickly():
    store = DashboardStore("postgresql://postgres@127.0.0.1:1/none", timeout=1.0)
    try:
        with pytest.raises(DatabaseUnavailable, match="health database"):
            store.fleet_counts()
    finally:
        store.close()


def test_views_are_usable_from_psql_by_name():
    with psycopg.connect(require_env("GREEN_API_DB_URL")) as conn:
        names = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.views WHERE table_name LIKE 'green_api_%'")}
    assert names >= {"green_api_instance_uptime", "green_api_instance_latency_24h", "green_api_instance_last_check",
                     "green_api_instance_ids", "green_api_open_incidents", "green_api_stats_7d",
                     "green_api_daily_checks", "green_api_recent_problems"}

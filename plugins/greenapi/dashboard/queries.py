"""Reads behind the dashboard: the SQL views of ``sql/005_dashboard.sql`` (and ``sql/008_dashboard_readings.sql``),
through a small pool.

Runs in Airflow's API server. Every value is bound as a parameter; filters only choose among
fixed SQL fragments.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

if TYPE_CHECKING:
    from collections.abc import Callable

STATUSES = ("healthy", "unhealthy", "critical_failure", "rate_limited", "rebooted")
PAGE_SIZE = 50
# A check that counts as failing on the charts: a health-check failure outside the settle window.
FAILING = "status NOT IN ('healthy', 'rebooted') AND NOT in_maintenance_window"

# The fleet (issue 25): each instance's last check is one row of green_api_instance_latest, kept by
# the log's insert trigger (sql/012), so counts, search and pages read at most one row per instance;
# the page's figures (uptime, mean, p95) come from the roll-ups, for the page's instances only.
_FLEET_WHERE = """
WHERE (%(q)s::text IS NULL OR l.instance_id ILIKE %(q)s OR l.connection_id ILIKE %(q)s OR l.instance_name ILIKE %(q)s)
  AND (%(status)s::text IS NULL OR l.status = %(status)s
       OR (%(status)s = 'problem' AND l.status NOT IN ('healthy', 'deleted')))
  AND (%(host)s::text IS NULL OR l.api_host = %(host)s)
"""
# Problems first (the worst first), then by instance id.
FLEET_ORDER = """CASE {t}.status WHEN 'critical_failure' THEN 0 WHEN 'unhealthy' THEN 1 WHEN 'rate_limited' THEN 2
  WHEN 'rebooted' THEN 3 WHEN 'deleted' THEN 5 ELSE 4 END, {t}.instance_id"""
# One page of instances, then their readings (green_api_instance_readings: those of the last 7
# days) for that page only.
FLEET_PAGE = f"""
SELECT p.*, r.queue_length, r.queue_read_at, r.socket_status, r.socket_read_at, r.settings_status, r.settings_read_at
FROM (SELECT l.instance_id, l.connection_id, l.instance_name, l.api_host, l.id, l.checked_at, l.status,
             l.state_instance, l.response_time_ms, l.error_message, l.deleted_at
      FROM green_api_fleet l {_FLEET_WHERE}
      ORDER BY {FLEET_ORDER.format(t="l")} LIMIT %(limit)s OFFSET %(offset)s) AS p
JOIN green_api_instance_readings r USING (instance_id)
ORDER BY {FLEET_ORDER.format(t="p")}
"""  # noqa: S608 - fixed fragments, values bound
# The figures of the instances of a page, from the roll-ups (p95: the hours' response times).
FLEET_FIGURES = """
SELECT u.instance_id, u.uptime_24h, u.uptime_7d, u.uptime_30d, u.mean_ms_24h, u.mean_ms_7d, u.mean_ms_30d,
       u.checks_24h, u.reboots_24h, lat.p95_ms AS p95_ms_24h
FROM green_api_instance_uptime_of(%(ids)s) u
LEFT JOIN green_api_instance_latency(%(since)s, %(ids)s) lat USING (instance_id)
"""
FLEET_TOTAL = f"SELECT count(*) AS total FROM green_api_fleet l {_FLEET_WHERE}"  # noqa: S608
# The counts above the list: by status and by API host, over the whole fleet.
FLEET_COUNTS = """
SELECT 'status' AS by, status AS key, count(*)::int AS count FROM green_api_fleet GROUP BY status
UNION ALL
SELECT 'host', COALESCE(api_host, ''), count(*)::int FROM green_api_fleet GROUP BY api_host
UNION ALL
SELECT 'host_problem', COALESCE(api_host, ''), count(*)::int FROM green_api_fleet
WHERE status NOT IN ('healthy', 'deleted') GROUP BY api_host
"""
# Which of the configured connections have been checked (never_checked: the others).
CHECKED_CONNECTIONS = "SELECT DISTINCT connection_id FROM green_api_instance_latest WHERE connection_id = ANY(%(ids)s)"

OPEN_INCIDENTS = """
SELECT id, instance_id, kind, severity, opened_at, extract(epoch FROM open_for)::bigint AS open_seconds,
       checks, reboots, levels_notified, last_state, last_error, members
FROM green_api_open_incidents ORDER BY kind <> 'platform_outage', opened_at
"""

STATS_7D = "SELECT * FROM green_api_stats_7d"

# The 24 h chart per 5 minutes: the fleet's from its 5-minute roll-up (sql/012), whole buckets from
# the one holding ``since``; one instance's from its own rows (288 a day, one per point).
SERIES_24H = """
SELECT bucket AS at, round(sum(response_ms_sum)::numeric / NULLIF(sum(timed_rows), 0))::int AS mean_ms,
       max(response_ms_max) AS max_ms, sum(checks)::int AS checks,
       COALESCE(sum(checks - in_window) FILTER (WHERE status NOT IN ('healthy', 'rebooted')), 0)::int AS failing
FROM green_api_check_5min_all
WHERE bucket >= date_bin('5 minutes', %(since)s, TIMESTAMPTZ '2000-01-01 00:00+00')
GROUP BY 1 ORDER BY 1
"""
SERIES_24H_INSTANCE = f"""
SELECT date_bin('5 minutes', checked_at, TIMESTAMPTZ '2000-01-01 00:00+00') AS at,
       avg(response_time_ms)::int AS mean_ms, max(response_time_ms) AS max_ms,
       count(*)::int AS checks, count(*) FILTER (WHERE {FAILING})::int AS failing
FROM green_api_health_logs
WHERE checked_at >= date_bin('5 minutes', %(since)s, TIMESTAMPTZ '2000-01-01 00:00+00') AND instance_id = %(instance)s
GROUP BY 1 ORDER BY 1
"""  # noqa: S608 - a fixed fragment

_SERIES_HOURLY = """
SELECT hour AS at, (sum(response_ms_sum)::float8 / NULLIF(sum(timed_rows), 0))::int AS mean_ms,
       max(response_ms_max) AS max_ms, sum(checks)::int AS checks,
       COALESCE(sum(checks - in_window) FILTER (WHERE status NOT IN ('healthy', 'rebooted')), 0)::int AS failing
FROM {table}
WHERE hour >= %(since_hour)s {instance}
GROUP BY 1 ORDER BY 1
"""
SERIES_30D = _SERIES_HOURLY.format(table="green_api_check_hourly_all", instance="")
SERIES_30D_INSTANCE = _SERIES_HOURLY.format(table="green_api_check_hourly", instance="AND instance_id = %(instance)s")

# The outgoing queue over 24 h: the longest read per 5-minute bucket; the fleet's from the 5-minute
# roll-up, one instance's from its rows (partial index of sql/008).
QUEUE_24H = """
SELECT bucket AS at, max(queue_max) AS max_queue, sum(queue_reads)::int AS reads
FROM green_api_check_5min_all
WHERE bucket >= date_bin('5 minutes', %(since)s, TIMESTAMPTZ '2000-01-01 00:00+00')
GROUP BY 1 HAVING sum(queue_reads) > 0 ORDER BY 1
"""
QUEUE_24H_INSTANCE = """
SELECT date_bin('5 minutes', g.checked_at, TIMESTAMPTZ '2000-01-01 00:00+00') AS at, max(g.queue_length) AS max_queue,
       count(*)::int AS reads
FROM green_api_health_logs g
WHERE g.instance_id = %(instance)s AND g.queue_length IS NOT NULL
  AND g.checked_at >= date_bin('5 minutes', %(since)s, TIMESTAMPTZ '2000-01-01 00:00+00')
GROUP BY 1 ORDER BY 1
"""

# Reboots and delivered alerts, counted per chart bucket (a marker each), naming a few instances
# (the first ones: a DISTINCT over 30 days of a fleet's reboots costs more than the rest). Both are
# index-only scans (sql/012).
REBOOTS = """
SELECT date_bin(%(bucket)s, checked_at, TIMESTAMPTZ '2000-01-01') AS at, count(*) AS count,
       count(*) FILTER (WHERE reboot_success) AS ok, (array_agg(instance_id))[1:10] AS instances
FROM green_api_health_logs
WHERE reboot_triggered AND checked_at >= %(since)s AND (%(instance)s::varchar IS NULL OR instance_id = %(instance)s)
GROUP BY 1 ORDER BY 1
"""

ALERTS = """
SELECT date_bin(%(bucket)s, attempted_at, TIMESTAMPTZ '2000-01-01') AS at, count(*) AS count,
       (array_agg(DISTINCT message_kind))[1:5] AS kinds, (array_agg(instance_id))[1:10] AS instances
FROM green_api_alert_deliveries
WHERE ok AND attempted_at >= %(since)s AND (%(instance)s::varchar IS NULL OR instance_id = %(instance)s)
GROUP BY 1 ORDER BY 1
"""

CHECK_COLUMNS = """
l.id, l.checked_at, l.instance_id, l.connection_id, l.status, l.state_instance, l.response_time_ms, l.error_message,
l.reboot_triggered, l.reboot_success, l.trigger_type, l.alert_type, l.support_notified, l.support_notification_sent_at,
l.in_maintenance_window, l.dag_id, l.run_id, l.incident_id, l.queue_length, l.socket_status, l.settings_status
"""

CHECKS_PAGE = f"""
SELECT {CHECK_COLUMNS} FROM green_api_health_logs l
WHERE (%(status)s::varchar IS NULL OR l.status = %(status)s)
  AND (%(instance)s::varchar IS NULL OR l.instance_id = %(instance)s)
ORDER BY l.checked_at DESC, l.id DESC LIMIT %(limit)s OFFSET %(offset)s
"""  # noqa: S608 - fixed column list

# The total for the pager, from the roll-ups: exact, and a few hundred rows read at any size (the
# fleet's hours, or one instance's days).
CHECKS_TOTAL = """
SELECT COALESCE(sum(checks), 0) AS total FROM green_api_check_hourly_all
WHERE (%(status)s::varchar IS NULL OR status = %(status)s)
"""
CHECKS_TOTAL_INSTANCE = """
SELECT COALESCE(sum(checks), 0) AS total FROM green_api_check_daily
WHERE (%(status)s::varchar IS NULL OR status = %(status)s) AND instance_id = %(instance)s
"""

ONE_CHECK = f"SELECT {CHECK_COLUMNS} FROM green_api_health_logs l WHERE l.id = %(id)s"  # noqa: S608

# An incident's times are its checks' real times: its first failing and first healthy checks
# (the runs' logical times for incidents stored before those were kept).
INCIDENTS_BY_ID = """
SELECT id, kind, severity, COALESCE(first_failed_at, opened_at) AS opened_at,
       COALESCE(recovered_at, resolved_at) AS resolved_at,
       extract(epoch FROM COALESCE(recovered_at, resolved_at) - COALESCE(first_failed_at, opened_at))::bigint
         AS down_seconds,
       checks, reboots, reboots_ok, levels_notified
FROM green_api_incidents WHERE id = ANY(%(ids)s)
"""

# A check's deliveries are those its run made for its instance.
DELIVERIES_BY_RUN = """
SELECT run_id, instance_id, message_kind, recipient, channel, sender, attempt, ok, error, attempted_at
FROM green_api_alert_deliveries
WHERE run_id = ANY(%(runs)s) AND instance_id = ANY(%(instances)s)
ORDER BY attempted_at, id
"""

LAST_SCHEDULED_REBOOT = """
SELECT max(checked_at) AS at, count(*) AS instances, count(*) FILTER (WHERE status = 'rebooted') AS rebooted
FROM green_api_health_logs
WHERE trigger_type = 'scheduled'
  AND checked_at >= (SELECT max(checked_at) - interval '3 hours' FROM green_api_health_logs WHERE trigger_type = 'scheduled')
"""

WINDOWS = {"24h": timedelta(hours=24), "30d": timedelta(days=30)}
QUEUE_WINDOW, QUEUE_BUCKET = WINDOWS["24h"], timedelta(minutes=5)  # the queue chart's
BUCKETS = {"24h": timedelta(minutes=5), "30d": timedelta(hours=1)}
# Reboots and alerts are marked per longer span: a few hundred marks at most on a picture.
MARK_BUCKETS = {"24h": timedelta(minutes=15), "30d": timedelta(hours=6)}
# While the data covers less than a window (a fresh install), a chart shows the data's span, at least this.
MIN_SPANS = {"24h": timedelta(hours=1), "30d": timedelta(days=1)}


class BadFilter(ValueError):
    """A filter value the dashboard cannot use; the message names it."""


class DatabaseUnavailable(RuntimeError):
    """The health database cannot be reached (the message says so, without the connection's secrets)."""


@dataclass(frozen=True)
class CheckFilter:
    """What the checks list is filtered by (status, instance) and which page of it is asked for."""
    status: str | None = None
    instance: str | None = None
    page: int = 1

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise BadFilter(f"status must be one of {', '.join(STATUSES)}; got {self.status!r}")
        if self.instance is not None and not (0 < len(self.instance) <= 64):
            raise BadFilter(f"instance must be an instance id of 1 to 64 characters; got {self.instance!r}")
        if not 1 <= self.page <= 100_000:
            raise BadFilter(f"page must be between 1 and 100000; got {self.page}")

    def params(self) -> dict[str, Any]:
        """The filter as the query's parameters."""
        return {"status": self.status, "instance": self.instance, "limit": PAGE_SIZE,
                "offset": (self.page - 1) * PAGE_SIZE}


# "deleted": deleted from its partner account; "problem": any status but healthy and deleted
FLEET_STATUSES = (*STATUSES, "deleted", "problem")
FLEET_PAGE_SIZE, FLEET_MAX_LIMIT = 50, 1000


@dataclass(frozen=True)
class FleetFilter:
    """Which instances the fleet list shows: a search (instance id, connection id or name, any part,
    any case), a status of their last check (or ``problem``: any but healthy), an API host, and
    which slice (``offset``, ``limit``)."""
    q: str | None = None
    status: str | None = None
    host: str | None = None
    offset: int = 0
    limit: int = FLEET_PAGE_SIZE

    def __post_init__(self) -> None:
        if self.q is not None and len(self.q) > 100:
            raise BadFilter(f"q must be at most 100 characters; got {len(self.q)}")
        if self.status is not None and self.status not in FLEET_STATUSES:
            raise BadFilter(f"status must be one of {', '.join(FLEET_STATUSES)}; got {self.status!r}")
        if self.host is not None and not (0 < len(self.host) <= 255):
            raise BadFilter(f"host must be an API host of 1 to 255 characters; got {self.host!r}")
        if not 1 <= self.limit <= FLEET_MAX_LIMIT:
            raise BadFilter(f"limit must be between 1 and {FLEET_MAX_LIMIT}; got {self.limit}")
        if not 0 <= self.offset <= 10_000_000:
            raise BadFilter(f"offset must be between 0 and 10000000; got {self.offset}")

    def params(self) -> dict[str, Any]:
        """The filter as the queries' parameters (the search as an ILIKE pattern, its wildcards escaped)."""
        pattern = None
        if self.q:
            pattern = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return {"q": pattern, "status": self.status, "host": self.host, "limit": self.limit, "offset": self.offset}


def window_of(name: str) -> timedelta:
    """The length of a chart's window by its name (``24h`` or ``30d``); another name is refused."""
    if name not in WINDOWS:
        raise BadFilter(f"window must be one of {', '.join(WINDOWS)}; got {name!r}")
    return WINDOWS[name]


class DashboardStore:
    """Reads for the dashboard from the health database (connection ``green_api_db``)."""

    def __init__(self, conninfo: str, *, max_size: int = 4, timeout: float = 5.0) -> None:
        # A page waits at most ``timeout`` for a connection: a database that is down gives a 503
        # quickly, and the pool reconnects by itself when it is back.
        self.pool = ConnectionPool(
            conninfo, min_size=1, max_size=max_size, open=True, name="green_api_dashboard", timeout=timeout,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": max(1, int(timeout))},
        )
        self._parallel = ThreadPoolExecutor(max_workers=max_size, thread_name_prefix="green_api_dashboard")

    def close(self) -> None:
        """Release the pool of connections and the reads' threads."""
        self._parallel.shutdown(wait=False)
        self.pool.close()

    def _all(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            with self.pool.connection() as conn:
                return conn.execute(sql, params or {}).fetchall()  # type: ignore[return-value]
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(
                f"the health database (connection green_api_db) is unreachable: {type(exc).__name__}"
            ) from None

    def together(self, **calls: Callable[[], Any]) -> dict[str, Any]:
        """Run independent reads at once on separate connections (a page needs several)."""
        futures = {name: self._parallel.submit(call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}

    def fleet(self, flt: FleetFilter, now: datetime) -> dict[str, Any]:
        """One page of the instances matching ``flt`` (problems first), each with its last check,
        readings, uptime and response times; the number matching; the counts by status and host."""
        params = flt.params()
        rows = self._all(FLEET_PAGE, params)
        total = int(self._all(FLEET_TOTAL, params)[0]["total"])
        figures = {}
        if rows:
            ids = [r["instance_id"] for r in rows]
            figures = {f["instance_id"]: f for f in self._all(FLEET_FIGURES, {"ids": ids, "since": now - WINDOWS["24h"]})}
        instances = [{**row, **{k: v for k, v in figures.get(row["instance_id"], {}).items() if k != "instance_id"}}
                     for row in rows]  # fmt: skip
        return {"total": total, "limit": flt.limit, "offset": flt.offset, "instances": instances}

    def fleet_counts(self) -> dict[str, dict[str, int]]:
        """How many instances are in each status (their last check), and on each API host ('' unknown),
        with each host's instances not healthy."""
        counts: dict[str, dict[str, int]] = {"status": {}, "host": {}, "host_problem": {}}
        for row in self._all(FLEET_COUNTS):
            counts[row["by"]][row["key"]] = row["count"]
        return counts

    def checked_connections(self, conn_ids: list[str]) -> set[str]:
        """Which of ``conn_ids`` have at least one check logged."""
        if not conn_ids:
            return set()
        return {r["connection_id"] for r in self._all(CHECKED_CONNECTIONS, {"ids": conn_ids})}

    def open_incidents(self) -> list[dict[str, Any]]:
        """The open incidents: platform outages first, then oldest first."""
        return self._all(OPEN_INCIDENTS)

    def stats_7d(self) -> dict[str, Any]:
        """The seed's 7-day statistics (checks by status, response times, reboots, alerts)."""
        return self._all(STATS_7D)[0]

    def series(self, window: str, now: datetime, instance: str | None = None) -> dict[str, Any]:
        """The points of a chart over ``window`` (all instances, or one)."""
        since = now - window_of(window)
        params = {"since": since, "instance": instance, "bucket": MARK_BUCKETS[window],
                  "since_hour": since.replace(minute=0, second=0, microsecond=0)}
        got = self.together(buckets=lambda: self._all(self._series_sql(window, instance), params),
                            reboots=lambda: _named(self._all(REBOOTS, params)),
                            alerts=lambda: _named(self._all(ALERTS, params)))
        return {"window": window, "since": params["since"], **got}

    def queue(self, now: datetime, instance: str | None = None) -> dict[str, Any]:
        """The outgoing queue's length over the last 24 h, the longest read per 5-minute bucket."""
        since = now - QUEUE_WINDOW
        return {"since": since, "bucket_minutes": int(QUEUE_BUCKET.total_seconds() // 60),
                "buckets": self._all(QUEUE_24H_INSTANCE if instance else QUEUE_24H, {"since": since, "instance": instance})}

    @staticmethod
    def _series_sql(window: str, instance: str | None) -> str:
        if window == "24h":
            return SERIES_24H_INSTANCE if instance else SERIES_24H
        return SERIES_30D_INSTANCE if instance else SERIES_30D

    def checks(self, flt: CheckFilter) -> dict[str, Any]:
        """One page of the checks, newest first, with its total, each with its reboot and alerts."""
        params = flt.params()
        rows = self._all(CHECKS_PAGE, params)
        total = int(self._all(CHECKS_TOTAL_INSTANCE if flt.instance else CHECKS_TOTAL, params)[0]["total"])
        return {"page": flt.page, "page_size": PAGE_SIZE, "total": total,
                "pages": max(1, -(-total // PAGE_SIZE)), "checks": self._with_details(rows)}

    def check(self, check_id: int) -> dict[str, Any] | None:
        """One check with its details, or None when there is no such check."""
        rows = self._all(ONE_CHECK, {"id": check_id})
        return self._with_details(rows)[0] if rows else None

    def _with_details(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        incident_ids = sorted({r["incident_id"] for r in rows if r["incident_id"] is not None})
        runs = sorted({r["run_id"] for r in rows if r["run_id"]})
        incidents = {i["id"]: i for i in self._all(INCIDENTS_BY_ID, {"ids": incident_ids})} if incident_ids else {}
        deliveries: dict[tuple[str, str], list[dict[str, Any]]] = {}
        if runs:
            instances = sorted({r["instance_id"] for r in rows if r["instance_id"]})
            for d in self._all(DELIVERIES_BY_RUN, {"runs": runs, "instances": instances}):
                deliveries.setdefault((d.pop("run_id"), d.pop("instance_id")), []).append(d)
        return [
            {**r, "incident": incidents.get(r["incident_id"]),
             "deliveries": deliveries.get((r["run_id"], r["instance_id"]), [])}
            for r in rows
        ]

    def last_scheduled_reboot(self) -> dict[str, Any] | None:
        """When the daily reboot last ran and how it went, or None if never."""
        row = self._all(LAST_SCHEDULED_REBOOT)[0]
        return row if row["at"] is not None else None


def _named(marks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each mark names at most 5 different instances, in the order met."""
    return [{**m, "instances": list(dict.fromkeys(m["instances"]))[:5]} for m in marks]


_store: DashboardStore | None = None
_lock = threading.Lock()


def shared_store(conninfo_factory: Callable[[], str]) -> DashboardStore:
    """One pool per API-server process, opened on first use."""
    global _store
    with _lock:
        if _store is None:
            _store = DashboardStore(conninfo_factory())
        return _store

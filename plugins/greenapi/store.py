"""PostgreSQL reads and writes of the health data (connection ``green_api_db``), nothing else.

Every method opens one connection, runs its statements in one transaction (:meth:`HealthStore._cursor`),
and reads rows by column name into the records of ``greenapi.domain``. A server that cannot be
reached raises :class:`StoreUnavailable`, naming the connection.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from airflow.providers.postgres.hooks.postgres import PostgresHook

from greenapi.domain.broken import Watch
from greenapi.domain.codec import encode
from greenapi.domain.config import DB_CONN_ID
from greenapi.domain.health import InstanceHistory
from greenapi.domain.incidents import Episode, Incident, Severity
from greenapi.domain.partner import PartnerRecord
from greenapi.domain.records import Delivery
from greenapi.domain.rules import AlertKind
from greenapi.domain.runs import LogRow
from greenapi.domain.watch import WatchRound

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import date, datetime


P = ParamSpec("P")
R = TypeVar("R")


LOG_COLUMNS: dict[str, str] = {
    "checked_at": "timestamptz",
    "status": "varchar",
    "state_instance": "varchar",
    "error_message": "text",
    "reboot_triggered": "boolean",
    "reboot_success": "boolean",
    "response_time_ms": "integer",
    "support_notified": "boolean",
    "support_notification_sent_at": "timestamptz",
    "trigger_type": "varchar",
    "instance_id": "varchar",
    "connection_id": "varchar",
    "alert_type": "varchar",
    "dag_id": "varchar",
    "run_id": "varchar",
    "incident_id": "bigint",
    "in_maintenance_window": "boolean",
    "queue_length": "integer",
    "socket_status": "varchar",
    "settings_status": "varchar",
    "api_host": "varchar",
    "instance_name": "varchar",
}
assert list(LOG_COLUMNS) == [f.name for f in fields(LogRow)], "LogRow and the health log's columns differ"

_COLS = ", ".join(LOG_COLUMNS)
_RECORD = ", ".join(f"{name} {kind}" for name, kind in LOG_COLUMNS.items())
# One statement for the whole run, whatever the number of instances; a retried write is a no-op:
# a (dag, run, instance) already logged is left as it is. The log is partitioned by day, so that
# rule cannot be a unique key (it would have to hold checked_at): the insert checks it, under a
# lock per run (LOCK_RUNS) taken first in the same transaction.
LOCK_RUNS = (
    "SELECT pg_advisory_xact_lock(hashtext(k.dag_id), hashtext(k.run_id)) FROM ("
    " SELECT DISTINCT r.dag_id, r.run_id FROM jsonb_to_recordset(%s::jsonb) AS r(dag_id text, run_id text)"
    " WHERE r.run_id IS NOT NULL ORDER BY 1, 2) AS k"
)
INSERT_LOGS = (
    f"INSERT INTO green_api_health_logs ({_COLS}) "  # noqa: S608 - fixed column list, values bound
    f"SELECT DISTINCT ON (r.dag_id, r.run_id, r.instance_id) "
    f"{_COLS.replace('in_maintenance_window', 'COALESCE(in_maintenance_window, false)')} "
    f"FROM jsonb_to_recordset(%s::jsonb) AS r({_RECORD}) "
    "WHERE NOT EXISTS (SELECT 1 FROM green_api_health_logs g"
    " WHERE g.run_id = r.run_id AND g.instance_id = r.instance_id AND g.dag_id = r.dag_id)"
)

SELECT_ACTIVE_CONTACTS = (
    "SELECT id, full_name, phone_number, notification_priority, email FROM system_support_contacts "
    "WHERE is_active ORDER BY notification_priority, id"
)

# The log is partitioned by UTC day (sql/012): retention drops whole days, partitions are made ahead.
MAKE_PARTITIONS = "SELECT green_api_health_log_partitions(%s::date, %s::date)"
DROP_OLD_LOGS = "SELECT partitions, rows FROM green_api_drop_health_logs_before(%s::timestamptz)"
# Dropping a partition locks the log for an instant; a long dashboard query in the way makes it
# wait this long at most (then the task fails, and its retry comes).
DDL_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '15s'"


# What a partner account listed (no token): new or changed instances are counted; an instance
# newly seen deleted has its open incidents closed without a message (it is gone on purpose).
UPSERT_WATCH_ROUND = (
    "INSERT INTO green_api_state_watch (watch_name, started_at, last_round_at, watch_seconds, watched, answered,"
    " rate_limited, unusable, rounds, changes, round_ms) VALUES (%(watch_name)s, %(started_at)s, %(at)s,"
    " %(watch_seconds)s, %(watched)s, %(answered)s, %(rate_limited)s, %(unusable)s, %(rounds)s, %(changes)s,"
    " %(round_ms)s) ON CONFLICT (watch_name) DO UPDATE SET started_at = EXCLUDED.started_at,"
    " last_round_at = EXCLUDED.last_round_at, watch_seconds = EXCLUDED.watch_seconds, watched = EXCLUDED.watched,"
    " answered = EXCLUDED.answered, rate_limited = EXCLUDED.rate_limited, unusable = EXCLUDED.unusable,"
    " rounds = EXCLUDED.rounds, changes = EXCLUDED.changes, round_ms = EXCLUDED.round_ms"
)
SELECT_WATCH_ROUND = (
    "SELECT watch_name, started_at, last_round_at AS at, watch_seconds, watched, answered, rate_limited, unusable,"
    " rounds, changes, round_ms FROM green_api_state_watch WHERE watch_name = %s"
)
UPSERT_PARTNER_INSTANCES = (
    "INSERT INTO green_api_partner_instances AS p (instance_id, partner_connection_id, name, type_instance, deleted,"
    " time_deleted, expires_at, expired, tariff)"
    " SELECT r.instance_id, %s, r.name, r.type_instance, r.deleted, r.time_deleted, r.expires_at, r.expired, r.tariff"
    " FROM jsonb_to_recordset(%s::jsonb) AS r(instance_id varchar, name varchar, type_instance varchar,"
    " deleted boolean, time_deleted timestamptz, expires_at timestamptz, expired boolean, tariff varchar)"
    " ON CONFLICT (instance_id) DO UPDATE SET partner_connection_id = EXCLUDED.partner_connection_id,"
    " name = EXCLUDED.name, type_instance = EXCLUDED.type_instance, deleted = EXCLUDED.deleted,"
    " time_deleted = EXCLUDED.time_deleted, expires_at = EXCLUDED.expires_at, expired = EXCLUDED.expired,"
    " tariff = EXCLUDED.tariff, changed_at = now(), last_listed_at = now()"
    " WHERE (p.partner_connection_id, p.name, p.type_instance, p.deleted, p.time_deleted, p.expires_at, p.expired,"
    " p.tariff) IS DISTINCT FROM (EXCLUDED.partner_connection_id, EXCLUDED.name, EXCLUDED.type_instance,"
    " EXCLUDED.deleted, EXCLUDED.time_deleted, EXCLUDED.expires_at, EXCLUDED.expired, EXCLUDED.tariff)"
)
TOUCH_PARTNER_INSTANCES = (
    "UPDATE green_api_partner_instances SET last_listed_at = now() "
    "WHERE partner_connection_id = %s AND instance_id = ANY(%s)"
)
CLOSE_DELETED_INCIDENTS = (
    "UPDATE green_api_incidents i SET resolved_at = GREATEST(now(), i.opened_at), resolution_notified_at = now(),"
    " last_error = 'instance deleted from its partner account'"
    " FROM green_api_partner_instances p"
    " WHERE p.instance_id = i.instance_id AND p.deleted AND i.resolved_at IS NULL AND p.partner_connection_id = %s"
)


@dataclass(frozen=True)
class Contact:
    """An active row of ``system_support_contacts``."""

    id: int
    full_name: str
    phone_number: str
    notification_priority: int
    email: str | None = None


class StoreUnavailable(Exception):
    """The health database cannot be reached (down, restarting, network); the message says so."""


@functools.cache
def _connection_errors() -> tuple[type[Exception], ...]:
    """What the drivers PostgresHook may use raise when the server is down or the link is cut."""
    errors: list[type[Exception]] = []
    for driver in ("psycopg", "psycopg2"):
        try:
            module = importlib.import_module(driver)
        except ImportError:
            continue
        errors += [module.OperationalError, module.InterfaceError]
    return tuple(errors)


def _reachable(method: Callable[P, R]) -> Callable[P, R]:
    """Connection failures of a store method become StoreUnavailable, naming the connection."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except _connection_errors() as exc:
            store = args[0]
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailable(
                f"health database unreachable (connection {getattr(store, 'postgres_conn_id', DB_CONN_ID)}): {reason}"
            ) from None

    return wrapper


class HealthStore:
    """The health log and the support contacts.

    Every method raises StoreUnavailable when the database cannot be reached.
    """

    def __init__(self, postgres_conn_id: str = DB_CONN_ID, connection: Any = None) -> None:
        self.postgres_conn_id = postgres_conn_id
        self.connection = connection  # already loaded (the triggerer's, fetched asynchronously), else by id

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor in a transaction of its own: committed when the block ends, rolled back (the
        connection closed without a commit) when it raises."""
        hook = PostgresHook(postgres_conn_id=self.postgres_conn_id, connection=self.connection)
        conn = hook.get_conn()
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        finally:
            conn.close()

    def _rows(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        """The rows of one query, each by column name."""
        with self._cursor() as cur:
            cur.execute(query, params)
            names = [column[0] for column in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @_reachable
    def active_contacts(self) -> list[Contact]:
        """The active support contacts, lowest ``notification_priority`` first."""
        return [Contact(**row) for row in self._rows(SELECT_ACTIVE_CONTACTS)]

    contacts_with_email = active_contacts

    @_reachable
    def make_partitions(self, first: date, last: date) -> int:
        """Make the health log's daily partitions from ``first`` to ``last`` (UTC days, both
        included) that are missing; returns how many were made."""
        with self._cursor() as cur:
            cur.execute(DDL_LOCK_TIMEOUT)
            cur.execute(MAKE_PARTITIONS, (first, last))
            return int(cur.fetchone()[0])

    @_reachable
    def drop_logs_before(self, before: datetime) -> tuple[int, int]:
        """Drop the partitions of the UTC days that ended by ``before``, with their roll-ups;
        returns the partitions dropped and the rows they held."""
        with self._cursor() as cur:
            cur.execute(DDL_LOCK_TIMEOUT)
            cur.execute(DROP_OLD_LOGS, (before,))
            partitions, rows = cur.fetchone()
            return int(partitions), int(rows)

    @_reachable
    def record_partner_instances(self, accounts: Mapping[str, Sequence[PartnerRecord]]) -> int:
        """Record what each partner account (by connection id) lists; returns how many instances
        are new or changed. The open incidents of an instance deleted from its account are closed."""
        changed = 0
        with self._cursor() as cur:
            for conn_id, records in accounts.items():
                cur.execute(UPSERT_PARTNER_INSTANCES, (conn_id, json.dumps(encode(list(records), list[PartnerRecord]))))
                changed += cur.rowcount
                cur.execute(TOUCH_PARTNER_INSTANCES, (conn_id, [r.instance_id for r in records]))
                cur.execute(CLOSE_DELETED_INCIDENTS, (conn_id,))
        return changed

    @_reachable
    def record_watch_round(self, last: WatchRound) -> None:
        """Record a state watch's last round (one row per watch, replaced)."""
        with self._cursor() as cur:
            cur.execute(UPSERT_WATCH_ROUND, asdict(last))

    @_reachable
    def watch_round(self, watch_name: str) -> WatchRound | None:
        """A state watch's last recorded round, None before its first."""
        rows = self._rows(SELECT_WATCH_ROUND, (watch_name,))
        return WatchRound(**rows[0]) if rows else None

    @_reachable
    def insert_health_logs(self, rows: Sequence[LogRow | Mapping[str, Any]]) -> int:
        """Insert the rows in one round trip; returns how many were new (a row of a run and
        instance already logged is left as it is)."""
        if not rows:
            return 0
        with self._cursor() as cur:
            return _insert_logs(cur, rows)


def _insert_logs(cur: Any, rows: Sequence[LogRow | Mapping[str, Any]]) -> int:
    """Log ``rows`` in the cursor's transaction, under the lock of their runs; returns how many were new."""
    data = _logs_json(rows)
    cur.execute(LOCK_RUNS, (data,))
    cur.execute(INSERT_LOGS, (data,))
    return int(cur.rowcount)


def _logs_json(rows: Sequence[LogRow | Mapping[str, Any]]) -> str:
    """Health-log rows as the JSON the insert reads; a key that is not a column is refused."""
    plain = [dict(row) if isinstance(row, Mapping) else encode(row) for row in rows]
    unknown = {key for row in plain for key in row} - set(LOG_COLUMNS)
    if unknown:
        raise ValueError(f"unknown health log column(s): {sorted(unknown)}")
    return json.dumps(plain, default=str)


# ---- incidents, per-instance counters, delivery attempts

_INCIDENT_COLUMNS = (
    "id", "instance_id", "connection_id", "kind", "severity", "opened_at", "resolved_at", "last_state",
    "last_error", "checks", "reboots", "reboots_ok", "levels_notified", "opening_notified_at",
    "last_reminder_at", "resolution_notified_at", "first_failed_at", "recovered_at", "members",
    "last_seen_at", "course",
)  # fmt: skip
assert set(_INCIDENT_COLUMNS) == {f.name for f in fields(Incident)}, "Incident and green_api_incidents differ"
_STATUS_COLUMNS = tuple(f.name for f in fields(InstanceHistory) if f.name not in ("watch", "auto_reboots"))
_WATCH_COLUMNS = tuple(f.name for f in fields(Watch))

SELECT_LIVE_INCIDENTS = (
    f"SELECT {', '.join(_INCIDENT_COLUMNS)} FROM green_api_incidents "  # noqa: S608 - fixed column list
    "WHERE instance_id = ANY(%s) AND (resolved_at IS NULL"
    " OR (resolution_notified_at IS NULL AND opening_notified_at IS NOT NULL)) ORDER BY id"
)
SELECT_LIVE_OUTAGES = (
    f"SELECT {', '.join(_INCIDENT_COLUMNS)} FROM green_api_incidents "  # noqa: S608 - fixed column list
    "WHERE kind = 'platform_outage' AND (resolved_at IS NULL"
    " OR (resolution_notified_at IS NULL AND opening_notified_at IS NOT NULL)) ORDER BY id"
)
SELECT_RECENT_REBOOTS = "SELECT instance_id, auto_reboots FROM green_api_instance_status WHERE cardinality(auto_reboots) > 0"
SELECT_COUNTERS = (
    f"SELECT {', '.join(_STATUS_COLUMNS + _WATCH_COLUMNS)}, auto_reboots"  # noqa: S608 - fixed column list
    " FROM green_api_instance_status WHERE instance_id = ANY(%s)"
)
SELECT_READ_TIMES = "SELECT instance_id, queue_read_at, settings_read_at FROM green_api_instance_status"
# When each instance's queue and settings were read (NULL: not read this time): kept per instance,
# so that each read keeps its own period (queue_check_minutes, settings_check_minutes).
MARK_READS = (
    "INSERT INTO green_api_instance_status AS s (instance_id, queue_read_at, settings_read_at)"
    " SELECT * FROM unnest(%(ids)s::text[], %(queue)s::timestamptz[], %(settings)s::timestamptz[])"
    " ON CONFLICT (instance_id) DO UPDATE SET queue_read_at = COALESCE(EXCLUDED.queue_read_at, s.queue_read_at),"
    " settings_read_at = COALESCE(EXCLUDED.settings_read_at, s.settings_read_at)"
)
# Appends under the row lock: two runs rebooting at once still see each other's reboot.
RECORD_AUTO_REBOOT = (
    "INSERT INTO green_api_instance_status (instance_id, auto_reboots) VALUES (%s, ARRAY[%s::timestamptz])"
    " ON CONFLICT (instance_id) DO UPDATE SET auto_reboots = ("
    " SELECT COALESCE(array_agg(t ORDER BY t), '{}') FROM unnest(green_api_instance_status.auto_reboots) t"
    " WHERE t > %s::timestamptz - INTERVAL '24 hours') || %s::timestamptz"
)
_COUNTER_COLUMNS = _STATUS_COLUMNS + _WATCH_COLUMNS
UPSERT_COUNTERS = (
    f"INSERT INTO green_api_instance_status ({', '.join(_COUNTER_COLUMNS)})"  # noqa: S608 - fixed columns
    f" VALUES ({', '.join(['%s'] * len(_COUNTER_COLUMNS))}) ON CONFLICT (instance_id) DO UPDATE SET"
    f" {', '.join(f'{c} = EXCLUDED.{c}' for c in _COUNTER_COLUMNS[1:])}"
    # A check is counted once: a re-run of the alert step (cleared, retried) changes nothing.
    " WHERE green_api_instance_status.last_checked_at IS NULL"
    " OR green_api_instance_status.last_checked_at < EXCLUDED.last_checked_at"
)
# The counters a check task computed from the row it read, written only if that row is still as it
# read it (its last_checked_at unchanged): the rule of which checks it settles is the domain's.
SETTLE_COUNTERS = UPSERT_COUNTERS.replace(
    " WHERE green_api_instance_status.last_checked_at IS NULL"
    " OR green_api_instance_status.last_checked_at < EXCLUDED.last_checked_at",
    " WHERE green_api_instance_status.last_checked_at IS NOT DISTINCT FROM %s::timestamptz RETURNING instance_id",
)
_MUTABLE = _INCIDENT_COLUMNS[4:]
INSERT_INCIDENT = (
    f"INSERT INTO green_api_incidents ({', '.join(_INCIDENT_COLUMNS[1:])}) "  # noqa: S608 - fixed columns
    f"VALUES ({', '.join(['%s'] * (len(_INCIDENT_COLUMNS) - 1))}) RETURNING id"
)
UPDATE_INCIDENT = (
    f"UPDATE green_api_incidents SET {', '.join(f'{c} = %s' for c in _MUTABLE)} WHERE id = %s"  # noqa: S608
)
INSERT_DELIVERY = (
    "INSERT INTO green_api_alert_deliveries (incident_id, instance_id, dag_id, run_id, message_kind, contact_id,"
    " recipient, channel, sender, attempt, ok, id_message, error, attempted_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
# Messages already delivered: those of these incidents that happen once per incident (opening,
# escalation, resolution), and all of this run's (an earlier try of its alert step, stopped).
SELECT_DELIVERED = (
    "SELECT message_kind, instance_id, recipient, channel, sender, attempt, ok, attempted_at AS at, id_message,"
    " error, incident_id, contact_id, run_id FROM green_api_alert_deliveries WHERE ok"
    " AND ((incident_id = ANY(%s) AND message_kind <> 'reminder') OR (run_id = %s AND dag_id = %s))"
)
SELECT_SCHEDULED_REBOOT_FAILURES = (
    "SELECT instance_id FROM green_api_health_logs WHERE dag_id = 'green_api_scheduled_reboot'"
    " AND status <> 'rebooted' AND checked_at >= %s AND instance_id = ANY(%s)"
)


def _incident_params(incident: Incident, columns: tuple[str, ...]) -> list[Any]:
    values = [getattr(incident, column) for column in columns]
    # enums as text, the members as an array, the course as JSON
    return [json.dumps([e.to_json() for e in value]) if column == "course"
            else value.value if hasattr(value, "value") else list(value) if isinstance(value, tuple) else value
            for column, value in zip(columns, values, strict=True)]  # fmt: skip


def _incident(row: dict[str, Any]) -> Incident:
    members = tuple(row["members"]) if row["members"] is not None else None
    course = tuple(Episode.from_json(e) for e in row["course"] or ())
    return Incident(**{**row, "kind": AlertKind(row["kind"]), "severity": Severity(row["severity"]), "members": members,
                       "course": course})  # fmt: skip


def _history(row: dict[str, Any]) -> InstanceHistory:
    watch = Watch(**{c: row.pop(c) for c in _WATCH_COLUMNS})
    watch = replace(watch, queue_streak=watch.queue_streak or 0, socket_streak=watch.socket_streak or 0)
    return InstanceHistory(**{**row, "auto_reboots": tuple(row["auto_reboots"] or ())}, watch=watch)


def _counter_params(h: InstanceHistory) -> list[Any]:
    return [*(getattr(h, c) for c in _STATUS_COLUMNS), *(getattr(h.watch, c) for c in _WATCH_COLUMNS)]


class IncidentStore(HealthStore):
    """Incident state, counters and delivery attempts, written in one transaction per call."""

    @_reachable
    def live_incidents(self, instance_ids: list[str]) -> list[Incident]:
        """Open incidents of these instances, and resolved ones whose resolution is still to send."""
        return [_incident(row) for row in self._rows(SELECT_LIVE_INCIDENTS, (instance_ids,))]

    @_reachable
    def live_outages(self) -> list[Incident]:
        """Open platform outages, and resolved ones whose resolution is still to send."""
        return [_incident(row) for row in self._rows(SELECT_LIVE_OUTAGES)]

    @_reachable
    def counters(self, instance_ids: list[str]) -> dict[str, InstanceHistory]:
        """What earlier runs saw of these instances (those never seen are missing)."""
        return {h.instance_id: h for h in map(_history, self._rows(SELECT_COUNTERS, (instance_ids,)))}

    @_reachable
    def read_times(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """When each instance's queue and settings were last read: ``{instance_id: (queue, settings)}``."""
        return {r["instance_id"]: (r["queue_read_at"], r["settings_read_at"]) for r in self._rows(SELECT_READ_TIMES)}

    @_reachable
    def mark_reads(self, reads: dict[str, tuple[datetime | None, datetime | None]]) -> None:
        """Record the queue and settings reads just made: ``{instance_id: (queue_at, settings_at)}``,
        None where that read was not made."""
        if not reads:
            return
        with self._cursor() as cur:
            cur.execute(MARK_READS, {"ids": list(reads), "queue": [q for q, _ in reads.values()],
                                     "settings": [s for _, s in reads.values()]})  # fmt: skip

    @_reachable
    def auto_reboots(self) -> dict[str, list[datetime]]:
        """Every instance's recorded automatic reboots (the past 24 h are kept)."""
        return {r["instance_id"]: list(r["auto_reboots"]) for r in self._rows(SELECT_RECENT_REBOOTS)}

    @_reachable
    def scheduled_reboot_failures(self, since: datetime, instance_ids: list[str]) -> set[str]:
        """The instances whose scheduled reboot since ``since`` was logged as a failure."""
        return {r["instance_id"] for r in self._rows(SELECT_SCHEDULED_REBOOT_FAILURES, (since, instance_ids))}

    @_reachable
    def settle(self, rows: Sequence[LogRow], counters: Sequence[InstanceHistory],
               seen: Mapping[str, datetime | None]) -> set[str]:  # fmt: skip
        """Save the counters a check task computed and log its rows, in one transaction, for the
        instances whose status row is still as it was read (``seen``: its ``last_checked_at``
        then). Returns the instances settled; the others are left to the alert step."""
        if not counters:
            return set()
        settled: set[str] = set()
        with self._cursor() as cur:
            for h in counters:
                cur.execute(SETTLE_COUNTERS, [*_counter_params(h), seen.get(h.instance_id)])
                settled.update(str(r[0]) for r in cur.fetchall())
            mine = [r for r in rows if r.instance_id in settled]
            if mine:
                _insert_logs(cur, mine)
        return settled

    @_reachable
    def record_auto_reboot(self, instance_id: str, at: datetime) -> None:
        """Record an automatic reboot at ``at`` (the run's logical time), before it is requested."""
        with self._cursor() as cur:
            cur.execute(RECORD_AUTO_REBOOT, (instance_id, at, at, at))

    @_reachable
    def save(self, counters: Sequence[InstanceHistory], incidents: Sequence[Incident]) -> list[Incident]:
        """Upsert counters and incidents; returns the incidents with their ids."""
        saved = []
        with self._cursor() as cur:
            for h in counters:
                cur.execute(UPSERT_COUNTERS, _counter_params(h))
            for incident in incidents:
                if incident.id is None:
                    cur.execute(INSERT_INCIDENT, _incident_params(incident, _INCIDENT_COLUMNS[1:]))
                    saved.append(replace(incident, id=int(cur.fetchone()[0])))
                else:
                    cur.execute(UPDATE_INCIDENT, [*_incident_params(incident, _MUTABLE), incident.id])
                    saved.append(incident)
        return saved

    @_reachable
    def delivered(self, incident_ids: list[int], dag_id: str, run_id: str) -> list[tuple[Delivery, str]]:
        """Accepted deliveries (with their run id): of these incidents' once-only notices, and of this run."""
        found = []
        for row in self._rows(SELECT_DELIVERED, (incident_ids, run_id, dag_id)):
            of_run = row.pop("run_id")
            found.append((Delivery(**{**row, "at": row["at"].isoformat()}), of_run))
        return found

    @_reachable
    def record_deliveries(self, deliveries: Sequence[Delivery], dag_id: str, run_id: str) -> None:
        """Store delivery attempts of a run (the alert step stores each contact's as it is made)."""
        if not deliveries:
            return
        rows = [(d.incident_id, d.instance_id, dag_id, run_id, d.message_kind, d.contact_id, d.recipient, d.channel,
                 d.sender, d.attempt, d.ok, d.id_message, d.error, d.at) for d in deliveries]  # fmt: skip
        with self._cursor() as cur:
            cur.executemany(INSERT_DELIVERY, rows)


async def record_round(last: WatchRound) -> None:
    """The health check's state watch records each round here (its trigger's ``record_round``,
    called in the triggerer's event loop): the connection is fetched asynchronously, the write
    runs in a thread."""
    import asyncio

    from airflow.sdk import BaseHook

    connection = await BaseHook.aget_connection(DB_CONN_ID)
    await asyncio.to_thread(HealthStore(DB_CONN_ID, connection=connection).record_watch_round, last)

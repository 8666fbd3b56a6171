"""PostgreSQL reads and writes of the health data (connection ``green_api_db``), nothing else."""

from __future__ import annotations

import functools
import importlib
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from airflow.providers.postgres.hooks.postgres import PostgresHook

from greenapi.domain.broken import Watch
from greenapi.domain.health import InstanceHistory
from greenapi.domain.incidents import Incident, Severity
from greenapi.domain.records import Delivery
from greenapi.domain.rules import AlertKind

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


P = ParamSpec("P")
R = TypeVar("R")

DB_CONN_ID = "green_api_db"

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
}

_COLS = ", ".join(LOG_COLUMNS)
_RECORD = ", ".join(f"{name} {kind}" for name, kind in LOG_COLUMNS.items())
# One statement for the whole run, whatever the number of instances; a retried write is a no-op.
INSERT_LOGS = (
    f"INSERT INTO green_api_health_logs ({_COLS}) "  # noqa: S608 - fixed column list, values bound
    f"SELECT {_COLS.replace('in_maintenance_window', 'COALESCE(in_maintenance_window, false)')} "
    f"FROM jsonb_to_recordset(%s::jsonb) AS r({_RECORD}) "
    "ON CONFLICT ON CONSTRAINT green_api_health_logs_run_instance_key DO NOTHING"
)

SELECT_ACTIVE_CONTACTS = (
    "SELECT id, full_name, phone_number, notification_priority FROM system_support_contacts "
    "WHERE is_active ORDER BY notification_priority, id"
)


# Bounded batches: a short transaction each, so checks keep logging while a large purge runs.
DELETE_OLD_LOGS = (
    "DELETE FROM green_api_health_logs WHERE id IN ("
    " SELECT id FROM green_api_health_logs WHERE checked_at < %s ORDER BY checked_at LIMIT %s)"
)


@dataclass(frozen=True)
class Contact:
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

    def __init__(self, postgres_conn_id: str = DB_CONN_ID) -> None:
        self.postgres_conn_id = postgres_conn_id

    def _hook(self) -> PostgresHook:
        return PostgresHook(postgres_conn_id=self.postgres_conn_id)

    @_reachable
    def active_contacts(self) -> list[Contact]:
        rows = self._hook().get_records(SELECT_ACTIVE_CONTACTS)
        return [Contact(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    @_reachable
    def delete_logs_before(self, cutoff: str, batch_size: int) -> int:
        """Delete one batch of health-log rows checked before ``cutoff``; returns how many."""
        conn = self._hook().get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(DELETE_OLD_LOGS, (cutoff, batch_size))
                deleted = cur.rowcount
            conn.commit()
        finally:
            conn.close()
        return int(deleted)

    @_reachable
    def insert_health_logs(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert the rows in one round trip; returns how many were new."""
        if not rows:
            return 0
        unknown = {key for row in rows for key in row} - set(LOG_COLUMNS)
        if unknown:
            raise ValueError(f"unknown health log column(s): {sorted(unknown)}")
        conn = self._hook().get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(INSERT_LOGS, (json.dumps(list(rows), default=str),))
                inserted = cur.rowcount
            conn.commit()
        finally:
            conn.close()
        return int(inserted)


# ---- incidents, per-instance counters, delivery attempts

_INCIDENT_COLUMNS = (
    "id", "instance_id", "connection_id", "kind", "severity", "opened_at", "resolved_at", "last_state",
    "last_error", "checks", "reboots", "reboots_ok", "levels_notified", "opening_notified_at",
    "last_reminder_at", "resolution_notified_at", "first_failed_at", "recovered_at",
)  # fmt: skip

SELECT_LIVE_INCIDENTS = (
    f"SELECT {', '.join(_INCIDENT_COLUMNS)} FROM green_api_incidents "  # noqa: S608 - fixed column list
    "WHERE instance_id = ANY(%s) AND (resolved_at IS NULL"
    " OR (resolution_notified_at IS NULL AND opening_notified_at IS NOT NULL)) ORDER BY id"
)
SELECT_RECENT_REBOOTS = "SELECT instance_id, auto_reboots FROM green_api_instance_status WHERE cardinality(auto_reboots) > 0"
_WATCH_COLUMNS = ("queue_streak", "queue_since", "queue_length", "socket_streak", "socket_since")
SELECT_COUNTERS = (
    "SELECT instance_id, failing_kind, consecutive_failures, consecutive_successes, last_state, state_since,"  # noqa: S608 - fixed columns
    f" auto_reboots, streak_started_at, last_checked_at, {', '.join(_WATCH_COLUMNS)}"
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
# A healthy check of a quiet instance (counted before, not failing, no incident to follow up), counted
# as the alert step would count it (domain.incidents.observe), only once per run (``last_checked_at``).
# The instances it did not match (new, failing, with an incident, or counted already) are left to
# the alert step.
SETTLE_HEALTHY = (
    "UPDATE green_api_instance_status s SET consecutive_successes = s.consecutive_successes + 1,"
    " streak_started_at = CASE WHEN s.consecutive_successes > 0 THEN COALESCE(s.streak_started_at, v.checked_at)"
    " ELSE v.checked_at END,"
    " state_since = CASE WHEN s.last_state = 'authorized' THEN s.state_since ELSE %(now)s END,"
    " last_state = 'authorized', last_checked_at = %(now)s"
    " FROM unnest(%(ids)s::text[], %(checked)s::timestamptz[]) AS v(instance_id, checked_at)"
    " WHERE s.instance_id = v.instance_id AND s.failing_kind IS NULL AND s.consecutive_failures = 0"
    " AND s.queue_streak = 0 AND s.socket_streak = 0"
    " AND (s.last_checked_at IS NULL OR s.last_checked_at < %(now)s)"
    " AND NOT EXISTS (SELECT 1 FROM green_api_incidents i WHERE i.instance_id = s.instance_id AND (i.resolved_at"
    " IS NULL OR (i.resolution_notified_at IS NULL AND i.opening_notified_at IS NOT NULL)))"
    " RETURNING s.instance_id"
)
# Appends under the row lock: two runs rebooting at once still see each other's reboot.
RECORD_AUTO_REBOOT = (
    "INSERT INTO green_api_instance_status (instance_id, auto_reboots) VALUES (%s, ARRAY[%s::timestamptz])"
    " ON CONFLICT (instance_id) DO UPDATE SET auto_reboots = ("
    " SELECT COALESCE(array_agg(t ORDER BY t), '{}') FROM unnest(green_api_instance_status.auto_reboots) t"
    " WHERE t > %s::timestamptz - INTERVAL '24 hours') || %s::timestamptz"
)
UPSERT_COUNTERS = (
    "INSERT INTO green_api_instance_status (instance_id, failing_kind, consecutive_failures,"  # noqa: S608 - fixed columns
    f" consecutive_successes, last_state, state_since, last_checked_at, streak_started_at, {', '.join(_WATCH_COLUMNS)})"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (instance_id) DO UPDATE SET failing_kind = EXCLUDED.failing_kind,"
    " consecutive_failures = EXCLUDED.consecutive_failures, consecutive_successes = EXCLUDED.consecutive_successes,"
    " last_state = EXCLUDED.last_state, state_since = EXCLUDED.state_since, last_checked_at = EXCLUDED.last_checked_at,"
    f" streak_started_at = EXCLUDED.streak_started_at, {', '.join(f'{c} = EXCLUDED.{c}' for c in _WATCH_COLUMNS)}"
    # A check is counted once: a re-run of the alert step (cleared, retried) changes nothing.
    " WHERE green_api_instance_status.last_checked_at IS NULL"
    " OR green_api_instance_status.last_checked_at < EXCLUDED.last_checked_at"
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
    "SELECT message_kind, instance_id, recipient, channel, sender, attempt, ok, attempted_at, id_message, error,"
    " incident_id, contact_id, run_id FROM green_api_alert_deliveries WHERE ok"
    " AND ((incident_id = ANY(%s) AND message_kind <> 'reminder') OR (run_id = %s AND dag_id = %s))"
)
SELECT_SCHEDULED_REBOOT_FAILURES = (
    "SELECT instance_id FROM green_api_health_logs WHERE dag_id = 'green_api_scheduled_reboot'"
    " AND status <> 'rebooted' AND checked_at >= %s AND instance_id = ANY(%s)"
)
SELECT_ACTIVE_CONTACTS_WITH_EMAIL = (
    "SELECT id, full_name, phone_number, notification_priority, email FROM system_support_contacts "
    "WHERE is_active ORDER BY notification_priority, id"
)


def _incident_params(incident: Incident, columns: tuple[str, ...]) -> list[Any]:
    values = [getattr(incident, column) for column in columns]
    return [value.value if hasattr(value, "value") else value for value in values]  # enums as text


def _incident(row: Sequence[Any]) -> Incident:
    fields = dict(zip(_INCIDENT_COLUMNS, row, strict=True))
    return Incident(**{**fields, "kind": AlertKind(fields["kind"]), "severity": Severity(fields["severity"])})


def _history(row: Sequence[Any]) -> InstanceHistory:
    (instance_id, failing_kind, failures, successes, last_state, state_since, auto_reboots, streak_started_at,
     last_checked_at) = row[:9]  # fmt: skip
    watch = Watch(**{**dict(zip(_WATCH_COLUMNS, row[9:], strict=True)), "queue_streak": row[9] or 0,
                     "socket_streak": row[12] or 0})  # fmt: skip
    return InstanceHistory(instance_id, failing_kind, failures, successes, last_state, state_since,
                           tuple(auto_reboots or ()), streak_started_at, last_checked_at, watch)  # fmt: skip


class IncidentStore(HealthStore):
    """Incident state, counters and delivery attempts, written in one transaction per call."""

    @_reachable
    def live_incidents(self, instance_ids: list[str]) -> list[Incident]:
        """Open incidents of these instances, and resolved ones whose resolution is still to send."""
        return [_incident(r) for r in self._hook().get_records(SELECT_LIVE_INCIDENTS, parameters=(instance_ids,))]

    @_reachable
    def counters(self, instance_ids: list[str]) -> dict[str, InstanceHistory]:
        """What earlier runs saw of these instances (those never seen are missing)."""
        rows = self._hook().get_records(SELECT_COUNTERS, parameters=(instance_ids,))
        return {h.instance_id: h for h in map(_history, rows)}

    @_reachable
    def read_times(self) -> dict[str, tuple[Any, Any]]:
        """When each instance's queue and settings were last read: ``{instance_id: (queue, settings)}``."""
        return {str(r[0]): (r[1], r[2]) for r in self._hook().get_records(SELECT_READ_TIMES)}

    @_reachable
    def mark_reads(self, reads: dict[str, tuple[Any, Any]]) -> None:
        """Record the queue and settings reads just made: ``{instance_id: (queue_at, settings_at)}``,
        None where that read was not made."""
        if not reads:
            return
        conn = self._hook().get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(MARK_READS, {"ids": list(reads), "queue": [q for q, _ in reads.values()],
                                         "settings": [s for _, s in reads.values()]})  # fmt: skip
            conn.commit()
        finally:
            conn.close()

    @_reachable
    def auto_reboots(self) -> dict[str, list[Any]]:
        """Every instance's recorded automatic reboots (the past 24 h are kept)."""
        return {str(r[0]): list(r[1]) for r in self._hook().get_records(SELECT_RECENT_REBOOTS)}

    @_reachable
    def contacts_with_email(self) -> list[Contact]:
        rows = self._hook().get_records(SELECT_ACTIVE_CONTACTS_WITH_EMAIL)
        return [Contact(int(r[0]), str(r[1]), str(r[2]), int(r[3]), r[4]) for r in rows]

    @_reachable
    def scheduled_reboot_failures(self, since: Any, instance_ids: list[str]) -> set[str]:
        rows = self._hook().get_records(SELECT_SCHEDULED_REBOOT_FAILURES, parameters=(since, instance_ids))
        return {r[0] for r in rows}

    @_reachable
    def settle_healthy(self, rows: Sequence[dict[str, Any]], now: Any) -> set[str]:
        """Count the healthy checks of quiet instances and log their rows, in one transaction.

        ``rows``: health-log rows of healthy checks (``instance_id``, ``checked_at``). Returns the
        instances settled; the others are left to the alert step and ``log_results``.
        """
        if not rows:
            return set()
        conn = self._hook().get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(SETTLE_HEALTHY, {"now": now, "ids": [r["instance_id"] for r in rows],
                                             "checked": [r["checked_at"] for r in rows]})  # fmt: skip
                settled = {str(r[0]) for r in cur.fetchall()}
                mine = [r for r in rows if r["instance_id"] in settled]
                if mine:
                    cur.execute(INSERT_LOGS, (json.dumps(mine, default=str),))
            conn.commit()
        finally:
            conn.close()
        return settled

    @_reachable
    def record_auto_reboot(self, instance_id: str, at: Any) -> None:
        conn = self._hook().get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(RECORD_AUTO_REBOOT, (instance_id, at, at, at))
            conn.commit()
        finally:
            conn.close()

    @_reachable
    def save(self, counters: list[InstanceHistory], incidents: list[Incident]) -> list[Incident]:
        """Upsert counters and incidents; returns the incidents with their ids."""
        saved = []
        conn = self._hook().get_conn()
        try:
            with conn.cursor() as cur:
                for h in counters:
                    cur.execute(UPSERT_COUNTERS, (h.instance_id, h.failing_kind, h.consecutive_failures,
                                                  h.consecutive_successes, h.last_state, h.state_since,
                                                  h.last_checked_at, h.streak_started_at,
                                                  *(getattr(h.watch, c) for c in _WATCH_COLUMNS)))  # fmt: skip
                for incident in incidents:
                    if incident.id is None:
                        cur.execute(INSERT_INCIDENT, _incident_params(incident, _INCIDENT_COLUMNS[1:]))
                        new_id = cur.fetchone()[0]
                        saved.append(replace(incident, id=int(new_id)))
                    else:
                        cur.execute(UPDATE_INCIDENT, [*_incident_params(incident, _MUTABLE), incident.id])
                        saved.append(incident)
            conn.commit()
        finally:
            conn.close()
        return saved

    @_reachable
    def delivered(self, incident_ids: list[int], dag_id: str, run_id: str) -> list[tuple[Delivery, str]]:
        """Accepted deliveries (with their run id): of these incidents' once-only notices, and of this run."""
        rows = self._hook().get_records(SELECT_DELIVERED, parameters=(incident_ids, run_id, dag_id))
        return [(Delivery(message_kind=r[0], instance_id=r[1], recipient=r[2], channel=r[3], sender=r[4],
                          attempt=int(r[5]), ok=bool(r[6]), at=r[7].isoformat(), id_message=r[8], error=r[9],
                          incident_id=r[10], contact_id=r[11]), r[12]) for r in rows]  # fmt: skip

    @_reachable
    def record_deliveries(self, deliveries: Sequence[Delivery], dag_id: str, run_id: str) -> None:
        """Store delivery attempts of a run (the alert step stores each contact's as it is made)."""
        if not deliveries:
            return
        rows = [(d.incident_id, d.instance_id, dag_id, run_id, d.message_kind, d.contact_id, d.recipient, d.channel,
                 d.sender, d.attempt, d.ok, d.id_message, d.error, d.at) for d in deliveries]  # fmt: skip
        conn = self._hook().get_conn()
        try:
            with conn.cursor() as cur:
                cur.executemany(INSERT_DELIVERY, rows)
            conn.commit()
        finally:
            conn.close()

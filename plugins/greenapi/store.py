"""PostgreSQL reads and writes of the health data (connection ``green_api_db``), nothing else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

if TYPE_CHECKING:
    from collections.abc import Sequence

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
}

_COLS = ", ".join(LOG_COLUMNS)
_RECORD = ", ".join(f"{name} {kind}" for name, kind in LOG_COLUMNS.items())
# One statement for the whole run, whatever the number of instances; a retried write is a no-op.
INSERT_LOGS = (
    f"INSERT INTO green_api_health_logs ({_COLS}) "  # noqa: S608 - fixed column list, values bound
    f"SELECT {_COLS} FROM jsonb_to_recordset(%s::jsonb) AS r({_RECORD}) "
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


class HealthStore:
    """The health log and the support contacts."""

    def __init__(self, postgres_conn_id: str = DB_CONN_ID) -> None:
        self.postgres_conn_id = postgres_conn_id

    def _hook(self) -> PostgresHook:
        return PostgresHook(postgres_conn_id=self.postgres_conn_id)

    def active_contacts(self) -> list[Contact]:
        rows = self._hook().get_records(SELECT_ACTIVE_CONTACTS)
        return [Contact(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

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

"""The schema on a real PostgreSQL: the seed's queries, the constraints, idempotent writes."""

from __future__ import annotations

import psycopg
import pytest

from greenapi import migrate
from greenapi.store import HealthStore
from tests.conftest import require_env

SEED_QUERIES = [
    # "Statistiques globales"
    """SELECT
  COUNT(*) as total_checks,
  COUNT(*) FILTER (WHERE status = 'healthy') as healthy_count,
  COUNT(*) FILTER (WHERE status = 'unhealthy') as unhealthy_count,
  COUNT(*) FILTER (WHERE status = 'critical_failure') as critical_count,
  ROUND(AVG(response_time_ms)) as avg_response_ms,
  COUNT(*) FILTER (WHERE reboot_triggered = true) as total_reboots,
  COUNT(*) FILTER (WHERE support_notified = true) as total_alerts
FROM green_api_health_logs
WHERE checked_at > NOW() - INTERVAL '7 days';""",
    # "Health checks par jour"
    """SELECT
  DATE(checked_at) as check_date,
  COUNT(*) as total_checks,
  COUNT(*) FILTER (WHERE status = 'healthy') as healthy,
  COUNT(*) FILTER (WHERE status != 'healthy') as issues,
  ROUND(AVG(response_time_ms)) as avg_response_ms
FROM green_api_health_logs
WHERE checked_at > NOW() - INTERVAL '7 days'
GROUP BY DATE(checked_at)
ORDER BY check_date DESC;""",
    # "Derniers checks avec problèmes"
    """SELECT
  checked_at,
  status,
  state_instance,
  error_message,
  reboot_triggered,
  support_notified
FROM green_api_health_logs
WHERE status != 'healthy'
ORDER BY checked_at DESC
LIMIT 20;""",
    "SELECT * FROM system_support_contacts WHERE is_active = true;",
    "DELETE FROM green_api_health_logs WHERE checked_at < NOW() - INTERVAL '30 days';",
]


def test_migrations_are_recorded_and_a_second_apply_is_a_no_op(db):
    assert migrate.apply(require_env("GREEN_API_DB_URL")) == []
    versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in migrate.discover()]


def test_seed_rows_and_queries_run_unchanged(db):
    # The seed's own INSERTs (rows written the seed's way, without instance or run).
    db.execute(
        "INSERT INTO green_api_health_logs (status, state_instance, response_time_ms) VALUES"
        " ('healthy', 'authorized', 120), ('unhealthy', 'notAuthorized', 90),"
        " ('critical_failure', NULL, 10000)"
    )
    db.execute(
        "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority, is_active) VALUES"
        " ('Support Principal', '33620951645@c.us', 1, true), ('Support Secondaire', '33612345678@c.us', 2, true)"
    )
    results = [db.execute(q).fetchall() if q.startswith("SELECT") else db.execute(q) for q in SEED_QUERIES]
    totals, per_day, problems, contacts, purge = results
    assert totals[0] == (3, 1, 1, 1, 3403, 0, 0)  # 3 checks by status; 3,403 ms on average; no reboot or alert
    assert [row[1:4] for row in per_day] == [(3, 1, 2)]  # one day: 3 checks, 1 healthy, 2 issues
    # one INSERT, one checked_at: the two problems in either order
    assert sorted((row[1], str(row[2])) for row in problems) == [("critical_failure", "None"),
                                                                 ("unhealthy", "notAuthorized")]
    assert sorted(row[2] for row in contacts) == ["33612345678@c.us", "33620951645@c.us"]
    assert purge.rowcount == 0  # all three rows are from today


@pytest.mark.parametrize(
    ("phone", "priority", "constraint"),
    [
        ("+33620951645", 1, "system_support_contacts_phone_number_format"),
        ("33620951645", 1, "system_support_contacts_phone_number_format"),
        ("33 62 09 51 64@c.us", 1, "system_support_contacts_phone_number_format"),
        ("abc@g.us", 1, "system_support_contacts_phone_number_format"),
        ("33620951645@c.us", 0, "system_support_contacts_priority_positive"),
        ("33620951645@c.us", -2, "system_support_contacts_priority_positive"),
    ],
)
def test_bad_contacts_are_refused_by_the_database(db, phone, priority, constraint):
    with pytest.raises(psycopg.errors.CheckViolation) as err:
        db.execute(
            "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority) VALUES (%s, %s, %s)",
            ("X", phone, priority),
        )
    assert constraint in str(err.value)


def test_group_chat_contacts_are_accepted(db):
    db.execute(
        "INSERT INTO system_support_contacts (full_name, phone_number) VALUES"
        " ('Groupe', '120363043968066561@g.us'), ('Ancien groupe', '79001234567-1581234048@g.us')"
    )
    stored = db.execute("SELECT full_name, phone_number, notification_priority, is_active"
                        " FROM system_support_contacts ORDER BY id").fetchall()  # fmt: skip
    assert stored == [("Groupe", "120363043968066561@g.us", 1, True),
                      ("Ancien groupe", "79001234567-1581234048@g.us", 1, True)]  # the defaults: priority 1, active


@pytest.mark.parametrize(
    ("status", "trigger_type"), [("broken", "automatic"), ("healthy", "cron")]
)
def test_unknown_status_or_trigger_type_is_refused(db, status, trigger_type):
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO green_api_health_logs (status, trigger_type) VALUES (%s, %s)", (status, trigger_type)
        )


def test_a_retried_write_is_a_no_op(db):
    row = {
        "checked_at": "2026-01-01T00:00:00+00:00", "status": "healthy", "state_instance": "authorized",
        "response_time_ms": 12, "trigger_type": "automatic", "instance_id": "1101", "connection_id": "c",
        "dag_id": "green_api_health_check", "run_id": "scheduled__1",
    }
    other = row | {"instance_id": "1102"}
    store = HealthStore()
    assert store.insert_health_logs([row, other]) == 2
    assert store.insert_health_logs([row, other]) == 0
    assert db.execute("SELECT count(*) FROM green_api_health_logs").fetchone() == (2,)


def test_unknown_column_is_refused_before_writing(db):
    with pytest.raises(ValueError, match="unknown health log column"):
        HealthStore().insert_health_logs([{"status": "healthy", "colour": "red"}])


def test_active_contacts_come_in_priority_order(db, add_contact):
    add_contact("B", "33600000002@c.us", 2)
    add_contact("A", "33600000001@c.us", 1)
    add_contact("Off", "33600000003@c.us", 1, active=False)
    assert [c.full_name for c in HealthStore().active_contacts()] == ["A", "B"]

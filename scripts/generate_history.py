"""Fill a health database with realistic history: checks every 5 minutes for many instances.

    python scripts/generate_history.py --db-url postgresql://... --instances 100 --days 30

Most checks are healthy with a response time that varies per instance; each instance has short
outages (timeouts, "notAuthorized", "starting") that open an incident, trigger a reboot and an
alert delivered to support; a few incidents are still open at the end. Existing rows of the
generated instances are replaced. Everything is inserted by a few set-based statements, in one
transaction during which the roll-up triggers are off (ALTER TABLE takes an exclusive lock on
green_api_health_logs: checks being logged wait for it); the dashboard's roll-ups of the
generated instances are then recounted in one pass.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import psycopg

# Instance ids of the generated history: 77000000001, 77000000002, ... (never a real one).
ID_BASE = 77_000_000_000

CHECKS = """
INSERT INTO green_api_health_logs
  (checked_at, status, state_instance, error_message, reboot_triggered, reboot_success, response_time_ms,
   support_notified, support_notification_sent_at, trigger_type, instance_id, connection_id, alert_type,
   dag_id, run_id, api_host, instance_name, queue_length, socket_status)
SELECT t, s.status, s.state, s.error, s.first AND s.status <> 'healthy', CASE WHEN s.first AND s.status <> 'healthy' THEN true END,
       s.rt, s.first AND s.status <> 'healthy', CASE WHEN s.first AND s.status <> 'healthy' THEN t END,
       'automatic', (%(base)s + i)::text, 'green_api_gen_' || i,
       CASE WHEN s.status <> 'healthy' THEN s.alert END,
       'green_api_health_check', 'scheduled__' || to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'),
       (7103 + i %% 4) || '.api.greenapi.com', 'Client ' || i,
       -- the queue and the socket read every 15 minutes while authorized
       CASE WHEN s.status = 'healthy' AND (extract(epoch FROM t)::bigint / 300) %% 3 = 0
            THEN (i %% 7) * ((extract(epoch FROM t)::bigint / 900) %% 5) END,
       CASE WHEN s.status = 'healthy' AND (extract(epoch FROM t)::bigint / 300) %% 3 = 0 THEN 'online' END
FROM generate_series(1, %(instances)s) AS i
CROSS JOIN generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '5 minutes') AS t
CROSS JOIN LATERAL (
  -- An outage of 3 to 8 checks starts roughly once per 2 days per instance, placed by a hash.
  SELECT ((extract(epoch FROM t)::bigint / 300) + i * 7919) %% 577 AS slot, (i * 31) %% 6 + 3 AS length
) AS o
CROSS JOIN LATERAL (
  SELECT
    CASE WHEN o.slot < o.length THEN
      (ARRAY['unhealthy', 'unhealthy', 'critical_failure', 'unhealthy'])[1 + (i + o.slot::int) %% 4]
    ELSE 'healthy' END AS status,
    CASE WHEN o.slot >= o.length THEN 'authorized'
         WHEN (i %% 4) = 0 THEN 'notAuthorized'
         WHEN (i %% 4) = 1 THEN NULL
         WHEN (i %% 4) = 2 THEN 'starting'
         ELSE 'blocked' END AS state,
    CASE WHEN o.slot >= o.length THEN NULL
         WHEN (i %% 4) = 1 THEN 'Timeout after 10s'
         ELSE 'WhatsApp state is not authorized' END AS error,
    CASE WHEN o.slot < o.length AND (i %% 4) = 1 THEN NULL
         ELSE (80 + (i %% 10) * 40 + 600 * power(random(), 4))::int END AS rt,
    o.slot = 0 AS first,
    CASE WHEN (i %% 4) = 1 THEN 'timeout' ELSE 'not_authorized' END AS alert
) AS s
"""

INCIDENTS = """
INSERT INTO green_api_incidents
  (instance_id, connection_id, kind, severity, opened_at, resolved_at, last_state, last_error, checks, reboots,
   reboots_ok, levels_notified, opening_notified_at, resolution_notified_at)
SELECT b.instance_id, b.connection_id, b.alert_type,
       CASE WHEN b.alert_type = 'timeout' THEN 'warning' ELSE 'critical' END,
       b.checked_at, b.resolved_at, b.state_instance, b.error_message, b.checks, 1, 1, 1, b.checked_at,
       b.resolved_at
FROM (
  SELECT l.instance_id, l.connection_id, l.alert_type, l.checked_at, l.state_instance, l.error_message,
         (SELECT min(h.checked_at) FROM green_api_health_logs h
          WHERE h.instance_id = l.instance_id AND h.checked_at > l.checked_at AND h.status = 'healthy') AS resolved_at,
         (SELECT count(*) FROM green_api_health_logs h
          WHERE h.instance_id = l.instance_id AND h.checked_at >= l.checked_at
            AND h.checked_at < l.checked_at + interval '1 hour' AND h.status <> 'healthy') AS checks
  FROM green_api_health_logs l
  WHERE l.connection_id LIKE 'green_api_gen_%%' AND l.reboot_triggered
) AS b
"""

LINK = """
UPDATE green_api_health_logs l SET incident_id = n.id
FROM green_api_incidents n
WHERE l.connection_id LIKE 'green_api_gen_%%' AND l.status <> 'healthy' AND l.instance_id = n.instance_id
  AND l.checked_at >= n.opened_at AND (n.resolved_at IS NULL OR l.checked_at < n.resolved_at)
"""

DELIVERIES = """
INSERT INTO green_api_alert_deliveries
  (incident_id, instance_id, dag_id, run_id, message_kind, recipient, channel, sender, attempt, ok,
   id_message, attempted_at)
SELECT n.id, n.instance_id, 'green_api_health_check', 'generated', k.kind, '33600000001@c.us', 'whatsapp',
       'green_api_alerts', 1, true, 'GEN' || n.id || k.kind, k.at
FROM green_api_incidents n
CROSS JOIN LATERAL (VALUES ('opening', n.opened_at), ('resolution', n.resolved_at)) AS k(kind, at)
WHERE n.connection_id LIKE 'green_api_gen_%%' AND k.at IS NOT NULL
"""

TRIGGERS = ("green_api_rollup_ins", "green_api_rollup_del", "green_api_rollup_upd")
GENERATED_HOURS = """
INSERT INTO generated_hours
SELECT DISTINCT instance_id, date_trunc('hour', checked_at, 'UTC') FROM green_api_health_logs
WHERE connection_id LIKE 'green_api_gen_%%'
"""
RECOUNT = """
SELECT green_api_rollup_recount(array_agg(instance_id), array_agg(hour))
FROM (SELECT DISTINCT instance_id, hour FROM generated_hours) AS k
"""

CLEAR = [  # deliveries go with their incidents (ON DELETE CASCADE)
    "DELETE FROM green_api_incidents WHERE connection_id LIKE 'green_api_gen_%%'",
    "DELETE FROM green_api_health_logs WHERE connection_id LIKE 'green_api_gen_%%'",
]


def generate(url: str, instances: int, days: int) -> dict[str, int]:
    if instances < 1 or days < 1:
        raise SystemExit("--instances and --days must be at least 1")
    params = {"base": ID_BASE, "instances": instances}
    with psycopg.connect(url) as conn:
        now = conn.execute("SELECT date_trunc('minute', now())").fetchone()[0]  # type: ignore[index]
        params |= {"end": now, "start": conn.execute("SELECT %s::timestamptz - make_interval(days => %s)", (now, days)).fetchone()[0]}  # type: ignore[index]
        for trigger in TRIGGERS:
            conn.execute(f"ALTER TABLE green_api_health_logs DISABLE TRIGGER {trigger}")
        # Each day its partition (sql/012), as the maintenance DAG makes them ahead of the checks.
        conn.execute("SELECT green_api_health_log_partitions((%(start)s::timestamptz AT TIME ZONE 'UTC')::date,"
                     " (%(end)s::timestamptz AT TIME ZONE 'UTC')::date)", params)
        conn.execute("CREATE TEMP TABLE generated_hours (instance_id varchar, hour timestamptz) ON COMMIT DROP")
        conn.execute(GENERATED_HOURS)  # the hours of the history being replaced
        for statement in CLEAR:
            conn.execute(statement, params)
        conn.execute("SELECT setseed(0.42)")
        began = time.perf_counter()
        counts = {"checks": conn.execute(CHECKS, params).rowcount}
        print(f"history: {counts['checks']:,} checks inserted in {time.perf_counter() - began:.1f} s", flush=True)
        # Statistics of the rows just made: without them the next statements' plans scan every
        # partition once per incident (ANALYZE sees this transaction's own rows).
        conn.execute("ANALYZE green_api_health_logs")
        counts["incidents"] = conn.execute(INCIDENTS).rowcount
        counts["linked_checks"] = conn.execute(LINK).rowcount
        counts["deliveries"] = conn.execute(DELIVERIES).rowcount
        conn.execute(GENERATED_HOURS)
        began = time.perf_counter()
        conn.execute(RECOUNT)
        print(f"history: the aggregates counted in {time.perf_counter() - began:.1f} s", flush=True)
        for trigger in TRIGGERS:
            conn.execute(f"ALTER TABLE green_api_health_logs ENABLE TRIGGER {trigger}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE green_api_health_logs")
        conn.execute("VACUUM ANALYZE green_api_check_hourly")
        conn.execute("ANALYZE green_api_incidents")
        conn.execute("ANALYZE green_api_alert_deliveries")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("GREEN_API_DB_URL"), help="health database (default: $GREEN_API_DB_URL)")
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    if not args.db_url:
        parser.error("give --db-url or set GREEN_API_DB_URL")
    began = time.perf_counter()
    counts = generate(args.db_url, args.instances, args.days)
    took = time.perf_counter() - began
    print(", ".join(f"{name}: {value:,}" for name, value in counts.items()) + f" in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

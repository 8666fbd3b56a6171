-- The numbers behind the Green API dashboard (Airflow UI > Green API), also usable from psql.
--
-- 30 days of checks for 100 instances is ~860,000 rows: scanning them for each page view is too
-- slow, so hourly and daily roll-ups (per instance and status, UTC hours and days) are kept exact by
-- statement-level triggers: each INSERT, DELETE or UPDATE statement recounts the hours it touched
-- from the rows themselves, then the days of those hours. Percentiles cannot be rolled up: p95 is
-- taken over the raw rows of the last 24 h.

CREATE TABLE green_api_check_hourly (
  instance_id VARCHAR NOT NULL,            -- '' for rows logged without an instance id
  hour TIMESTAMPTZ NOT NULL,
  status VARCHAR NOT NULL,
  checks INTEGER NOT NULL,
  in_window INTEGER NOT NULL,              -- checks inside the post-reboot settle window
  timed_rows INTEGER NOT NULL,             -- checks that have a response time
  response_ms_sum BIGINT NOT NULL,
  response_ms_max INTEGER,
  reboots INTEGER NOT NULL,
  alerts INTEGER NOT NULL,
  PRIMARY KEY (instance_id, hour, status)
);
CREATE INDEX idx_check_hourly_hour ON green_api_check_hourly(hour);

CREATE TABLE green_api_check_daily (LIKE green_api_check_hourly INCLUDING ALL);
ALTER TABLE green_api_check_daily RENAME COLUMN hour TO day;

-- All instances together, per hour: the 30-day chart reads ~720 rows instead of ~72,000.
CREATE TABLE green_api_check_hourly_all (LIKE green_api_check_hourly INCLUDING DEFAULTS);
ALTER TABLE green_api_check_hourly_all DROP COLUMN instance_id, ADD PRIMARY KEY (hour, status);

CREATE FUNCTION green_api_rollup_recount(p_instances VARCHAR[], p_hours TIMESTAMPTZ[]) RETURNS void
LANGUAGE sql AS $$
  DELETE FROM green_api_check_hourly h USING unnest(p_instances, p_hours) AS t(instance_id, hour)
  WHERE h.instance_id = t.instance_id AND h.hour = t.hour;

  INSERT INTO green_api_check_hourly
    (instance_id, hour, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts)
  SELECT t.instance_id, t.hour, l.status, count(*), count(*) FILTER (WHERE l.in_maintenance_window),
         count(l.response_time_ms), COALESCE(sum(l.response_time_ms), 0), max(l.response_time_ms),
         count(*) FILTER (WHERE l.reboot_triggered), count(*) FILTER (WHERE l.support_notified)
  FROM unnest(p_instances, p_hours) AS t(instance_id, hour)
  JOIN LATERAL (  -- two index-friendly arms: rows with an instance id, rows without one ('')
    SELECT * FROM green_api_health_logs g
    WHERE g.instance_id = t.instance_id AND g.checked_at >= t.hour AND g.checked_at < t.hour + interval '1 hour'
    UNION ALL
    SELECT * FROM green_api_health_logs g
    WHERE t.instance_id = '' AND g.instance_id IS NULL
      AND g.checked_at >= t.hour AND g.checked_at < t.hour + interval '1 hour'
  ) AS l ON true
  GROUP BY 1, 2, 3;

  DELETE FROM green_api_check_daily d
  USING (SELECT DISTINCT instance_id, date_trunc('day', hour, 'UTC') AS day
         FROM unnest(p_instances, p_hours) AS t(instance_id, hour)) AS t
  WHERE d.instance_id = t.instance_id AND d.day = t.day;

  INSERT INTO green_api_check_daily
    (instance_id, day, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts)
  SELECT t.instance_id, t.day, h.status, sum(h.checks), sum(h.in_window), sum(h.timed_rows),
         sum(h.response_ms_sum), max(h.response_ms_max), sum(h.reboots), sum(h.alerts)
  FROM (SELECT DISTINCT instance_id, date_trunc('day', hour, 'UTC') AS day
        FROM unnest(p_instances, p_hours) AS t(instance_id, hour)) AS t
  JOIN green_api_check_hourly h
    ON h.instance_id = t.instance_id AND h.hour >= t.day AND h.hour < t.day + interval '1 day'
  GROUP BY 1, 2, 3;

  DELETE FROM green_api_check_hourly_all a WHERE a.hour = ANY(p_hours);

  INSERT INTO green_api_check_hourly_all
    (hour, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts)
  SELECT h.hour, h.status, sum(h.checks), sum(h.in_window), sum(h.timed_rows), sum(h.response_ms_sum),
         max(h.response_ms_max), sum(h.reboots), sum(h.alerts)
  FROM green_api_check_hourly h WHERE h.hour IN (SELECT DISTINCT unnest(p_hours))
  GROUP BY 1, 2;
$$;

CREATE FUNCTION green_api_rollup_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM green_api_rollup_recount(array_agg(k.instance_id), array_agg(k.hour))
    FROM (SELECT DISTINCT COALESCE(instance_id, '') AS instance_id, date_trunc('hour', checked_at, 'UTC') AS hour
          FROM new_rows) AS k;
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM green_api_rollup_recount(array_agg(k.instance_id), array_agg(k.hour))
    FROM (SELECT DISTINCT COALESCE(instance_id, '') AS instance_id, date_trunc('hour', checked_at, 'UTC') AS hour
          FROM old_rows) AS k;
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM green_api_rollup_recount(array_agg(k.instance_id), array_agg(k.hour))
    FROM (SELECT COALESCE(instance_id, '') AS instance_id, date_trunc('hour', checked_at, 'UTC') AS hour FROM old_rows
          UNION SELECT COALESCE(instance_id, ''), date_trunc('hour', checked_at, 'UTC') FROM new_rows) AS k;
  ELSE  -- TRUNCATE
    TRUNCATE green_api_check_hourly, green_api_check_daily, green_api_check_hourly_all;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER green_api_rollup_ins AFTER INSERT ON green_api_health_logs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION green_api_rollup_trigger();
CREATE TRIGGER green_api_rollup_del AFTER DELETE ON green_api_health_logs
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION green_api_rollup_trigger();
CREATE TRIGGER green_api_rollup_upd AFTER UPDATE ON green_api_health_logs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION green_api_rollup_trigger();
CREATE TRIGGER green_api_rollup_trunc AFTER TRUNCATE ON green_api_health_logs
  FOR EACH STATEMENT EXECUTE FUNCTION green_api_rollup_trigger();

-- History that already exists is rolled up once.
SELECT green_api_rollup_recount(array_agg(k.instance_id), array_agg(k.hour))
FROM (SELECT DISTINCT COALESCE(instance_id, '') AS instance_id, date_trunc('hour', checked_at, 'UTC') AS hour
      FROM green_api_health_logs) AS k;

-- The roll-up rows covering [since, now]: whole days after since's day, hours of since's day from
-- since's hour on. Windows are counted in whole hours.
CREATE FUNCTION green_api_rollup_since(p_since TIMESTAMPTZ)
RETURNS TABLE (instance_id VARCHAR, status VARCHAR, checks INTEGER, in_window INTEGER, timed_rows INTEGER,
               response_ms_sum BIGINT, response_ms_max INTEGER, reboots INTEGER, alerts INTEGER)
LANGUAGE sql STABLE AS $$
  -- Bounds in scalar subqueries: computed once, not once per row.
  SELECT instance_id, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts
  FROM green_api_check_daily WHERE day >= (SELECT date_trunc('day', p_since, 'UTC') + interval '1 day')
  UNION ALL
  SELECT instance_id, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts
  FROM green_api_check_hourly
  WHERE hour >= (SELECT date_trunc('hour', p_since, 'UTC'))
    AND hour < (SELECT date_trunc('day', p_since, 'UTC') + interval '1 day')
$$;

-- The checks list filters by status (newest first) and shows reboots on the charts.
CREATE INDEX idx_health_logs_instance_checked_at_rt ON green_api_health_logs(instance_id, checked_at DESC)
  INCLUDE (response_time_ms);
DROP INDEX idx_health_logs_instance_checked_at;
CREATE INDEX idx_health_logs_status_checked_at ON green_api_health_logs(status, checked_at DESC);
DROP INDEX idx_health_logs_status;
CREATE INDEX idx_health_logs_reboots ON green_api_health_logs(checked_at) WHERE reboot_triggered;
CREATE INDEX idx_deliveries_run ON green_api_alert_deliveries(run_id, instance_id);
CREATE INDEX idx_health_logs_scheduled ON green_api_health_logs(checked_at) WHERE trigger_type = 'scheduled';
CREATE INDEX idx_deliveries_attempted_at ON green_api_alert_deliveries(attempted_at) WHERE ok;
CREATE INDEX idx_incidents_open ON green_api_incidents(instance_id) WHERE resolved_at IS NULL;

-- Uptime counts the checks outside the maintenance window; `rebooted` rows are the reboot DAGs'
-- own results, not health checks, and count as neither up nor down.
CREATE VIEW green_api_instance_uptime AS
WITH r AS (
  SELECT '24h' AS w, * FROM green_api_rollup_since(now() - interval '24 hours')
  UNION ALL SELECT '7d', * FROM green_api_rollup_since(now() - interval '7 days')
  UNION ALL SELECT '30d', * FROM green_api_rollup_since(now() - interval '30 days')
)
SELECT instance_id,
       round(100.0 * COALESCE(sum(checks - in_window) FILTER (WHERE w = '24h' AND status = 'healthy'), 0)
             / NULLIF(sum(checks - in_window) FILTER (WHERE w = '24h' AND status <> 'rebooted'), 0), 2) AS uptime_24h,
       round(100.0 * COALESCE(sum(checks - in_window) FILTER (WHERE w = '7d' AND status = 'healthy'), 0)
             / NULLIF(sum(checks - in_window) FILTER (WHERE w = '7d' AND status <> 'rebooted'), 0), 2) AS uptime_7d,
       round(100.0 * COALESCE(sum(checks - in_window) FILTER (WHERE w = '30d' AND status = 'healthy'), 0)
             / NULLIF(sum(checks - in_window) FILTER (WHERE w = '30d' AND status <> 'rebooted'), 0), 2) AS uptime_30d,
       round(sum(response_ms_sum) FILTER (WHERE w = '24h') / NULLIF(sum(timed_rows) FILTER (WHERE w = '24h'), 0)) AS mean_ms_24h,
       round(sum(response_ms_sum) FILTER (WHERE w = '7d') / NULLIF(sum(timed_rows) FILTER (WHERE w = '7d'), 0)) AS mean_ms_7d,
       round(sum(response_ms_sum) FILTER (WHERE w = '30d') / NULLIF(sum(timed_rows) FILTER (WHERE w = '30d'), 0)) AS mean_ms_30d,
       COALESCE(sum(checks) FILTER (WHERE w = '24h'), 0) AS checks_24h,
       COALESCE(sum(reboots) FILTER (WHERE w = '24h'), 0) AS reboots_24h
FROM r
GROUP BY instance_id;

-- Every instance id in the log, walked through the (instance_id, checked_at) index one id at a
-- time (a "loose index scan"): ~100 index probes for 100 instances, whatever the number of rows.
CREATE VIEW green_api_instance_ids AS
WITH RECURSIVE ids AS (
  (SELECT instance_id FROM green_api_health_logs WHERE instance_id IS NOT NULL ORDER BY instance_id LIMIT 1)
  UNION ALL
  SELECT (SELECT g.instance_id FROM green_api_health_logs g
          WHERE g.instance_id > ids.instance_id ORDER BY g.instance_id LIMIT 1)
  FROM ids WHERE ids.instance_id IS NOT NULL
)
SELECT instance_id FROM ids WHERE instance_id IS NOT NULL;

-- p95 and mean of the response time over the last 24 h, from the raw rows of each instance
-- (an index-only range scan each, thanks to the covering index below).
CREATE VIEW green_api_instance_latency_24h AS
SELECT i.instance_id, lat.mean_ms, lat.p95_ms
FROM green_api_instance_ids i
CROSS JOIN LATERAL (
  SELECT round(avg(g.response_time_ms)) AS mean_ms,
         round(percentile_cont(0.95) WITHIN GROUP (ORDER BY g.response_time_ms)::numeric) AS p95_ms
  FROM green_api_health_logs g
  WHERE g.instance_id = i.instance_id AND g.checked_at >= now() - interval '24 hours'
    AND g.response_time_ms IS NOT NULL
) AS lat;

-- The last check of each instance.
CREATE VIEW green_api_instance_last_check AS
SELECT i.instance_id, l.id, l.checked_at, l.status, l.state_instance, l.response_time_ms,
       l.error_message, l.connection_id
FROM green_api_instance_ids i
CROSS JOIN LATERAL (
  SELECT * FROM green_api_health_logs g
  WHERE g.instance_id = i.instance_id ORDER BY g.checked_at DESC, g.id DESC LIMIT 1
) AS l;

CREATE VIEW green_api_open_incidents AS
SELECT id, instance_id, connection_id, kind, severity, opened_at, now() - opened_at AS open_for,
       checks, reboots, levels_notified, last_state, last_error
FROM green_api_incidents WHERE resolved_at IS NULL;

-- The seed's "Requêtes utiles", kept as views.
CREATE VIEW green_api_stats_7d AS
SELECT COALESCE(sum(checks), 0) AS total_checks,
       COALESCE(sum(checks) FILTER (WHERE status = 'healthy'), 0) AS healthy_count,
       COALESCE(sum(checks) FILTER (WHERE status = 'unhealthy'), 0) AS unhealthy_count,
       COALESCE(sum(checks) FILTER (WHERE status = 'critical_failure'), 0) AS critical_count,
       round(sum(response_ms_sum) / NULLIF(sum(timed_rows), 0)) AS avg_response_ms,
       COALESCE(sum(reboots), 0) AS total_reboots,
       COALESCE(sum(alerts), 0) AS total_alerts
FROM green_api_rollup_since(now() - interval '7 days');

-- Days are UTC days.
CREATE VIEW green_api_daily_checks AS
SELECT (day AT TIME ZONE 'UTC')::date AS check_date,
       sum(checks) AS total_checks,
       COALESCE(sum(checks) FILTER (WHERE status = 'healthy'), 0) AS healthy,
       COALESCE(sum(checks) FILTER (WHERE status <> 'healthy'), 0) AS issues,
       round(sum(response_ms_sum) / NULLIF(sum(timed_rows), 0)) AS avg_response_ms
FROM green_api_check_daily
WHERE day >= (SELECT date_trunc('day', now() - interval '7 days', 'UTC'))
GROUP BY 1;

CREATE VIEW green_api_recent_problems AS
SELECT id, checked_at, instance_id, status, state_instance, error_message, reboot_triggered, support_notified
FROM green_api_health_logs
WHERE status <> 'healthy';

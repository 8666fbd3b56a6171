-- Issue 25: a health log that stays fast at 10,000 instances (2.88 million rows a day).
--
-- 1. green_api_health_logs is partitioned by UTC day (green_api_health_logs_YYYYMMDD). Retention
--    drops whole partitions instead of deleting rows. Partitions are made ahead by the
--    maintenance DAG; a row whose day has no partition yet lands in green_api_health_logs_default
--    and moves into its day's partition when that one is made, so a check never fails for lack of one.
-- 2. The roll-ups are kept by adding what each INSERT brings (instead of recounting the touched
--    hours from the raw rows, and the all-instances hour from every row of it). UPDATE and DELETE,
--    rare (psql, tests), still recount what they touched.
-- 3. Per-hour aggregates replace the page views' raw reads: each instance's hour keeps its response
--    times (12 values for 12 checks, the exact p95) and its longest queue read; green_api_check_5min_all
--    holds the fleet's 24 h chart and queue chart per 5 minutes; green_api_instance_latest holds
--    each instance's last check and last readings (the fleet view counts and pages it).
--
-- The table is rebuilt with its rows, ids and sequence kept. A partitioned table's unique keys must
-- hold the partition key: the primary key becomes (id, checked_at), and "a run logs an instance
-- once" is kept by the insert itself (store.INSERT_LOGS) under a lock per run.

SET LOCAL lock_timeout = '60s';
LOCK TABLE green_api_health_logs IN ACCESS EXCLUSIVE MODE;

-- Views bound to the old table go; they are made again below.
DROP VIEW green_api_instance_readings, green_api_instance_latency_24h, green_api_instance_last_check,
  green_api_instance_ids, green_api_recent_problems;

ALTER TABLE green_api_health_logs RENAME TO green_api_health_logs_unpartitioned;

CREATE TABLE green_api_health_logs
  (LIKE green_api_health_logs_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)
  PARTITION BY RANGE (checked_at);
ALTER SEQUENCE green_api_health_logs_id_seq OWNED BY green_api_health_logs.id;
ALTER TABLE green_api_health_logs
  ADD CONSTRAINT green_api_health_logs_pkey_day PRIMARY KEY (id, checked_at),
  ADD CONSTRAINT green_api_health_logs_incident_fkey FOREIGN KEY (incident_id)
    REFERENCES green_api_incidents(id) ON DELETE SET NULL,
  -- Which API host served the check (issue 24's outages, the fleet view's counts by host), and the
  -- instance's name as its connection gives it (description), for search.
  ADD COLUMN api_host VARCHAR,
  ADD COLUMN instance_name VARCHAR;

CREATE TABLE green_api_health_logs_default PARTITION OF green_api_health_logs DEFAULT;

-- The hourly roll-up is partitioned by UTC day the same way (green_api_check_hourly_YYYYMMDD): a
-- day of 10,000 instances holds 240,000 of its rows, which retention drops with the log's day
-- instead of deleting them. Its rows are counted again from the log below (the old ones go).
ALTER TABLE green_api_check_hourly RENAME TO green_api_check_hourly_unpartitioned;
ALTER INDEX green_api_check_hourly_pkey RENAME TO green_api_check_hourly_unpartitioned_pkey;
ALTER INDEX idx_check_hourly_hour RENAME TO idx_check_hourly_unpartitioned_hour;
CREATE TABLE green_api_check_hourly
  (LIKE green_api_check_hourly_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
  PARTITION BY RANGE (hour);
DROP TABLE green_api_check_hourly_unpartitioned;
-- Per instance and hour, beside the counts: the response times of the hour's checks (one value
-- per timed check) and the outgoing queue's longest read.
ALTER TABLE green_api_check_hourly
  ADD PRIMARY KEY (instance_id, hour, status),
  ADD COLUMN response_ms INTEGER[] NOT NULL DEFAULT '{}',
  ADD COLUMN queue_max INTEGER,
  ADD COLUMN queue_reads INTEGER NOT NULL DEFAULT 0;
CREATE INDEX idx_check_hourly_hour ON green_api_check_hourly(hour);
CREATE TABLE green_api_check_hourly_default PARTITION OF green_api_check_hourly DEFAULT;

-- The partition of p_parent (partitioned by p_column) for one UTC day, made if missing: the rows
-- of that day its default partition caught move into it. Returns its name, or NULL when it
-- already existed.
CREATE FUNCTION green_api_day_partition(p_parent TEXT, p_column TEXT, p_day DATE) RETURNS TEXT
LANGUAGE plpgsql AS $$
DECLARE
  part TEXT := p_parent || '_' || to_char(p_day, 'YYYYMMDD');
  lo TIMESTAMPTZ := p_day::timestamp AT TIME ZONE 'UTC';
  hi TIMESTAMPTZ := (p_day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
  IF to_regclass(part) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext(part));  -- two makers at once: one makes it
  -- A query (a fresh snapshot), not to_regclass (the catalog cache): sees the other maker's table.
  IF EXISTS (SELECT 1 FROM pg_class WHERE relname = part AND relnamespace = current_schema()::regnamespace) THEN
    RETURN NULL;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, p_parent);
  EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
                 p_parent || '_default', p_column, p_column, part) USING lo, hi;
  -- ATTACH (not CREATE ... PARTITION OF): readers and writers of the table are not blocked.
  EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', p_parent, part, lo, hi);
  RETURN part;
END $$;

-- The day's partitions of the log and of its hourly roll-up; returns the log's, or NULL when it
-- already existed.
CREATE FUNCTION green_api_health_log_partition(p_day DATE) RETURNS TEXT LANGUAGE plpgsql AS $$
BEGIN
  PERFORM green_api_day_partition('green_api_check_hourly', 'hour', p_day);
  RETURN green_api_day_partition('green_api_health_logs', 'checked_at', p_day);
END $$;

-- The partitions of the days from p_from to p_to (both included); returns how many were made.
CREATE FUNCTION green_api_health_log_partitions(p_from DATE, p_to DATE) RETURNS INTEGER LANGUAGE sql AS $$
  SELECT count(green_api_health_log_partition(d::date))::int FROM generate_series(p_from, p_to, interval '1 day') AS d
$$;

-- The days of the existing rows, and the week ahead.
SELECT green_api_health_log_partitions(
  LEAST((SELECT (min(checked_at) AT TIME ZONE 'UTC')::date FROM green_api_health_logs_unpartitioned),
        (now() AT TIME ZONE 'UTC')::date - 1),
  (now() AT TIME ZONE 'UTC')::date + 7);

-- Every row, as it was (ids included); no trigger is on the new table yet.
INSERT INTO green_api_health_logs
SELECT u.*, NULL, NULL FROM green_api_health_logs_unpartitioned u;

DROP TABLE green_api_health_logs_unpartitioned;  -- its triggers and indexes go with it

-- The indexes of sql/001, 005 and 008, made on every partition.
CREATE INDEX idx_health_logs_checked_at ON green_api_health_logs(checked_at DESC);
CREATE INDEX idx_health_logs_instance_checked_at_rt ON green_api_health_logs(instance_id, checked_at DESC)
  INCLUDE (response_time_ms);
CREATE INDEX idx_health_logs_status_checked_at ON green_api_health_logs(status, checked_at DESC);
-- The charts' reboot marks: an index-only scan (the outcome and the instance included).
CREATE INDEX idx_health_logs_reboots ON green_api_health_logs(checked_at) INCLUDE (reboot_success, instance_id)
  WHERE reboot_triggered;
CREATE INDEX idx_health_logs_scheduled ON green_api_health_logs(checked_at) WHERE trigger_type = 'scheduled';
CREATE INDEX idx_health_logs_queue_read ON green_api_health_logs(instance_id, checked_at DESC)
  INCLUDE (queue_length) WHERE queue_length IS NOT NULL;
-- "Was this run's instance logged already?" (the insert's check), and "this run's rows".
CREATE INDEX idx_health_logs_run_instance ON green_api_health_logs(run_id, instance_id);
-- One check by its id (the dashboard's check page): an index probe per partition.
CREATE INDEX idx_health_logs_id ON green_api_health_logs(id);

-- The charts' alert marks, the same way.
DROP INDEX idx_deliveries_attempted_at;
CREATE INDEX idx_deliveries_attempted_at ON green_api_alert_deliveries(attempted_at) INCLUDE (message_kind, instance_id)
  WHERE ok;

-- ---- the aggregates

-- The whole fleet per 5 minutes (date_bin from 2000-01-01 UTC): the 24 h chart and the queue chart.
CREATE TABLE green_api_check_5min_all (
  bucket TIMESTAMPTZ NOT NULL,
  status VARCHAR NOT NULL,
  checks INTEGER NOT NULL,
  in_window INTEGER NOT NULL,
  timed_rows INTEGER NOT NULL,
  response_ms_sum BIGINT NOT NULL,
  response_ms_max INTEGER,
  queue_max INTEGER,
  queue_reads INTEGER NOT NULL,
  PRIMARY KEY (bucket, status)
);

-- Each instance's last check and last readings: one row per instance.
CREATE TABLE green_api_instance_latest (
  instance_id VARCHAR PRIMARY KEY,
  id BIGINT NOT NULL,
  checked_at TIMESTAMPTZ NOT NULL,
  status VARCHAR NOT NULL,
  state_instance VARCHAR,
  response_time_ms INTEGER,
  error_message TEXT,
  connection_id VARCHAR,
  api_host VARCHAR,
  instance_name VARCHAR,
  queue_length INTEGER,
  queue_read_at TIMESTAMPTZ,
  socket_status VARCHAR,
  socket_read_at TIMESTAMPTZ,
  settings_status VARCHAR,
  settings_read_at TIMESTAMPTZ
);
-- The fleet view lists problems first, then by instance id; counts by status and host.
CREATE INDEX idx_instance_latest_status ON green_api_instance_latest(status, instance_id);
CREATE INDEX idx_instance_latest_host ON green_api_instance_latest(api_host);

-- Adds a statement's new rows to every aggregate. Keys are taken in a fixed order, so concurrent
-- shards wait for each other's rows instead of deadlocking.
CREATE FUNCTION green_api_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO green_api_check_hourly AS h
    (instance_id, hour, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts,
     response_ms, queue_max, queue_reads)
  SELECT COALESCE(instance_id, ''), date_trunc('hour', checked_at, 'UTC'), status, count(*),
         count(*) FILTER (WHERE in_maintenance_window), count(response_time_ms), COALESCE(sum(response_time_ms), 0),
         max(response_time_ms), count(*) FILTER (WHERE reboot_triggered), count(*) FILTER (WHERE support_notified),
         COALESCE(array_agg(response_time_ms ORDER BY response_time_ms) FILTER (WHERE response_time_ms IS NOT NULL), '{}'),
         max(queue_length), count(queue_length)
  FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (instance_id, hour, status) DO UPDATE SET
    checks = h.checks + EXCLUDED.checks, in_window = h.in_window + EXCLUDED.in_window,
    timed_rows = h.timed_rows + EXCLUDED.timed_rows, response_ms_sum = h.response_ms_sum + EXCLUDED.response_ms_sum,
    response_ms_max = GREATEST(h.response_ms_max, EXCLUDED.response_ms_max), reboots = h.reboots + EXCLUDED.reboots,
    alerts = h.alerts + EXCLUDED.alerts, response_ms = h.response_ms || EXCLUDED.response_ms,
    queue_max = GREATEST(h.queue_max, EXCLUDED.queue_max), queue_reads = h.queue_reads + EXCLUDED.queue_reads;

  INSERT INTO green_api_check_daily AS d
    (instance_id, day, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts)
  SELECT COALESCE(instance_id, ''), date_trunc('day', checked_at, 'UTC'), status, count(*),
         count(*) FILTER (WHERE in_maintenance_window), count(response_time_ms), COALESCE(sum(response_time_ms), 0),
         max(response_time_ms), count(*) FILTER (WHERE reboot_triggered), count(*) FILTER (WHERE support_notified)
  FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (instance_id, day, status) DO UPDATE SET
    checks = d.checks + EXCLUDED.checks, in_window = d.in_window + EXCLUDED.in_window,
    timed_rows = d.timed_rows + EXCLUDED.timed_rows, response_ms_sum = d.response_ms_sum + EXCLUDED.response_ms_sum,
    response_ms_max = GREATEST(d.response_ms_max, EXCLUDED.response_ms_max), reboots = d.reboots + EXCLUDED.reboots,
    alerts = d.alerts + EXCLUDED.alerts;

  INSERT INTO green_api_instance_latest AS l
    (instance_id, id, checked_at, status, state_instance, response_time_ms, error_message, connection_id, api_host,
     instance_name)
  SELECT DISTINCT ON (instance_id) instance_id, id, checked_at, status, state_instance, response_time_ms,
         error_message, connection_id, api_host, instance_name
  FROM new_rows WHERE instance_id IS NOT NULL ORDER BY instance_id, checked_at DESC, id DESC
  ON CONFLICT (instance_id) DO UPDATE SET
    id = EXCLUDED.id, checked_at = EXCLUDED.checked_at, status = EXCLUDED.status,
    state_instance = EXCLUDED.state_instance, response_time_ms = EXCLUDED.response_time_ms,
    error_message = EXCLUDED.error_message, connection_id = EXCLUDED.connection_id,
    api_host = COALESCE(EXCLUDED.api_host, l.api_host), instance_name = COALESCE(EXCLUDED.instance_name, l.instance_name)
  WHERE (EXCLUDED.checked_at, EXCLUDED.id) > (l.checked_at, l.id);

  PERFORM green_api_readings_add(array_agg(instance_id), array_agg(checked_at), array_agg(queue_length),
                                 array_agg(socket_status), array_agg(settings_status))
  FROM new_rows WHERE instance_id IS NOT NULL
    AND (queue_length IS NOT NULL OR socket_status IS NOT NULL OR settings_status IS NOT NULL);

  -- Rows shared by every shard of a run come last: each shard holds them only briefly.
  INSERT INTO green_api_check_hourly_all AS a
    (hour, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts)
  SELECT date_trunc('hour', checked_at, 'UTC'), status, count(*), count(*) FILTER (WHERE in_maintenance_window),
         count(response_time_ms), COALESCE(sum(response_time_ms), 0), max(response_time_ms),
         count(*) FILTER (WHERE reboot_triggered), count(*) FILTER (WHERE support_notified)
  FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (hour, status) DO UPDATE SET
    checks = a.checks + EXCLUDED.checks, in_window = a.in_window + EXCLUDED.in_window,
    timed_rows = a.timed_rows + EXCLUDED.timed_rows, response_ms_sum = a.response_ms_sum + EXCLUDED.response_ms_sum,
    response_ms_max = GREATEST(a.response_ms_max, EXCLUDED.response_ms_max), reboots = a.reboots + EXCLUDED.reboots,
    alerts = a.alerts + EXCLUDED.alerts;

  INSERT INTO green_api_check_5min_all AS f
    (bucket, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, queue_max, queue_reads)
  SELECT date_bin('5 minutes', checked_at, TIMESTAMPTZ '2000-01-01 00:00+00'), status, count(*),
         count(*) FILTER (WHERE in_maintenance_window), count(response_time_ms), COALESCE(sum(response_time_ms), 0),
         max(response_time_ms), max(queue_length), count(queue_length)
  FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (bucket, status) DO UPDATE SET
    checks = f.checks + EXCLUDED.checks, in_window = f.in_window + EXCLUDED.in_window,
    timed_rows = f.timed_rows + EXCLUDED.timed_rows, response_ms_sum = f.response_ms_sum + EXCLUDED.response_ms_sum,
    response_ms_max = GREATEST(f.response_ms_max, EXCLUDED.response_ms_max),
    queue_max = GREATEST(f.queue_max, EXCLUDED.queue_max), queue_reads = f.queue_reads + EXCLUDED.queue_reads;
  RETURN NULL;
END $$;

-- The newest reading of each kind per instance, kept when newer than the one held.
CREATE FUNCTION green_api_readings_add(p_ids VARCHAR[], p_at TIMESTAMPTZ[], p_queue INTEGER[], p_socket VARCHAR[],
                                       p_settings VARCHAR[]) RETURNS void LANGUAGE sql AS $$
  UPDATE green_api_instance_latest l SET
    queue_length = CASE WHEN r.q_at IS NOT NULL AND (l.queue_read_at IS NULL OR r.q_at >= l.queue_read_at)
                        THEN r.q ELSE l.queue_length END,
    queue_read_at = CASE WHEN r.q_at IS NOT NULL AND (l.queue_read_at IS NULL OR r.q_at >= l.queue_read_at)
                         THEN r.q_at ELSE l.queue_read_at END,
    socket_status = CASE WHEN r.s_at IS NOT NULL AND (l.socket_read_at IS NULL OR r.s_at >= l.socket_read_at)
                         THEN r.s ELSE l.socket_status END,
    socket_read_at = CASE WHEN r.s_at IS NOT NULL AND (l.socket_read_at IS NULL OR r.s_at >= l.socket_read_at)
                          THEN r.s_at ELSE l.socket_read_at END,
    settings_status = CASE WHEN r.st_at IS NOT NULL AND (l.settings_read_at IS NULL OR r.st_at >= l.settings_read_at)
                           THEN r.st ELSE l.settings_status END,
    settings_read_at = CASE WHEN r.st_at IS NOT NULL AND (l.settings_read_at IS NULL OR r.st_at >= l.settings_read_at)
                            THEN r.st_at ELSE l.settings_read_at END
  FROM (
    SELECT t.id,
           (array_agg(t.queue ORDER BY t.at DESC) FILTER (WHERE t.queue IS NOT NULL))[1] AS q,
           max(t.at) FILTER (WHERE t.queue IS NOT NULL) AS q_at,
           (array_agg(t.socket ORDER BY t.at DESC) FILTER (WHERE t.socket IS NOT NULL))[1] AS s,
           max(t.at) FILTER (WHERE t.socket IS NOT NULL) AS s_at,
           (array_agg(t.settings ORDER BY t.at DESC) FILTER (WHERE t.settings IS NOT NULL))[1] AS st,
           max(t.at) FILTER (WHERE t.settings IS NOT NULL) AS st_at
    FROM unnest(p_ids, p_at, p_queue, p_socket, p_settings) AS t(id, at, queue, socket, settings)
    GROUP BY t.id ORDER BY t.id
  ) AS r
  WHERE l.instance_id = r.id
$$;

-- The aggregates of the (instance, hour) pairs given, counted again from the raw rows: after an
-- UPDATE or a DELETE (an insert adds), and once below for the rows already there.
CREATE OR REPLACE FUNCTION green_api_rollup_recount(p_instances VARCHAR[], p_hours TIMESTAMPTZ[]) RETURNS void
LANGUAGE sql AS $$
  DELETE FROM green_api_check_hourly h USING unnest(p_instances, p_hours) AS t(instance_id, hour)
  WHERE h.instance_id = t.instance_id AND h.hour = t.hour;

  INSERT INTO green_api_check_hourly
    (instance_id, hour, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts,
     response_ms, queue_max, queue_reads)
  SELECT t.instance_id, t.hour, l.status, count(*), count(*) FILTER (WHERE l.in_maintenance_window),
         count(l.response_time_ms), COALESCE(sum(l.response_time_ms), 0), max(l.response_time_ms),
         count(*) FILTER (WHERE l.reboot_triggered), count(*) FILTER (WHERE l.support_notified),
         COALESCE(array_agg(l.response_time_ms ORDER BY l.response_time_ms) FILTER (WHERE l.response_time_ms IS NOT NULL), '{}'),
         max(l.queue_length), count(l.queue_length)
  FROM (SELECT DISTINCT * FROM unnest(p_instances, p_hours)) AS t(instance_id, hour)
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

  DELETE FROM green_api_check_hourly_all a USING (SELECT DISTINCT unnest(p_hours) AS hour) AS t WHERE a.hour = t.hour;

  INSERT INTO green_api_check_hourly_all
    (hour, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts)
  SELECT h.hour, h.status, sum(h.checks), sum(h.in_window), sum(h.timed_rows), sum(h.response_ms_sum),
         max(h.response_ms_max), sum(h.reboots), sum(h.alerts)
  FROM green_api_check_hourly h WHERE h.hour IN (SELECT DISTINCT unnest(p_hours))
  GROUP BY 1, 2;

  DELETE FROM green_api_check_5min_all f USING (SELECT DISTINCT unnest(p_hours) AS hour) AS t
  WHERE f.bucket >= t.hour AND f.bucket < t.hour + interval '1 hour';

  INSERT INTO green_api_check_5min_all
    (bucket, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, queue_max, queue_reads)
  SELECT date_bin('5 minutes', g.checked_at, TIMESTAMPTZ '2000-01-01 00:00+00'), g.status, count(*),
         count(*) FILTER (WHERE g.in_maintenance_window), count(g.response_time_ms),
         COALESCE(sum(g.response_time_ms), 0), max(g.response_time_ms), max(g.queue_length), count(g.queue_length)
  FROM (SELECT DISTINCT unnest(p_hours) AS hour) AS t
  JOIN green_api_health_logs g ON g.checked_at >= t.hour AND g.checked_at < t.hour + interval '1 hour'
  GROUP BY 1, 2;

  -- The last check and readings of the instances touched, from their rows.
  DELETE FROM green_api_instance_latest l USING (SELECT DISTINCT unnest(p_instances) AS instance_id) AS t
  WHERE l.instance_id = t.instance_id;

  INSERT INTO green_api_instance_latest
    (instance_id, id, checked_at, status, state_instance, response_time_ms, error_message, connection_id, api_host,
     instance_name, queue_length, queue_read_at, socket_status, socket_read_at, settings_status, settings_read_at)
  SELECT i.instance_id, c.id, c.checked_at, c.status, c.state_instance, c.response_time_ms, c.error_message,
         c.connection_id, c.api_host, c.instance_name, q.queue_length, q.checked_at, s.socket_status, s.checked_at,
         st.settings_status, st.checked_at
  FROM (SELECT DISTINCT x AS instance_id FROM unnest(p_instances) x WHERE x <> '') AS i
  JOIN LATERAL (SELECT * FROM green_api_health_logs g WHERE g.instance_id = i.instance_id
                ORDER BY g.checked_at DESC, g.id DESC LIMIT 1) AS c ON true
  LEFT JOIN LATERAL (SELECT g.queue_length, g.checked_at FROM green_api_health_logs g
                     WHERE g.instance_id = i.instance_id AND g.queue_length IS NOT NULL
                     ORDER BY g.checked_at DESC LIMIT 1) AS q ON true
  LEFT JOIN LATERAL (SELECT g.socket_status, g.checked_at FROM green_api_health_logs g
                     WHERE g.instance_id = i.instance_id AND g.socket_status IS NOT NULL
                     ORDER BY g.checked_at DESC LIMIT 1) AS s ON true
  LEFT JOIN LATERAL (SELECT g.settings_status, g.checked_at FROM green_api_health_logs g
                     WHERE g.instance_id = i.instance_id AND g.settings_status IS NOT NULL
                     ORDER BY g.checked_at DESC LIMIT 1) AS st ON true;
$$;

CREATE OR REPLACE FUNCTION green_api_rollup_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM green_api_rollup_recount(array_agg(k.instance_id), array_agg(k.hour))
    FROM (SELECT DISTINCT COALESCE(instance_id, '') AS instance_id, date_trunc('hour', checked_at, 'UTC') AS hour
          FROM old_rows) AS k;
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM green_api_rollup_recount(array_agg(k.instance_id), array_agg(k.hour))
    FROM (SELECT COALESCE(instance_id, '') AS instance_id, date_trunc('hour', checked_at, 'UTC') AS hour FROM old_rows
          UNION SELECT COALESCE(instance_id, ''), date_trunc('hour', checked_at, 'UTC') FROM new_rows) AS k;
  ELSE  -- TRUNCATE
    TRUNCATE green_api_check_hourly, green_api_check_daily, green_api_check_hourly_all, green_api_check_5min_all,
      green_api_instance_latest;
  END IF;
  RETURN NULL;
END $$;

-- Statement triggers with transition tables are allowed on a partitioned table (not on its
-- partitions): a row written through the parent is seen whatever its partition.
CREATE TRIGGER green_api_rollup_ins AFTER INSERT ON green_api_health_logs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION green_api_rollup_add();
CREATE TRIGGER green_api_rollup_del AFTER DELETE ON green_api_health_logs
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION green_api_rollup_trigger();
CREATE TRIGGER green_api_rollup_upd AFTER UPDATE ON green_api_health_logs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION green_api_rollup_trigger();
CREATE TRIGGER green_api_rollup_trunc AFTER TRUNCATE ON green_api_health_logs
  FOR EACH STATEMENT EXECUTE FUNCTION green_api_rollup_trigger();

-- The rows already there, counted once into every aggregate.
SELECT green_api_rollup_recount(array_agg(k.instance_id), array_agg(k.hour))
FROM (SELECT DISTINCT COALESCE(instance_id, '') AS instance_id, date_trunc('hour', checked_at, 'UTC') AS hour
      FROM green_api_health_logs) AS k;

-- Retention: the partitions of the days wholly before p_before go (the log's and the hourly
-- roll-up's), with the other aggregates of those days; rows of the default partitions before the
-- first day kept go too. Returns the log's partitions dropped and the rows they held (counted by
-- the daily roll-up: no scan).
CREATE FUNCTION green_api_drop_health_logs_before(p_before TIMESTAMPTZ, OUT partitions INTEGER, OUT rows BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
  keep_from TIMESTAMPTZ := date_trunc('day', p_before, 'UTC');
  part RECORD;
BEGIN
  partitions := 0;
  SELECT COALESCE(sum(checks), 0) INTO rows FROM green_api_check_daily WHERE day < keep_from;
  FOR part IN
    SELECT c.relname, p.relname AS parent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    WHERE p.relname IN ('green_api_health_logs', 'green_api_check_hourly') AND c.relname ~ '_[0-9]{8}$'
      AND to_date(right(c.relname, 8), 'YYYYMMDD') + 1 <= (keep_from AT TIME ZONE 'UTC')::date
    ORDER BY c.relname
  LOOP
    EXECUTE format('DROP TABLE %I', part.relname);
    IF part.parent = 'green_api_health_logs' THEN
      partitions := partitions + 1;
    END IF;
  END LOOP;
  DELETE FROM green_api_health_logs_default WHERE checked_at < keep_from;  -- no trigger: aggregates go below
  DELETE FROM green_api_check_hourly WHERE hour < keep_from;  -- its default partition's
  DELETE FROM green_api_check_daily WHERE day < keep_from;
  DELETE FROM green_api_check_hourly_all WHERE hour < keep_from;
  DELETE FROM green_api_check_5min_all WHERE bucket < keep_from;
  DELETE FROM green_api_instance_latest WHERE checked_at < keep_from;  -- an instance with no row left
END $$;

-- ---- the views of sql/005 and 008 on the new table, served by the aggregates

CREATE VIEW green_api_instance_ids AS
SELECT instance_id FROM green_api_instance_latest;

CREATE VIEW green_api_instance_last_check AS
SELECT instance_id, id, checked_at, status, state_instance, response_time_ms, error_message, connection_id
FROM green_api_instance_latest;

-- Mean and p95 of the response time of the instances p_ids over the whole hours since p_since's
-- hour, from the hourly aggregates (exact: each hour keeps its checks' response times).
CREATE FUNCTION green_api_instance_latency(p_since TIMESTAMPTZ, p_ids VARCHAR[])
RETURNS TABLE (instance_id VARCHAR, mean_ms NUMERIC, p95_ms NUMERIC)
LANGUAGE sql STABLE AS $$
  SELECT h.instance_id, round(avg(v)), round(percentile_cont(0.95) WITHIN GROUP (ORDER BY v)::numeric)
  FROM green_api_check_hourly h CROSS JOIN LATERAL unnest(h.response_ms) AS v
  WHERE h.instance_id = ANY(p_ids) AND h.hour >= (SELECT date_trunc('hour', p_since, 'UTC'))
  GROUP BY h.instance_id
$$;

CREATE VIEW green_api_instance_latency_24h AS
SELECT * FROM green_api_instance_latency(now() - interval '24 hours', ARRAY(SELECT instance_id FROM green_api_instance_latest));

CREATE VIEW green_api_instance_readings AS
SELECT instance_id,
       CASE WHEN queue_read_at >= now() - interval '7 days' THEN queue_length END AS queue_length,
       CASE WHEN queue_read_at >= now() - interval '7 days' THEN queue_read_at END AS queue_read_at,
       CASE WHEN socket_read_at >= now() - interval '7 days' THEN socket_status END AS socket_status,
       CASE WHEN socket_read_at >= now() - interval '7 days' THEN socket_read_at END AS socket_read_at,
       CASE WHEN settings_read_at >= now() - interval '7 days' THEN settings_status END AS settings_status,
       CASE WHEN settings_read_at >= now() - interval '7 days' THEN settings_read_at END AS settings_read_at
FROM green_api_instance_latest;

CREATE VIEW green_api_recent_problems AS
SELECT id, checked_at, instance_id, status, state_instance, error_message, reboot_triggered, support_notified
FROM green_api_health_logs
WHERE status <> 'healthy';

-- The roll-up rows of the instances p_ids covering [since, now], as green_api_rollup_since.
CREATE FUNCTION green_api_rollup_of(p_since TIMESTAMPTZ, p_ids VARCHAR[])
RETURNS TABLE (instance_id VARCHAR, status VARCHAR, checks INTEGER, in_window INTEGER, timed_rows INTEGER,
               response_ms_sum BIGINT, response_ms_max INTEGER, reboots INTEGER, alerts INTEGER)
LANGUAGE sql STABLE AS $$
  SELECT instance_id, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts
  FROM green_api_check_daily WHERE day >= (SELECT date_trunc('day', p_since, 'UTC') + interval '1 day')
    AND instance_id = ANY(p_ids)
  UNION ALL
  SELECT instance_id, status, checks, in_window, timed_rows, response_ms_sum, response_ms_max, reboots, alerts
  FROM green_api_check_hourly
  WHERE hour >= (SELECT date_trunc('hour', p_since, 'UTC'))
    AND hour < (SELECT date_trunc('day', p_since, 'UTC') + interval '1 day')
    AND instance_id = ANY(p_ids)
$$;

-- green_api_instance_uptime's figures for the instances p_ids: the fleet view asks for a page's.
CREATE FUNCTION green_api_instance_uptime_of(p_ids VARCHAR[])
RETURNS TABLE (instance_id VARCHAR, uptime_24h NUMERIC, uptime_7d NUMERIC, uptime_30d NUMERIC, mean_ms_24h NUMERIC,
               mean_ms_7d NUMERIC, mean_ms_30d NUMERIC, checks_24h BIGINT, reboots_24h BIGINT)
LANGUAGE sql STABLE AS $$
  SELECT r.instance_id,
         round(100.0 * COALESCE(sum(checks - in_window) FILTER (WHERE w = '24h' AND status = 'healthy'), 0)
               / NULLIF(sum(checks - in_window) FILTER (WHERE w = '24h' AND status <> 'rebooted'), 0), 2),
         round(100.0 * COALESCE(sum(checks - in_window) FILTER (WHERE w = '7d' AND status = 'healthy'), 0)
               / NULLIF(sum(checks - in_window) FILTER (WHERE w = '7d' AND status <> 'rebooted'), 0), 2),
         round(100.0 * COALESCE(sum(checks - in_window) FILTER (WHERE w = '30d' AND status = 'healthy'), 0)
               / NULLIF(sum(checks - in_window) FILTER (WHERE w = '30d' AND status <> 'rebooted'), 0), 2),
         round(sum(response_ms_sum) FILTER (WHERE w = '24h') / NULLIF(sum(timed_rows) FILTER (WHERE w = '24h'), 0)),
         round(sum(response_ms_sum) FILTER (WHERE w = '7d') / NULLIF(sum(timed_rows) FILTER (WHERE w = '7d'), 0)),
         round(sum(response_ms_sum) FILTER (WHERE w = '30d') / NULLIF(sum(timed_rows) FILTER (WHERE w = '30d'), 0)),
         COALESCE(sum(checks) FILTER (WHERE w = '24h'), 0),
         COALESCE(sum(reboots) FILTER (WHERE w = '24h'), 0)
  FROM (VALUES ('24h', now() - interval '24 hours'), ('7d', now() - interval '7 days'),
               ('30d', now() - interval '30 days')) AS win(w, since)
  CROSS JOIN LATERAL green_api_rollup_of(win.since, p_ids) AS r
  GROUP BY r.instance_id
$$;

-- The seed's 7-day statistics from the all-instances hours (the same whole hours as before): a
-- few hundred rows whatever the fleet.
CREATE OR REPLACE VIEW green_api_stats_7d AS
SELECT COALESCE(sum(checks), 0) AS total_checks,
       COALESCE(sum(checks) FILTER (WHERE status = 'healthy'), 0) AS healthy_count,
       COALESCE(sum(checks) FILTER (WHERE status = 'unhealthy'), 0) AS unhealthy_count,
       COALESCE(sum(checks) FILTER (WHERE status = 'critical_failure'), 0) AS critical_count,
       round(sum(response_ms_sum) / NULLIF(sum(timed_rows), 0)) AS avg_response_ms,
       COALESCE(sum(reboots), 0) AS total_reboots,
       COALESCE(sum(alerts), 0) AS total_alerts
FROM green_api_check_hourly_all WHERE hour >= (SELECT date_trunc('hour', now() - interval '7 days', 'UTC'));

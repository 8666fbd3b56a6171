-- The dashboard's "authorized but broken" readings (issue 15): per instance, the last outgoing
-- queue length, socket status and settings status read (columns of sql/007), each with its time.
--
-- A check reads them only while the instance is authorized, the queue every queue_check_minutes
-- and the settings every settings_check_minutes (only for connections with expected_settings):
-- most rows hold no settings reading, and an instance down for days holds no reading at all. One
-- partial index per reading makes "the last one" a single index probe per instance, however far
-- back it is (they also serve the queue chart of one instance).
CREATE INDEX idx_health_logs_queue_read ON green_api_health_logs(instance_id, checked_at DESC)
  INCLUDE (queue_length) WHERE queue_length IS NOT NULL;
CREATE INDEX idx_health_logs_socket_read ON green_api_health_logs(instance_id, checked_at DESC)
  INCLUDE (socket_status) WHERE socket_status IS NOT NULL;
CREATE INDEX idx_health_logs_settings_read ON green_api_health_logs(instance_id, checked_at DESC)
  INCLUDE (settings_status) WHERE settings_status IS NOT NULL;

-- The last reading of each kind over the last 7 days (NULL: none read in that time), and when it
-- was read (checked_at of its check).
CREATE VIEW green_api_instance_readings AS
SELECT i.instance_id, q.queue_length, q.checked_at AS queue_read_at,
       s.socket_status, s.checked_at AS socket_read_at,
       st.settings_status, st.checked_at AS settings_read_at
FROM green_api_instance_ids i
LEFT JOIN LATERAL (
  SELECT g.queue_length, g.checked_at FROM green_api_health_logs g
  WHERE g.instance_id = i.instance_id AND g.queue_length IS NOT NULL
    AND g.checked_at >= now() - interval '7 days'
  ORDER BY g.checked_at DESC LIMIT 1
) AS q ON true
LEFT JOIN LATERAL (
  SELECT g.socket_status, g.checked_at FROM green_api_health_logs g
  WHERE g.instance_id = i.instance_id AND g.socket_status IS NOT NULL
    AND g.checked_at >= now() - interval '7 days'
  ORDER BY g.checked_at DESC LIMIT 1
) AS s ON true
LEFT JOIN LATERAL (
  SELECT g.settings_status, g.checked_at FROM green_api_health_logs g
  WHERE g.instance_id = i.instance_id AND g.settings_status IS NOT NULL
    AND g.checked_at >= now() - interval '7 days'
  ORDER BY g.checked_at DESC LIMIT 1
) AS st ON true;

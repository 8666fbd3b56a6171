-- "Authorized but broken" (issue 15): what each check read beyond the state, and each instance's
-- running streaks of those readings.
-- Per check: the outgoing queue's length (showMessagesQueue, capped by the API at 500), the socket
-- (getStatusInstance: online/offline) and the settings compared with the connection's
-- expected_settings (match, drift). NULL: not read by that check.
ALTER TABLE green_api_health_logs
  ADD COLUMN queue_length INTEGER,
  ADD COLUMN socket_status VARCHAR,
  ADD COLUMN settings_status VARCHAR
    CHECK (settings_status IS NULL OR settings_status IN ('match', 'drift'));

-- Per instance: the current streak of each problem (checks in a row, and the real time of the
-- streak's first check), the last queue length read, and when the queue and the settings were last
-- read (each has its own period: queue_check_minutes, settings_check_minutes).
ALTER TABLE green_api_instance_status
  ADD COLUMN queue_streak INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN queue_since TIMESTAMPTZ,
  ADD COLUMN queue_length INTEGER,
  ADD COLUMN socket_streak INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN socket_since TIMESTAMPTZ,
  ADD COLUMN queue_read_at TIMESTAMPTZ,
  ADD COLUMN settings_read_at TIMESTAMPTZ;

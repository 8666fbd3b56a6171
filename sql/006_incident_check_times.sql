-- The real times of an incident, for the messages and the dashboard: when its first failing check
-- and its first healthy check were made (checked_at, as in green_api_health_logs). opened_at and
-- resolved_at stay the runs' logical times, which drive escalations and reminders.
-- NULL for incidents stored before this migration (their real times are unknown).
ALTER TABLE green_api_incidents
  ADD COLUMN first_failed_at TIMESTAMPTZ,
  ADD COLUMN recovered_at TIMESTAMPTZ;

-- The real time of the first check of an instance's current failing (or healthy) streak: with
-- failure_threshold > 1 the incident opens on a later check, and starts at this one.
ALTER TABLE green_api_instance_status ADD COLUMN streak_started_at TIMESTAMPTZ;

-- Open incidents as the dashboard shows them: opened when the outage started, as checked.
CREATE OR REPLACE VIEW green_api_open_incidents AS
SELECT id, instance_id, connection_id, kind, severity, COALESCE(first_failed_at, opened_at) AS opened_at,
       now() - COALESCE(first_failed_at, opened_at) AS open_for,
       checks, reboots, levels_notified, last_state, last_error
FROM green_api_incidents WHERE resolved_at IS NULL;

-- Open incidents as the dashboard shows them, with a platform outage's members (issue 24): the
-- page's banner and /api/incidents name the outage's instances, and each member's row links to it.
CREATE OR REPLACE VIEW green_api_open_incidents AS
SELECT id, instance_id, connection_id, kind, severity, COALESCE(first_failed_at, opened_at) AS opened_at,
       now() - COALESCE(first_failed_at, opened_at) AS open_for,
       checks, reboots, levels_notified, last_state, last_error, members
FROM green_api_incidents WHERE resolved_at IS NULL;

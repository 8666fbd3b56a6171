-- The logical time of the last run that saw a platform outage (issue 24): a run whose alert step
-- is run again (cleared, retried) counts its sight of the outage once, as it counts each check once.
ALTER TABLE green_api_incidents ADD COLUMN last_seen_at TIMESTAMPTZ;

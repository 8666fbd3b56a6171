-- Incidents: one open incident per instance and problem kind. An alert step is marked done only
-- once a delivery was accepted, so a failed send is tried again by the next run.
CREATE TABLE green_api_incidents (
  id BIGSERIAL PRIMARY KEY,
  instance_id VARCHAR NOT NULL,
  connection_id VARCHAR,
  kind VARCHAR NOT NULL,
  severity VARCHAR NOT NULL DEFAULT 'warning' CHECK (severity IN ('warning', 'critical')),
  opened_at TIMESTAMPTZ NOT NULL,
  resolved_at TIMESTAMPTZ,
  last_state VARCHAR,
  last_error TEXT,
  checks INTEGER NOT NULL DEFAULT 0,
  reboots INTEGER NOT NULL DEFAULT 0,
  reboots_ok INTEGER NOT NULL DEFAULT 0,
  levels_notified INTEGER NOT NULL DEFAULT 0,
  opening_notified_at TIMESTAMPTZ,
  last_reminder_at TIMESTAMPTZ,
  resolution_notified_at TIMESTAMPTZ,
  CONSTRAINT green_api_incidents_resolved_after_opened CHECK (resolved_at IS NULL OR resolved_at >= opened_at)
);
CREATE UNIQUE INDEX green_api_incidents_one_open ON green_api_incidents(instance_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX idx_incidents_instance_opened ON green_api_incidents(instance_id, opened_at DESC);

-- Consecutive failing/healthy checks per instance: what opens and resolves incidents.
CREATE TABLE green_api_instance_status (
  instance_id VARCHAR PRIMARY KEY,
  failing_kind VARCHAR,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  consecutive_successes INTEGER NOT NULL DEFAULT 0,
  last_state VARCHAR,
  state_since TIMESTAMPTZ,
  last_checked_at TIMESTAMPTZ
);

-- Every delivery attempt of every alert, on every channel.
CREATE TABLE green_api_alert_deliveries (
  id BIGSERIAL PRIMARY KEY,
  incident_id BIGINT REFERENCES green_api_incidents(id) ON DELETE CASCADE,
  instance_id VARCHAR,
  dag_id VARCHAR,
  run_id VARCHAR,
  message_kind VARCHAR NOT NULL,
  contact_id BIGINT,
  recipient VARCHAR NOT NULL,
  channel VARCHAR NOT NULL CHECK (channel IN ('whatsapp', 'email')),
  sender VARCHAR,
  attempt INTEGER NOT NULL DEFAULT 1,
  ok BOOLEAN NOT NULL,
  id_message VARCHAR,
  error TEXT,
  attempted_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_deliveries_incident ON green_api_alert_deliveries(incident_id, attempted_at);

ALTER TABLE green_api_health_logs
  ADD COLUMN incident_id BIGINT REFERENCES green_api_incidents(id) ON DELETE SET NULL,
  ADD COLUMN in_maintenance_window BOOLEAN NOT NULL DEFAULT false;

-- Optional e-mail of a contact, for the e-mail fallback when no WhatsApp sender works.
ALTER TABLE system_support_contacts
  ADD COLUMN email VARCHAR CONSTRAINT system_support_contacts_email_format CHECK (email IS NULL OR email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$');

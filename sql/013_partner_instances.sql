-- The instances of the Green API partner accounts the health check lists (issue 26): what each
-- getInstances said last, without the tokens. The dashboard shows their names and marks the
-- deleted ones; an account that could not be listed changes nothing here.
CREATE TABLE green_api_partner_instances (
  instance_id VARCHAR PRIMARY KEY,
  partner_connection_id VARCHAR NOT NULL,
  name VARCHAR,
  type_instance VARCHAR NOT NULL,
  deleted BOOLEAN NOT NULL DEFAULT false,
  time_deleted TIMESTAMPTZ,
  expires_at TIMESTAMPTZ,
  expired BOOLEAN NOT NULL DEFAULT false,
  tariff VARCHAR,
  first_listed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  last_listed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX green_api_partner_instances_account ON green_api_partner_instances (partner_connection_id);

-- The fleet as the dashboard lists it: each instance's last check, its name (the connection's
-- description, else the account's name for it), and "deleted" (with when) for an instance
-- deleted from its partner account, instead of the failing status of its last check.
CREATE VIEW green_api_fleet AS
SELECT l.instance_id, l.connection_id, COALESCE(p.name, l.instance_name) AS instance_name, l.api_host, l.id,
       l.checked_at, CASE WHEN p.deleted THEN 'deleted' ELSE l.status END AS status, l.state_instance,
       l.response_time_ms, l.error_message,
       CASE WHEN p.deleted THEN COALESCE(p.time_deleted, p.changed_at) END AS deleted_at
FROM green_api_instance_latest l
LEFT JOIN green_api_partner_instances p ON p.instance_id = l.instance_id;

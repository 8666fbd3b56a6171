-- The seed's health log, every column, CHECK and index kept so its queries run unchanged.
-- Additions: 'rate_limited' status (a 429 is not the instance failing), 'scheduled' trigger
-- type, and what several instances and idempotent retries need.
CREATE TABLE green_api_health_logs (
  id BIGSERIAL PRIMARY KEY,
  checked_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  status VARCHAR NOT NULL
    CHECK (status IN ('healthy', 'unhealthy', 'rebooted', 'critical_failure', 'rate_limited')),
  state_instance VARCHAR,
  error_message TEXT,
  reboot_triggered BOOLEAN DEFAULT false,
  reboot_success BOOLEAN,
  response_time_ms INTEGER,
  support_notified BOOLEAN DEFAULT false,
  support_notification_sent_at TIMESTAMPTZ,
  trigger_type VARCHAR DEFAULT 'automatic'
    CHECK (trigger_type IN ('automatic', 'manual', 'scheduled')),
  instance_id VARCHAR,
  connection_id VARCHAR,
  alert_type VARCHAR,
  dag_id VARCHAR,
  run_id VARCHAR,
  -- A retried log task writes the same (dag, run, instance) again: it must be a no-op.
  CONSTRAINT green_api_health_logs_run_instance_key UNIQUE (dag_id, run_id, instance_id)
);

CREATE INDEX idx_health_logs_checked_at ON green_api_health_logs(checked_at DESC);
CREATE INDEX idx_health_logs_status ON green_api_health_logs(status);
CREATE INDEX idx_health_logs_instance_checked_at ON green_api_health_logs(instance_id, checked_at DESC);

-- When each instance was last rebooted automatically (the run's logical time): the cooldown and
-- the daily cap are counted from here.
ALTER TABLE green_api_instance_status
  ADD COLUMN auto_reboots TIMESTAMPTZ[] NOT NULL DEFAULT '{}';

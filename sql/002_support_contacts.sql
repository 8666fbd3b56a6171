-- Support contacts alerted by WhatsApp, lowest notification_priority first.
-- Malformed numbers are refused here, not discovered when an alert fails.
CREATE TABLE system_support_contacts (
  id BIGSERIAL PRIMARY KEY,
  full_name VARCHAR NOT NULL,
  phone_number VARCHAR NOT NULL,
  notification_priority INTEGER NOT NULL DEFAULT 1,
  is_active BOOLEAN NOT NULL DEFAULT true,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  -- personal chats: country code and number, digits only, then @c.us; groups: an API id then @g.us
  CONSTRAINT system_support_contacts_phone_number_format
    CHECK (phone_number ~ '^[0-9]{7,15}@c\.us$' OR phone_number ~ '^[0-9]{6,}(-[0-9]+)?@g\.us$'),
  CONSTRAINT system_support_contacts_priority_positive CHECK (notification_priority > 0),
  CONSTRAINT system_support_contacts_full_name_not_blank CHECK (btrim(full_name) <> ''),
  CONSTRAINT system_support_contacts_phone_number_key UNIQUE (phone_number)
);

CREATE INDEX idx_support_contacts_active_priority
  ON system_support_contacts(notification_priority, id) WHERE is_active;

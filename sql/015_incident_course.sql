-- The problems an incident went through, in order (issue 28): each as {"problem", "at", "state",
-- "reboot_ok"}, so that its resolution names every one and what was done about it.
ALTER TABLE green_api_incidents ADD COLUMN course JSONB NOT NULL DEFAULT '[]';

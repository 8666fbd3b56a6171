-- Platform outages (issue 24): many instances of one API host failing alike in one run are one
-- incident of kind 'platform_outage', kept under the outage's key ('outage:<host>:<symptom>')
-- instead of an instance id. Its members (instance ids) are what its resolution reports on: how
-- many recovered, and which still fail. NULL for an instance's own incident.
ALTER TABLE green_api_incidents ADD COLUMN members TEXT[];

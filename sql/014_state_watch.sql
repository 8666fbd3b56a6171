-- The state watch's last round (issue 27): the trigger in the triggerer writes one row per watch
-- at the end of each round, and each scheduled health check reads it. A row that stops moving is
-- a watch that died or a triggerer that stopped: the run fails naming it and support is told.
-- started_at moves when the trigger starts again (a triggerer restart, a crash and its restart).
CREATE TABLE green_api_state_watch (
  watch_name VARCHAR PRIMARY KEY,
  started_at TIMESTAMPTZ NOT NULL,
  last_round_at TIMESTAMPTZ NOT NULL,
  watch_seconds DOUBLE PRECISION NOT NULL,
  watched INTEGER NOT NULL,
  answered INTEGER NOT NULL,
  rate_limited INTEGER NOT NULL,
  unusable INTEGER NOT NULL,
  rounds BIGINT NOT NULL,
  changes BIGINT NOT NULL,
  round_ms INTEGER NOT NULL
);

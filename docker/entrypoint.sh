#!/usr/bin/env bash
# Entrypoint of the image. Connections and Variables live in Airflow's database, where the UI
# lists, edits and tests them: airflow-init (GREEN_API_ROLE=init) puts those of .env there
# (GREEN_API_* settings and any AIRFLOW_CONN_* / AIRFLOW_VAR_*). The other services drop the
# environment copies, which would hide every edit made in the UI. Then Airflow's own entrypoint
# runs the command (api-server, scheduler, ...).
set -euo pipefail
if [ "${GREEN_API_ROLE:-}" != init ]; then
  for name in $(env | sed -n 's/^\(AIRFLOW_\(CONN\|VAR\)_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$name"; done
  unset GREEN_API_TOKEN GREEN_API_ALERTS_TOKEN GREEN_API_PARTNER_TOKEN
fi
exec "${AIRFLOW_ENTRYPOINT:-/entrypoint}" "$@"  # Airflow's (another one only in tests)

#!/usr/bin/env bash
# Entrypoint of the image: GREEN_API_* settings (.env) become Airflow connections, then Airflow's
# own entrypoint runs the command (api-server, scheduler, ...).
set -euo pipefail
PY=python
. /opt/airflow/docker/connections.sh
if [ -n "${AIRFLOW_CONN_GREEN_API_DEFAULT:-}${GREEN_API_TOKEN:-}" ]; then
  green_api_connections
fi
exec /entrypoint "$@"

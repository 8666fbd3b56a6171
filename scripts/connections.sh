# Sourced by scripts/run.sh and by the Docker image's entrypoint (docker/entrypoint.sh).
# Turns the GREEN_API_* settings of .env into Airflow connections green_api_default and
# green_api_alerts, unless AIRFLOW_CONN_GREEN_API_DEFAULT / _ALERTS are given directly.
# Needs $PY: a Python to escape the values into JSON.

green_api_conn_json() {  # URL ID TOKEN -> an Airflow connection in JSON
  "$PY" -c 'import json,sys; print(json.dumps({"conn_type": "green_api", "host": sys.argv[1], "login": sys.argv[2], "password": sys.argv[3]}))' "$@"
}

green_api_connections() {
  if [ -z "${AIRFLOW_CONN_GREEN_API_DEFAULT:-}" ]; then
    : "${GREEN_API_URL:?GREEN_API_URL is not set in .env (apiUrl of the instance, e.g. https://7105.api.greenapi.com)}"
    : "${GREEN_API_INSTANCE_ID:?GREEN_API_INSTANCE_ID is not set in .env (idInstance)}"
    : "${GREEN_API_TOKEN:?GREEN_API_TOKEN is not set in .env (apiTokenInstance)}"
    AIRFLOW_CONN_GREEN_API_DEFAULT="$(green_api_conn_json "$GREEN_API_URL" "$GREEN_API_INSTANCE_ID" "$GREEN_API_TOKEN")"
    export AIRFLOW_CONN_GREEN_API_DEFAULT
  fi
  if [ -z "${AIRFLOW_CONN_GREEN_API_ALERTS:-}" ] && [ -n "${GREEN_API_ALERTS_TOKEN:-}" ]; then
    AIRFLOW_CONN_GREEN_API_ALERTS="$(green_api_conn_json "${GREEN_API_ALERTS_URL:-$GREEN_API_URL}" \
      "${GREEN_API_ALERTS_INSTANCE_ID:?GREEN_API_ALERTS_INSTANCE_ID is not set in .env}" "$GREEN_API_ALERTS_TOKEN")"
    export AIRFLOW_CONN_GREEN_API_ALERTS
  fi
}

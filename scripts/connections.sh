# Sourced by scripts/run.sh and by the Docker image's entrypoint (docker/entrypoint.sh).
# Turns the GREEN_API_* settings of .env into Airflow connections green_api_default,
# green_api_alerts and green_api_partner, unless AIRFLOW_CONN_GREEN_API_DEFAULT / _ALERTS / _PARTNER
# are given directly; with a partner account and no Variable green_api_instances of its own, the
# list is the instance (if any) and every instance of the account.
# Needs $PY: a Python to escape the values into JSON.

green_api_conn_json() {  # URL ID TOKEN -> an Airflow connection in JSON
  "$PY" -c 'import json,sys; print(json.dumps({"conn_type": "greenapi", "host": sys.argv[1], "login": sys.argv[2], "password": sys.argv[3]}))' "$@"
}

green_api_partner_json() {  # PARTNER_API_URL TOKEN INSTANCES_API_URL -> a partner connection in JSON
  "$PY" -c 'import json,sys; print(json.dumps({"conn_type": "greenapipartner", "host": sys.argv[1], "password": sys.argv[2], "extra": {"api_url": sys.argv[3]} if sys.argv[3] else {}}))' "$@"
}

green_api_partner_given() {
  [ -n "${AIRFLOW_CONN_GREEN_API_PARTNER:-}${GREEN_API_PARTNER_TOKEN:-}" ]
}

green_api_partner_connection() {
  if [ -z "${AIRFLOW_CONN_GREEN_API_PARTNER:-}" ] && [ -n "${GREEN_API_PARTNER_TOKEN:-}" ]; then
    AIRFLOW_CONN_GREEN_API_PARTNER="$(green_api_partner_json "${GREEN_API_PARTNER_URL:-https://api.green-api.com}" \
      "$GREEN_API_PARTNER_TOKEN" "${GREEN_API_PARTNER_INSTANCES_URL:-}")"
    export AIRFLOW_CONN_GREEN_API_PARTNER
  fi
  if [ -z "${AIRFLOW_VAR_GREEN_API_INSTANCES:-}" ]; then
    if [ -n "${AIRFLOW_CONN_GREEN_API_DEFAULT:-}${GREEN_API_TOKEN:-}" ]; then
      export AIRFLOW_VAR_GREEN_API_INSTANCES='["green_api_default", {"partner": "green_api_partner"}]'
    else
      export AIRFLOW_VAR_GREEN_API_INSTANCES='[{"partner": "green_api_partner"}]'
    fi
  fi
}

green_api_connections() {
  if green_api_partner_given; then
    green_api_partner_connection
    [ -n "${AIRFLOW_CONN_GREEN_API_DEFAULT:-}${GREEN_API_TOKEN:-}" ] || { green_api_alerts_connection; return; }
  fi
  if [ -z "${AIRFLOW_CONN_GREEN_API_DEFAULT:-}" ]; then
    : "${GREEN_API_URL:?GREEN_API_URL is not set in .env (apiUrl of the instance, e.g. https://7105.api.greenapi.com)}"
    : "${GREEN_API_INSTANCE_ID:?GREEN_API_INSTANCE_ID is not set in .env (idInstance)}"
    : "${GREEN_API_TOKEN:?GREEN_API_TOKEN is not set in .env (apiTokenInstance)}"
    AIRFLOW_CONN_GREEN_API_DEFAULT="$(green_api_conn_json "$GREEN_API_URL" "$GREEN_API_INSTANCE_ID" "$GREEN_API_TOKEN")"
    export AIRFLOW_CONN_GREEN_API_DEFAULT
  fi
  green_api_alerts_connection
}

green_api_alerts_connection() {
  if [ -z "${AIRFLOW_CONN_GREEN_API_ALERTS:-}" ] && [ -n "${GREEN_API_ALERTS_TOKEN:-}" ]; then
    AIRFLOW_CONN_GREEN_API_ALERTS="$(green_api_conn_json "${GREEN_API_ALERTS_URL:-$GREEN_API_URL}" \
      "${GREEN_API_ALERTS_INSTANCE_ID:?GREEN_API_ALERTS_INSTANCE_ID is not set in .env}" "$GREEN_API_ALERTS_TOKEN")"
    export AIRFLOW_CONN_GREEN_API_ALERTS
  fi
}

green_api_import_instances() {  # DIR (the env file's): an instances file (GREEN_API_INSTANCES_FILE, a path
  # relative to DIR, else DIR's instances.csv, instances.yaml or instances.yml), if any, into Airflow's
  # metadata database: connections and list merged with what is there (docs/configuration.md)
  local file=${GREEN_API_INSTANCES_FILE:-} found
  if [ -n "$file" ]; then
    case "$file" in /*) ;; *) file="$1/$file" ;; esac
  else
    for found in "$1/instances.csv" "$1/instances.yaml" "$1/instances.yml"; do
      if [ -f "$found" ]; then file=$found; break; fi
    done
  fi
  if [ -n "$file" ]; then "$PY" -m greenapi.instances add --metadata-db "$file"; fi
}

#!/usr/bin/env bash
# `make run`: Airflow (api-server, dag-processor, scheduler with LocalExecutor, triggerer; started
# by scripts/serve.py) with this package's DAGs and the retention job beside them, against a real
# Green API instance when .env has credentials, else in demo mode against the bundled simulator.
#
# Settings (environment): UI_PORT (8080), UI_HOST (127.0.0.1; 0.0.0.0 opens the UI to the
# network), UI_URL (the address people open, used in alert links; http://localhost:$UI_PORT),
# SIM_HOST/SIM_PORT (demo simulator), GREEN_API_ENV_FILE (.env), GREEN_API_AIRFLOW_HOME (.airflow)
# and GREEN_API_AIRFLOW_DB (green_api_airflow) to run a second deployment beside this one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"
SIM_HOST=${SIM_HOST:-127.0.0.1}
SIM_PORT=${SIM_PORT:-8765}
UI_PORT=${UI_PORT:-8080}
UI_HOST=${UI_HOST:-127.0.0.1}
UI_URL=${UI_URL:-http://localhost:$UI_PORT}
ENV_FILE=${GREEN_API_ENV_FILE:-.env}

if [ -f "$ENV_FILE" ]; then set -a; . "$ENV_FILE"; set +a; fi

. scripts/connections.sh

if [ -n "${AIRFLOW_CONN_GREEN_API_DEFAULT:-}" ] || [ -n "${GREEN_API_TOKEN:-}" ] || green_api_partner_given; then
  mode=run
else
  mode=demo
fi
. scripts/env.sh "$mode"
"$PY" -m greenapi.migrate --url "$GREEN_API_DB_URL"
# The key that signs the API's tokens, shared by every Airflow process of this deployment: 32
# bytes, kept in the Airflow home (Airflow's own default has 16, and PyJWT warns at each token).
if [ -z "${AIRFLOW__API_AUTH__JWT_SECRET:-}" ]; then
  if [ ! -s "$AIRFLOW_HOME/jwt_secret" ]; then
    mkdir -p "$AIRFLOW_HOME"
    (umask 077; "$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$AIRFLOW_HOME/jwt_secret")
  fi
  AIRFLOW__API_AUTH__JWT_SECRET=$(cat "$AIRFLOW_HOME/jwt_secret")
  export AIRFLOW__API_AUTH__JWT_SECRET
fi

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
mkdir -p "$AIRFLOW_HOME/logs"

if [ "$mode" = run ]; then
  green_api_connections
  banner="Monitoring your Green API instance (credentials from $ENV_FILE)"
else
  sim="http://$SIM_HOST:$SIM_PORT"
  if ! curl -fsS "$sim/_sim/health" >/dev/null 2>&1; then
    "$PY" -m greenapi_simulator --host "$SIM_HOST" --port "$SIM_PORT" --demo > "$AIRFLOW_HOME/logs/simulator.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do curl -fsS "$sim/_sim/health" >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  export AIRFLOW_CONN_GREEN_API_DEFAULT="$(green_api_conn_json "$sim" 1101000001 "${GREENAPI_DEMO_TOKEN_1:-demo-token-1}")"
  export AIRFLOW_CONN_GREEN_API_FLAKY="$(green_api_conn_json "$sim" 1101000002 "${GREENAPI_DEMO_TOKEN_2:-demo-token-2}")"
  export AIRFLOW_CONN_GREEN_API_ALERTS="$(green_api_conn_json "$sim" 1101000009 "${GREENAPI_DEMO_TOKEN_9:-demo-token-9}")"
  export AIRFLOW_CONN_GREEN_API_PARTNER="$(green_api_partner_json "$sim" "${GREENAPI_DEMO_PARTNER_TOKEN:-demo-partner-token}" "$sim")"
  export AIRFLOW_VAR_GREEN_API_INSTANCES='["green_api_default", "green_api_flaky", {"partner": "green_api_partner"}]'
  # The state watch is on in the demo: a change of state starts a check within seconds.
  export AIRFLOW_VAR_GREEN_API_WATCH='{"enabled": true, "watch_seconds": 20}'
  # Demo contacts live in the demo database only (green_api_demo), never in your real one.
  "$PY" - "$GREEN_API_DB_URL" <<'PYEOF'
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute(
        "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority) VALUES"
        " ('Demo support (primary)', '33600000001@c.us', 1), ('Demo support (backup)', '33600000002@c.us', 2)"
        " ON CONFLICT (phone_number) DO NOTHING"
    )
PYEOF
  banner="DEMO MODE: no credentials in $ENV_FILE, monitoring the bundled simulator at $sim
  Instances: 1101000001 (always healthy) and 1101000002 (cycles: not authorized, healthy, hanging),
  and a partner account of 3 (connection green_api_partner: 1101100001-3, the third expiring in 2 days);
  the state watch is on (Variable green_api_watch): a change of state is checked within seconds
  Alerts are sent through simulator instance 1101000009; see them with:
    curl -s $sim/_sim/messages | python3 -m json.tool
  To monitor your own instance: cp .env.example .env, fill it in, run 'make run' again."
fi

if [ -n "${GREEN_API_SUPPORT_CONTACT:-}" ]; then  # "Full Name|33612345678@c.us[|priority]"
  "$PY" - "$GREEN_API_DB_URL" "$GREEN_API_SUPPORT_CONTACT" <<'PYEOF'
import sys, psycopg
name, phone, *rest = sys.argv[2].split("|")
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute(
        "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority) VALUES (%s, %s, %s)"
        " ON CONFLICT (phone_number) DO NOTHING", (name, phone, int(rest[0]) if rest else 1))
PYEOF
fi

export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__HOST="$UI_HOST"
export AIRFLOW__API__PORT="$UI_PORT"
export AIRFLOW__API__BASE_URL="$UI_URL"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$UI_PORT/execution/"

airflow db migrate > "$AIRFLOW_HOME/logs/db-migrate.log" 2>&1 || { tail -20 "$AIRFLOW_HOME/logs/db-migrate.log"; exit 1; }
# The connections and Variables above (and any of .env) go into Airflow's database, where the UI
# lists, edits and tests them; the environment variables are dropped so that they win no more.
unsets=$("$PY" scripts/import_env.py)
eval "$unsets"
# Then the instances of instances.csv or .yaml beside the env file (GREEN_API_INSTANCES_FILE), merged
# with the list: a test's env file elsewhere never picks up this checkout's own.
green_api_import_instances "$(dirname "$ENV_FILE")"

if [ "$UI_HOST" = 127.0.0.1 ] || [ "$UI_HOST" = localhost ]; then
  reach="only from this machine (UI_HOST=0.0.0.0 make run opens it to the network)"
else
  reach="on $UI_HOST: anyone who reaches this machine's port $UI_PORT sees the login page"
fi
cat <<EOM

================================================================================
 $banner

 Airflow UI:      $UI_URL   (user: admin), listening $reach
 Admin password:  $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
                  (generated at the first start; cat it in another terminal)
 Dashboard:       $UI_URL/green-api/   (also Browse > Green API in the Airflow UI)
 Health data:     PostgreSQL $(echo "$GREEN_API_DB_URL" | sed -E 's#^[a-z]+://([^@/]*@)?##') (connection green_api_db)
 Logs:            $AIRFLOW_HOME/logs (retention.log: Airflow's records kept 30 days)
 Stop:            Ctrl-C
================================================================================

EOM
"$PY" scripts/serve.py

#!/usr/bin/env bash
# `make run`: Airflow (standalone) with this package's DAGs, against a real Green API instance
# when .env has credentials, else in demo mode against the bundled simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"  # airflow standalone starts its components as `airflow ...`
SIM_HOST=${SIM_HOST:-127.0.0.1}
SIM_PORT=${SIM_PORT:-8765}
UI_PORT=${UI_PORT:-8080}

if [ -f .env ]; then set -a; . ./.env; set +a; fi

. scripts/connections.sh

if [ -n "${AIRFLOW_CONN_GREEN_API_DEFAULT:-}" ] || [ -n "${GREEN_API_TOKEN:-}" ]; then
  mode=run
else
  mode=demo
fi
. scripts/env.sh "$mode"
"$PY" -m greenapi.migrate --url "$GREEN_API_DB_URL"

if [ "$mode" = run ]; then
  green_api_connections
  banner="Monitoring your Green API instance (credentials from .env)"
else
  if ! curl -fsS "http://$SIM_HOST:$SIM_PORT/_sim/health" >/dev/null 2>&1; then
    mkdir -p .airflow
    "$PY" -m greenapi.simulator --host "$SIM_HOST" --port "$SIM_PORT" --demo > .airflow/simulator.log 2>&1 &
    sim_pid=$!
    trap 'kill $sim_pid 2>/dev/null || true' EXIT
    for _ in $(seq 50); do curl -fsS "http://$SIM_HOST:$SIM_PORT/_sim/health" >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  sim="http://$SIM_HOST:$SIM_PORT"
  export AIRFLOW_CONN_GREEN_API_DEFAULT="$(green_api_conn_json "$sim" 1101000001 "${GREENAPI_DEMO_TOKEN_1:-demo-token-1}")"
  export AIRFLOW_CONN_GREEN_API_FLAKY="$(green_api_conn_json "$sim" 1101000002 "${GREENAPI_DEMO_TOKEN_2:-demo-token-2}")"
  export AIRFLOW_CONN_GREEN_API_ALERTS="$(green_api_conn_json "$sim" 1101000009 "${GREENAPI_DEMO_TOKEN_9:-demo-token-9}")"
  export AIRFLOW_VAR_GREEN_API_INSTANCES='["green_api_default", "green_api_flaky"]'
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
  banner="DEMO MODE: no credentials in .env, monitoring the bundled simulator at $sim
  Instances: 1101000001 (always healthy) and 1101000002 (cycles: not authorized, healthy, hanging)
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
export AIRFLOW__API__PORT="$UI_PORT"
export AIRFLOW__API__BASE_URL="http://localhost:$UI_PORT"
cat <<EOM

================================================================================
 $banner

 Airflow UI:      http://localhost:$UI_PORT   (user: admin)
 Admin password:  $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
                  (written when Airflow has started; cat it in another terminal)
 Health data:     PostgreSQL, connection green_api_db -> table green_api_health_logs
 Stop:            Ctrl-C
================================================================================

EOM
airflow standalone

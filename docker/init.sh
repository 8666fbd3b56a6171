#!/usr/bin/env bash
# One-shot set-up of the compose deployment (service airflow-init): refuses weak secrets, migrates
# Airflow's metadata database, creates and migrates the health database, writes the UI login.
set -euo pipefail

fail() { echo "airflow-init: $*" >&2; exit 1; }
case "${AIRFLOW_ADMIN_PASSWORD:-}" in
  "" ) fail "AIRFLOW_ADMIN_PASSWORD is not set in .env: the UI login needs a password of your own" ;;
  admin|airflow|password|changeme ) fail "AIRFLOW_ADMIN_PASSWORD is a default password: choose another" ;;
esac
[ "${#AIRFLOW_ADMIN_PASSWORD}" -ge 12 ] || fail "AIRFLOW_ADMIN_PASSWORD must have at least 12 characters"
[ "${#AIRFLOW__API_AUTH__JWT_SECRET}" -ge 32 ] || fail "AIRFLOW_JWT_SECRET must have at least 32 characters"

if [ "${AIRFLOW__CORE__EXECUTOR}" = CeleryExecutor ]; then
  python -c 'import socket; socket.create_connection(("redis", 6379), 10).close()' 2>/dev/null \
    || fail "AIRFLOW_EXECUTOR=CeleryExecutor needs Redis: start with 'docker compose --profile celery up'"
fi

airflow db migrate

# The health database (GREEN_API_DB_URL: the one .env names, else green_api in the postgres
# service) is created when missing, then migrated: the DAGs write there, through green_api_db.
python - <<'PY'
import os, psycopg
from psycopg import sql
server, name = os.environ["GREEN_API_DB_URL"].split("?")[0].rsplit("/", 1)
with psycopg.connect(server + "/postgres", autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"airflow-init: created database {name}")
PY
python -m greenapi.migrate --url "$GREEN_API_DB_URL"

# The monitored instance (GREEN_API_* of .env), green_api_db and any AIRFLOW_CONN_* / AIRFLOW_VAR_*
# of .env go into Airflow's database: Admin > Connections shows, edits and tests them.
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$here/connections.sh" ] || here=$here/../scripts  # in the image both sit beside this file
PY=python
. "$here/connections.sh"
if [ -n "${AIRFLOW_CONN_GREEN_API_DEFAULT:-}${GREEN_API_TOKEN:-}" ] || green_api_partner_given; then
  green_api_connections
fi
export AIRFLOW_CONN_GREEN_API_DB="$GREEN_API_DB_URL"
python "$here/import_env.py" > /dev/null
# Then the instances of the project's instances.csv or .yaml (GREEN_API_INSTANCES_FILE, relative to
# the project folder, mounted read-only here), merged with the list.
green_api_import_instances "${GREEN_API_PROJECT_DIR:-/opt/airflow/project}"

# The simple auth manager reads the UI logins from this file (shared volume, never in the image).
umask 077
python - <<'PY'
import json, os
path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump({os.environ.get("AIRFLOW_ADMIN_USER", "admin"): os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
PY
# The other services run as AIRFLOW_UID: they must read the login file and write the logs.
chown -R "${AIRFLOW_UID:-50000}:0" "$(dirname "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")" "${AIRFLOW_HOME:-/opt/airflow}/logs"
echo "airflow-init: ready"

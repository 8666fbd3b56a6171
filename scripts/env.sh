# Sourced by the Makefile's recipes: `. scripts/env.sh run|test|demo|bench`.
# Finds (or starts) PostgreSQL, then exports Airflow's settings for this checkout.
#
#   run    the health database is the one AIRFLOW_CONN_GREEN_API_DB names, else green_api
#   demo   green_api_demo, or GREEN_API_DEMO_DB (the demo never writes to your own database)
#   test   green_api_test (emptied by the tests), bench: green_api_bench
#
# Airflow's metadata lives in a database of its own, green_api_airflow (GREEN_API_AIRFLOW_DB),
# never in another Airflow install's. GREEN_API_DB_TAG suffixes the test and bench databases, so
# that two checkouts can run their suites side by side.
_mode=$1
_root=$(pwd)
_tag=${GREEN_API_DB_TAG:+_$GREEN_API_DB_TAG}
_ignore=--ignore-configured
case "$_mode" in
  test)  _db=green_api_test$_tag;  _meta=green_api_airflow_test$_tag;  _home=$_root/.airflow-test ;;
  bench) _db=green_api_bench$_tag; _meta=green_api_airflow_bench$_tag; _home=$_root/.airflow-bench ;;
  demo)  _db=${GREEN_API_DEMO_DB:-green_api_demo}; _meta=${GREEN_API_AIRFLOW_DB:-green_api_airflow}; _home=${GREEN_API_AIRFLOW_HOME:-$_root/.airflow} ;;
  run)   _db=green_api;      _meta=${GREEN_API_AIRFLOW_DB:-green_api_airflow}; _home=${GREEN_API_AIRFLOW_HOME:-$_root/.airflow}; _ignore= ;;
  *) echo "usage: . scripts/env.sh run|test|demo|bench" >&2; return 2 ;;
esac
if [ -n "$_ignore" ] && [ -n "${AIRFLOW_CONN_GREEN_API_DB:-}" ]; then
  echo "env.sh: $_mode mode uses database $_db, not the one AIRFLOW_CONN_GREEN_API_DB names" >&2
fi
# GREEN_API_RECREATE_DBS=1 (make test): the test databases anew, so that what the test processes
# copy is a fresh migration and nothing an earlier suite left.
_recreate=
if [ "${GREEN_API_RECREATE_DBS:-}" = 1 ] && [ "$_mode" = test ]; then _recreate=--recreate; fi
_out=$(.venv/bin/python scripts/ensure_postgres.py $_ignore $_recreate --health-db "$_db" --airflow-db "$_meta") || return 1
eval "$_out"
export GREEN_API_DB_URL GREEN_API_AIRFLOW_DB_URL
# The DAGs write to the health database: the configured one in run mode, else this mode's own.
if [ -n "$_ignore" ] || [ -z "${AIRFLOW_CONN_GREEN_API_DB:-}" ]; then
  export AIRFLOW_CONN_GREEN_API_DB="$GREEN_API_DB_URL"
fi
export AIRFLOW_HOME="$_home"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="$(echo "$GREEN_API_AIRFLOW_DB_URL" | sed 's#^postgresql://#postgresql+psycopg2://#')"
export AIRFLOW__CORE__DAGS_FOLDER="$_root/dags"
# The package (plugins/, installed editable) loads its plugin through its entry point: Airflow's
# plugins folder is an empty one in the Airflow home, so that no file is imported a second time
# and no .airflowignore is read there (a task reads it with the glob syntax, whatever the setting,
# and pathspec warns of a deprecation at every task start: docs/operations.md).
export AIRFLOW__CORE__PLUGINS_FOLDER="$_home/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
# The api-server logs each request at info (the tasks' calls to it: hundreds a minute); its errors
# still show.
export AIRFLOW__LOGGING__NAMESPACE_LEVELS="${AIRFLOW__LOGGING__NAMESPACE_LEVELS:-http.access=warning}"
# One secrets-masker update for a check shard's connections instead of one per connection
# (plugins/greenapi/masking.py, docs/benchmarks.md).
export AIRFLOW__LOGGING__SECRET_MASK_ADAPTER=greenapi.masking.expand_bundle
unset _mode _root _tag _ignore _db _meta _home _out _recreate

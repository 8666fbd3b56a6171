# Sourced by the Makefile's recipes: `. scripts/env.sh run|test|demo|bench`.
# Finds (or starts) PostgreSQL, then exports Airflow's settings for this checkout.
# `run` and `demo` keep their data apart from `test`, which empties its tables.
_mode=$1
_root=$(pwd)
case "$_mode" in
  test) _db=green_api_test; _meta=airflow_test; _home=$_root/.airflow-test ;;
  demo) _db=green_api_demo; _meta=airflow; _home=$_root/.airflow ;;
  run)  _db=green_api;      _meta=airflow; _home=$_root/.airflow ;;
  bench) _db=green_api_bench; _meta=airflow_bench; _home=$_root/.airflow-bench ;;
  *) echo "usage: . scripts/env.sh run|test|demo|bench" >&2; return 2 ;;
esac
_out=$(.venv/bin/python scripts/ensure_postgres.py --databases "$_db,$_meta") || return 1
eval "$_out"
_upper=$(echo "$_db" | tr a-z A-Z); _meta_upper=$(echo "$_meta" | tr a-z A-Z)
eval "GREEN_API_DB_URL=\$GREEN_API_PG_URL_$_upper"
eval "_meta_url=\$GREEN_API_PG_URL_$_meta_upper"
export GREEN_API_DB_URL
# Tests never touch a user's configured health database: they get their own.
if [ "$_mode" != run ] || [ -z "${AIRFLOW_CONN_GREEN_API_DB:-}" ]; then
  export AIRFLOW_CONN_GREEN_API_DB="$GREEN_API_DB_URL"
fi
export AIRFLOW_HOME="$_home"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="$(echo "$_meta_url" | sed 's#^postgresql://#postgresql+psycopg2://#')"
export AIRFLOW__CORE__DAGS_FOLDER="$_root/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$_root/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
unset _mode _root _db _meta _home _out _upper _meta_upper _meta_url

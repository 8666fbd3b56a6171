# Two commands for a fresh machine: `make run` and `make test`. Every target sets up what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
INSTALLED := $(VENV)/.installed
AUDIT_VENV := .venv-audit
SDK_VENV := .venv-sdk
SIM_HOST ?= 127.0.0.1
SIM_PORT ?= 8765
UI_PORT ?= 8080
TEST_WORKERS ?= 4

.PHONY: help install migrate run test test-fast test-scale lint audit browser screenshots bench bench-alert bench-check bench-check-10k bench-dashboard bench-detect bench-watch simulator lock clean remove-pgdata

help:
	@echo "make run        start Airflow with the Green API DAGs (demo mode without credentials in .env)"
	@echo "make test       the whole test suite (real PostgreSQL, simulator, Airflow runs)"
	@echo "make test-fast  the domain, hook, operator, notifier and dashboard tests (under a minute)"
	@echo "make test-scale a health-check run on a Celery worker (CeleryExecutor, Redis on 127.0.0.1:6379)"
	@echo "make lint       ruff and mypy"
	@echo "make audit      pip-audit of the pinned requirements (api.osv.dev, else the PyPA snapshot in security/)"
	@echo "make bench      the check over 1,000 instances, DAG parse times, the dashboard's latency"
	@echo "make bench-check-10k  the check at 10,000 instances (40 tasks of 250) in real runs: LocalExecutor,"
	@echo "                      then Celery with two workers (Redis on 127.0.0.1:6379); about 25 minutes"
	@echo "make bench-dashboard  dashboard latency over 30 days x 100 instances (~860,000 checks);"
	@echo "                      DASHBOARD_INSTANCES=10000 DASHBOARD_DAYS=7 DASHBOARD_RETENTION=1 for a fleet"
	@echo "make bench-alert      1,000 instances, 500 failing at once: messages, reboots, time to the alert; then"
	@echo "                      run start -> alert latency against a running \`make run\` (demo mode)"
	@echo "make migrate    apply sql/ migrations to the health database"
	@echo "make bench-detect  fault -> first alert under the real scheduler, with the state watch and without"
	@echo "make bench-watch  the state watch's cost (triggerer CPU and memory, 429s, runs) at WATCH_INSTANCES"
	@echo "make simulator  run the Green API simulator (SIM_HOST, SIM_PORT; --demo instances)"
	@echo "make screenshots  the images of README.md and docs/ (docs/images/), from the demo in headless Chromium"
	@echo "make lock       re-resolve requirements.txt from requirements.in"
	@echo "make remove-pgdata  stop the PostgreSQL cluster make started (when none answered) and delete its data"

$(INSTALLED): requirements.txt pyproject.toml simulator/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@$(VENV)/bin/uv pip install -q --python $(PY) -r requirements.txt
	@$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e . -e simulator
	@# The build leaves its metadata in plugins/, which Airflow puts on sys.path: the package would be
	@# found twice and its plugin registered twice ("Plugin 'green_api' already registered").
	@rm -rf plugins/*.egg-info simulator/*.egg-info
	@touch $@

install: $(INSTALLED)

# pip-audit in a virtualenv of its own (requirements-audit.txt): its pins never mix with Airflow's.
$(AUDIT_VENV)/.installed: requirements-audit.txt $(INSTALLED)
	@$(VENV)/bin/uv venv -q --allow-existing --python $(PY) $(AUDIT_VENV)
	@$(VENV)/bin/uv pip install -q --python $(AUDIT_VENV)/bin/python -r requirements-audit.txt
	@touch $@

# The vendor's Python SDK in a virtualenv of its own (requirements-sdk.txt), for tests/test_vendor_sdk.py.
$(SDK_VENV)/.installed: requirements-sdk.txt $(INSTALLED)
	@$(VENV)/bin/uv venv -q --allow-existing --python $(PY) $(SDK_VENV)
	@$(VENV)/bin/uv pip install -q --python $(SDK_VENV)/bin/python -r requirements-sdk.txt
	@touch $@

audit: install $(AUDIT_VENV)/.installed
	@$(PY) scripts/audit.py --pip-audit $(AUDIT_VENV)/bin/pip-audit 2> >(grep -v "encouraged to fully hash\|Consider using a tool like" >&2)

# The health database of `make run`: the one AIRFLOW_CONN_GREEN_API_DB names (in .env or the
# environment), else green_api on the server `make` finds.
migrate: install
	@set -a; env_file=$${GREEN_API_ENV_FILE:-.env}; if [ -f "$$env_file" ]; then . "$$env_file"; fi; set +a; \
	  . scripts/env.sh run && $(PY) -m greenapi.migrate --url "$$GREEN_API_DB_URL"

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/mypy

# The browser test drives Debian's Chromium; installed here when missing (root, apt-get).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium and chromium-driver for the browser test"; \
	    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
	      || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	  else echo "the browser test needs Chromium: sudo apt-get install chromium chromium-driver" >&2; exit 1; fi; }

# The test databases migrated (green_api_test, green_api_airflow_test), made anew first when called
# with 1 (make test): each pytest process works on copies of its own (tests/conftest.py).
define TEST_SETUP
GREEN_API_RECREATE_DBS=$(1) . scripts/env.sh test; \
  mkdir -p .artifacts; \
  $(VENV)/bin/airflow db migrate > .artifacts/airflow-db-migrate.log 2>&1 || { tail -20 .artifacts/airflow-db-migrate.log; exit 1; }; \
  $(PY) -m greenapi.migrate --url "$$GREEN_API_DB_URL"
endef
XDIST := -n $(TEST_WORKERS)

# pytest-xdist runs the suite in TEST_WORKERS processes, slowest tests first; the scan for leaked
# tokens runs once they are all done.
test: install lint audit browser $(SDK_VENV)/.installed
	@$(call TEST_SETUP,1); \
	  status=0; \
	  $(PY) -m pytest $(XDIST) --basetemp=.artifacts/pytest $(PYTEST_ARGS) || status=$$?; \
	  $(PY) -m pytest --token-scan -q -p no:cacheprovider || status=$$?; \
	  exit $$status

# The edit-test loop: the domain, hooks, operators, notifier and dashboard (not in a browser), in
# under a minute. Two processes: these tests keep both cores busy and do not wait on services, so
# more processes would only add their start (Airflow's import) to the total.
FAST_TESTS := tests/domain tests/hooks tests/operators tests/notifications tests/dashboard tests/test_layers.py
FAST_WORKERS ?= 2
test-fast: install
	@$(call TEST_SETUP,0); \
	  $(PY) -m pytest -n $(FAST_WORKERS) -m "not browser" -q $(FAST_TESTS) $(PYTEST_ARGS)

bench: install bench-dashboard bench-check
	@. scripts/env.sh bench; echo; echo "== DAG parse times"; $(PY) scripts/bench_parse.py

# The check over 1,000 simulated instances: in one process, then in real runs of the DAG.
bench-check: install
	@. scripts/env.sh bench; \
	  $(PY) -m greenapi.migrate --url "$$GREEN_API_DB_URL"; \
	  echo "== the check over 1,000 simulated instances, in one process"; $(PY) scripts/bench_check.py; \
	  echo; echo "== the check over 1,000 simulated instances, in real runs"; $(PY) scripts/bench_check_run.py

# The check at 10,000 simulated instances (40 check tasks of 250, 2 % hanging until the timeout) in
# real runs: under the LocalExecutor, then under Celery with two workers (Redis on 127.0.0.1:6379).
bench-check-10k: install
	@. scripts/env.sh bench; \
	  $(PY) -m greenapi.migrate --url "$$GREEN_API_DB_URL"; \
	  echo "== the check over 10,000 simulated instances, in real runs: LocalExecutor"; \
	  $(PY) scripts/bench_check_run.py --instances 10000 --per-task 250 --rounds 2 --executor local; \
	  echo; echo "== the same under Celery, two workers"; \
	  $(PY) scripts/bench_check_run.py --instances 10000 --per-task 250 --rounds 2 --executor celery --celery-workers 2

# A fleet failing together in real runs (services of its own), then the run start -> alert latency
# against a running `make run` (demo mode), when one is up.
bench-alert: install
	@. scripts/env.sh bench; \
	  $(PY) -m greenapi.migrate --url "$$GREEN_API_DB_URL"; \
	  echo "== a fleet failing together: 1,000 instances, 500 stop answering at once"; $(PY) scripts/bench_outage.py; \
	  echo; echo "== run start -> alert, against a running make run (demo mode)"; \
	  $(PY) scripts/bench_alert_latency.py || echo "(not measured: start make run in another terminal first)"

# Fault -> first alert under the real scheduler (`make run` with 100 simulated instances): 20 trials
# with the state watch on, then with the 5-minute schedule alone (DETECT_MODES; about 15 and 100 minutes).
DETECT_MODES ?= watch schedule
DETECT_TRIALS ?= 20
bench-detect: install
	@. scripts/env.sh bench; \
	  for mode in $(DETECT_MODES); do $(PY) scripts/bench_detect.py --mode $$mode --trials $(DETECT_TRIALS) || exit 1; done

# What the state watch costs under the real scheduler: the triggerer's CPU and memory, HTTP 429s and the
# runs it starts while nothing changes, with WATCH_INSTANCES watched for WATCH_MINUTES.
WATCH_INSTANCES ?= 1000
WATCH_MINUTES ?= 60
bench-watch: install
	@. scripts/env.sh bench; $(PY) scripts/bench_watch.py --instances $(WATCH_INSTANCES) --minutes $(WATCH_MINUTES)

# The dashboard's latency on generated history (DASHBOARD_INSTANCES x DASHBOARD_DAYS; at 10,000 x 7
# the history takes about 15 minutes to make), disk per day and the retention of a day
# (DASHBOARD_RETENTION=1: the oldest day is dropped), then what logging a run of 10,000 costs.
DASHBOARD_INSTANCES ?= 100
DASHBOARD_DAYS ?= 30
bench-dashboard: install
	@. scripts/env.sh bench; \
	  mkdir -p .artifacts; \
	  $(VENV)/bin/airflow db migrate > .artifacts/airflow-db-migrate-bench.log 2>&1 || { tail -20 .artifacts/airflow-db-migrate-bench.log; exit 1; }; \
	  $(PY) -m greenapi.migrate --url "$$GREEN_API_DB_URL"; \
	  $(PY) scripts/bench_dashboard.py --instances $(DASHBOARD_INSTANCES) --days $(DASHBOARD_DAYS) \
	    $(if $(DASHBOARD_RETENTION),--retention) $(if $(DASHBOARD_REUSE),--reuse-history); \
	  echo; echo "== logging a run of 10,000 instances: the roll-up triggers' cost"; $(PY) scripts/bench_log_write.py

# Scale-out proven for real: CeleryExecutor, Redis, a Celery worker (not part of `make test`).
test-scale: install
	@. scripts/env.sh test; \
	  mkdir -p .artifacts; \
	  $(VENV)/bin/airflow db migrate > .artifacts/airflow-db-migrate.log 2>&1 || { tail -20 .artifacts/airflow-db-migrate.log; exit 1; }; \
	  $(PY) -m greenapi.migrate --url "$$GREEN_API_DB_URL"; \
	  $(PY) -m pytest -m scale tests/scale $(PYTEST_ARGS)

simulator: install
	@$(PY) -m greenapi_simulator --host $(SIM_HOST) --port $(SIM_PORT) --demo

run: install
	@bash scripts/run.sh

# The demo beside any running `make run` (own ports and databases), photographed by Chromium.
# The alert's picture needs an emoji font: Debian's fonts-noto-color-emoji, installed here when
# missing (root, apt-get); elsewhere the script says so and leaves that picture as it is.
screenshots: install browser
	@fc-list 2>/dev/null | grep -qi "emoji" || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's fonts-noto-color-emoji for the alert's picture"; \
	    apt-get install -y -q fonts-noto-color-emoji >/dev/null 2>&1 \
	      || { apt-get update -q >/dev/null && apt-get install -y -q fonts-noto-color-emoji >/dev/null; } || true; \
	  fi; }
	@$(PY) scripts/screenshots.py

lock:
	@test -x $(VENV)/bin/uv || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q uv==$(UV_VERSION); }
	@$(VENV)/bin/uv pip compile requirements.in --python-version 3.11 -o requirements.txt
	@$(VENV)/bin/uv pip compile requirements-audit.in --python-version 3.11 -o requirements-audit.txt
	@$(VENV)/bin/uv pip compile requirements-sdk.in --python-version 3.11 -o requirements-sdk.txt

# The private PostgreSQL cluster that make started (when no server answered): stopped, its data deleted.
remove-pgdata: install
	@$(PY) scripts/ensure_postgres.py --remove

clean:
	@$(PY) scripts/ensure_postgres.py --remove 2>/dev/null || true
	@rm -rf $(VENV) $(AUDIT_VENV) $(SDK_VENV) .airflow .airflow-test .airflow-bench .pgdata .artifacts .pytest_cache

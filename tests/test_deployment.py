"""The compose deployment, checked without a Docker engine: structure, services, profiles, image,
health checks, start-up order, secrets only from .env; and the scripts it runs, for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-retention", "airflow-worker"}
LONG_RUNNING = AIRFLOW_SERVICES - {"airflow-init"}


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def test_services_and_profiles():
    assert set(SERVICES) == {"postgres", "redis"} | AIRFLOW_SERVICES
    profiled = {name: s.get("profiles") for name, s in SERVICES.items() if s.get("profiles")}
    assert profiled == {"redis": ["celery"], "airflow-worker": ["celery"]}
    commands = {name: SERVICES[name].get("command") for name in LONG_RUNNING}
    assert commands == {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                        "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
                        "airflow-retention": "python -m greenapi.retention --every 24",
                        "airflow-worker": "celery worker"}


def test_the_file_follows_the_compose_specification():
    # tests/data/compose-spec.json: schema/compose-spec.json of github.com/compose-spec/compose-spec
    # (Apache-2.0), commit 170098ba07d9. `docker compose config` checks the same where Docker runs.
    import jsonschema

    schema = json.loads((ROOT / "tests/data/compose-spec.json").read_text())
    jsonschema.validate(COMPOSE, schema)
    broken = {**COMPOSE, "services": {**SERVICES, "airflow-retention": {**SERVICES["airflow-retention"], "restart": 3}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_executor_is_local_by_default_and_celery_on_demand():
    env = SERVICES["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env_example()["AIRFLOW_EXECUTOR"] == "LocalExecutor"
    assert "CeleryExecutor needs Redis" in (ROOT / "docker/init.sh").read_text()


def test_health_checks_and_start_up_order():
    for name in ("postgres", "redis", *LONG_RUNNING - {"airflow-retention"}):  # a loop, restarted if it exits
        check = SERVICES[name]["healthcheck"]
        assert check["test"] and check["interval"] and check["retries"], name
    for name in AIRFLOW_SERVICES:
        depends = SERVICES[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"] == {"condition": "service_healthy", "required": False}, name
    for name in LONG_RUNNING:
        assert SERVICES[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert SERVICES["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_image_is_built_from_airflow_3_3_with_the_pinned_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned)}-python3\.11$", dockerfile, re.M)
    assert "pip install --no-cache-dir -r /opt/airflow/requirements.txt" in dockerfile
    assert "pip install --no-cache-dir --no-deps -e /opt/airflow" in dockerfile
    for source in re.findall(r"^COPY --chown=\S+ (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    for name in AIRFLOW_SERVICES:
        assert SERVICES[name]["build"] == "." and SERVICES[name]["image"].startswith("${GREEN_API_IMAGE:-")
        mounts = SERVICES[name]["volumes"]
        assert {"./dags:/opt/airflow/dags", "./plugins:/opt/airflow/plugins", "./sql:/opt/airflow/sql"} <= set(mounts)


def test_secrets_come_only_from_env():
    text = (ROOT / "docker-compose.yaml").read_text()
    for name, service in SERVICES.items():
        assert service.get("env_file", [{"path": ".env", "required": True}]) == [{"path": ".env", "required": True}]
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"(PASSWORD|SECRET|SECRET_KEY|FERNET_KEY)$", key) or re.search(r"://[^:]+:[^@]+@", str(value)):
                assert "${" in str(value), f"{name}.{key} holds a literal secret"
    for secret in ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD"):
        assert f"${{{secret}:?" in text  # compose refuses to start without it
        assert env_example()[secret] == ""  # documented, never filled in
    referenced = set(re.findall(r"\$\{([A-Z_]+)", text))
    documented = set(env_example()) | set(re.findall(r"^# ?([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert referenced <= documented | {"HOSTNAME"}, referenced - documented
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_ui_needs_a_login():
    env = SERVICES["airflow-apiserver"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == "/opt/airflow/auth/passwords.json"


@pytest.mark.parametrize(("password", "jwt", "named"), [
    ("", "j" * 40, "AIRFLOW_ADMIN_PASSWORD is not set"),
    ("airflow", "j" * 40, "AIRFLOW_ADMIN_PASSWORD is a default password"),
    ("short-pw", "j" * 40, "AIRFLOW_ADMIN_PASSWORD must have at least 12 characters"),
    ("a-long-enough-password", "short", "AIRFLOW_JWT_SECRET must have at least 32 characters"),
])
def test_init_refuses_weak_secrets_before_touching_anything(tmp_path, password, jwt, named):
    env = {"PATH": os.environ["PATH"], "AIRFLOW_ADMIN_PASSWORD": password, "AIRFLOW__API_AUTH__JWT_SECRET": jwt,
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    done = subprocess.run(["bash", str(ROOT / "docker/init.sh")], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=30)
    assert done.returncode == 1 and named in done.stderr
    assert list(tmp_path.iterdir()) == []


def _connections(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = f'PY="{sys.executable}"; . "{ROOT}/scripts/connections.sh"; green_api_connections; ' \
             'echo "$AIRFLOW_CONN_GREEN_API_DEFAULT"; echo "${AIRFLOW_CONN_GREEN_API_ALERTS:-}"'
    return subprocess.run(["bash", "-euc", script], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=30)


def test_env_settings_become_airflow_connections():
    done = _connections({"GREEN_API_URL": "https://7105.api.greenapi.com", "GREEN_API_INSTANCE_ID": "7105000001",
                         "GREEN_API_TOKEN": 'tok"en', "GREEN_API_ALERTS_INSTANCE_ID": "7105000002",
                         "GREEN_API_ALERTS_TOKEN": "other"})
    default, alerts = (json.loads(line) for line in done.stdout.splitlines())
    assert default == {"conn_type": "greenapi", "host": "https://7105.api.greenapi.com", "login": "7105000001",
                       "password": 'tok"en'}
    assert alerts["login"] == "7105000002" and alerts["host"] == default["host"]


def test_a_partner_account_in_env_becomes_a_partner_connection_and_the_instance_list():
    script = f'PY="{sys.executable}"; . "{ROOT}/scripts/connections.sh"; green_api_connections; ' \
             'echo "$AIRFLOW_CONN_GREEN_API_PARTNER"; echo "$AIRFLOW_VAR_GREEN_API_INSTANCES"; ' \
             'echo "${AIRFLOW_CONN_GREEN_API_DEFAULT:-none}"'
    alone = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, timeout=30,
                           env={"PATH": os.environ["PATH"], "GREEN_API_PARTNER_TOKEN": "TOKEN-SECRET-partner0000000",
                                "GREEN_API_PARTNER_INSTANCES_URL": "https://7105.api.greenapi.com"})  # fmt: skip
    partner, instances, default = alone.stdout.splitlines()
    assert json.loads(partner) == {"conn_type": "greenapipartner", "host": "https://api.green-api.com",
                                   "password": "TOKEN-SECRET-partner0000000",
                                   "extra": {"api_url": "https://7105.api.greenapi.com"}}  # fmt: skip
    assert json.loads(instances) == [{"partner": "green_api_partner"}] and default == "none"
    both = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ["PATH"], "GREEN_API_PARTNER_TOKEN": "TOKEN-SECRET-partner0000000",
                               "GREEN_API_URL": "https://7105.api.greenapi.com", "GREEN_API_INSTANCE_ID": "7105000001",
                               "GREEN_API_TOKEN": "TOKEN-SECRET-instance000000"})  # fmt: skip
    _, instances, default = both.stdout.splitlines()
    assert json.loads(instances) == ["green_api_default", {"partner": "green_api_partner"}]
    assert json.loads(default)["login"] == "7105000001"


def test_missing_token_is_named():
    done = _connections({"GREEN_API_URL": "https://7105.api.greenapi.com", "GREEN_API_INSTANCE_ID": "7105000001"})
    assert done.returncode != 0 and "GREEN_API_TOKEN is not set in .env" in done.stderr


def _compose_works() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0


def test_docker_compose_config_accepts_the_file_when_compose_is_installed(tmp_path):
    """`docker compose config` where the compose plugin exists; this machine's Docker has none, so
    then the file is only checked by the YAML tests above (the test says which ran)."""
    if not _compose_works():
        print("docker compose is not installed here: checked with the YAML parser only")
        return
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv", ".pgdata", ".airflow*", ".artifacts"))
    values: dict[str, Any] = {**env_example(), "POSTGRES_PASSWORD": "p" * 16, "AIRFLOW_ADMIN_PASSWORD": "a" * 16,
                              "AIRFLOW_FERNET_KEY": "f" * 44, "AIRFLOW_JWT_SECRET": "j" * 40}
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    for profile in ([], ["--profile", "celery"]):
        done = subprocess.run(["docker", "compose", *profile, "config", "--format", "json"], cwd=project,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        rendered = json.loads(done.stdout)["services"]
        assert ("airflow-worker" in rendered) == bool(profile)


def test_entrypoint_keeps_connections_in_airflows_database_only():
    env = {"PATH": os.environ["PATH"], "AIRFLOW_ENTRYPOINT": "env", "AIRFLOW_CONN_GREEN_API_DEFAULT": "{}",
           "AIRFLOW_VAR_GREEN_API_INSTANCES": "[]", "GREEN_API_TOKEN": "TOKEN-SECRET-0000000000000000",
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    service = subprocess.run(["bash", str(ROOT / "docker/entrypoint.sh")], env=env, capture_output=True, text=True)
    names = {line.split("=", 1)[0] for line in service.stdout.splitlines()}
    assert service.returncode == 0 and "AIRFLOW__CORE__EXECUTOR" in names
    assert not names & {"AIRFLOW_CONN_GREEN_API_DEFAULT", "AIRFLOW_VAR_GREEN_API_INSTANCES", "GREEN_API_TOKEN"}
    init = subprocess.run(["bash", str(ROOT / "docker/entrypoint.sh")], env={**env, "GREEN_API_ROLE": "init"},
                          capture_output=True, text=True)  # fmt: skip
    assert {"AIRFLOW_CONN_GREEN_API_DEFAULT", "AIRFLOW_VAR_GREEN_API_INSTANCES"} <= {
        line.split("=", 1)[0] for line in init.stdout.splitlines()}


def test_init_puts_the_env_settings_into_airflows_database_and_migrates_the_health_database(tmp_path):
    from cryptography.fernet import Fernet

    from tests.airflow_services import fresh_metadata_db
    from tests.conftest import require_env, tagged

    metadata_url = fresh_metadata_db("airflow_init_test")
    server = metadata_url.rsplit("/", 1)[0]
    health = tagged("green_api_init_test")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{health}" WITH (FORCE)')
    (tmp_path / "airflow" / "logs").mkdir(parents=True)
    token = "TOKEN-SECRET-" + os.urandom(8).hex()
    # The project folder (mounted read-only in airflow-init) with its instances.yaml, holding tokens as
    # a user's does: outside the folders the suite's leak scan reads.
    project = Path(tempfile.mkdtemp(prefix="green-api-project-"))
    file_tokens = ["TOKEN-SECRET-" + os.urandom(8).hex() for _ in range(2)]
    (project / "instances.yaml").write_text(
        f"- {{id: 7105000101, token: {file_tokens[0]}, api_url: 'https://7105.api.greenapi.com', name: Shop 1}}\n"
        f"- {{id: 7105000102, token: {file_tokens[1]}, api_url: 'https://7105.api.greenapi.com', conn_id: shop_two}}\n")
    fernet_key = Fernet.generate_key().decode()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url.replace("postgresql://", "postgresql+psycopg2://"),
        "AIRFLOW__CORE__FERNET_KEY": fernet_key,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "j" * 40,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "auth" / "passwords.json"),
        "AIRFLOW_ADMIN_PASSWORD": "a-long-enough-password",
        "AIRFLOW_UID": str(os.getuid()),
        "GREEN_API_ROLE": "init",
        "GREEN_API_DB_URL": f"{server}/{health}",
        "GREEN_API_URL": "https://7105.api.greenapi.com", "GREEN_API_INSTANCE_ID": "7105000001", "GREEN_API_TOKEN": token,
        "AIRFLOW_VAR_GREEN_API_INSTANCES": '["green_api_default"]',
        "GREEN_API_PROJECT_DIR": str(project),
    }
    require_env("GREEN_API_DB_URL")
    try:
        done = subprocess.run(["bash", str(ROOT / "docker/init.sh")], env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    finally:
        shutil.rmtree(project, ignore_errors=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "airflow-init: ready" in done.stdout and token not in done.stdout + done.stderr
    assert f"{project}/instances.yaml: 2 instance(s): 2 added" in done.stdout
    assert not [t for t in file_tokens if t in done.stdout + done.stderr]
    with psycopg.connect(metadata_url) as conn:
        conns = conn.execute("SELECT conn_id, conn_type, login, is_encrypted, password FROM connection ORDER BY 1").fetchall()
        variables = conn.execute("SELECT key, val FROM variable").fetchall()
    from greenapi.hooks.green_api import GreenApiHook

    assert [c[:4] for c in conns] == [("green_api_7105000101", GreenApiHook.conn_type, "7105000101", True),
                                      ("green_api_db", "postgres", "postgres", False),
                                      ("green_api_default", "greenapi", "7105000001", True),
                                      ("shop_two", GreenApiHook.conn_type, "7105000102", True)]  # fmt: skip
    assert not [c for c in conns for t in [token, *file_tokens] if c[4] and t in c[4]]  # encrypted with the Fernet key
    # The .env's list, then the file's instances.
    assert [key for key, _ in variables] == ["green_api_instances"]
    assert json.loads(Fernet(fernet_key.encode()).decrypt(variables[0][1].encode())) == [
        "green_api_default", "green_api_7105000101", "shop_two"]  # fmt: skip
    with psycopg.connect(f"{server}/{health}") as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 5
    assert json.loads((tmp_path / "auth" / "passwords.json").read_text()) == {"admin": "a-long-enough-password"}

"""The provider on its own, as an Airflow user installs it: its modules only (no dashboard, no
tasks/, no health database store), in a virtualenv of its own with Airflow and no PostgreSQL
driver, Airflow's metadata in SQLite. The three example DAGs run there against the simulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "plugins" / "greenapi"
PROVIDER_MODULES = ("__init__.py", "provider.py", "masking.py", "domain", "hooks", "operators", "sensors", "triggers",
                    "notifications")  # fmt: skip
# What the provider needs beyond itself, at the versions of requirements.txt.
REQUIREMENTS = ("apache-airflow-core", "apache-airflow-task-sdk", "apache-airflow-providers-standard", "requests",
                "httpx", "jinja2", "pydantic", "pendulum", "tenacity")  # fmt: skip
PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "airflow-provider-green-api"
version = "0.0.0"

[project.entry-points.apache_airflow_provider]
provider_info = "greenapi.provider:get_provider_info"

[tool.setuptools.packages.find]
include = ["greenapi*"]
"""
# Run by the virtualenv's Python: each example DAG with dag.test(), and what the install holds.
RUN = """
import importlib.util, json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
out = {"import_errors": {k: v[-300:] for k, v in bag.import_errors.items()}, "runs": {},
       "absent": [m for m in ("greenapi.dashboard", "greenapi.tasks", "greenapi.store", "greenapi.plugin", "psycopg",
                              "psycopg2", "airflow.providers.postgres") if importlib.util.find_spec(m) is None]}
for dag_id in sys.argv[2:]:
    dag = bag.get_dag(dag_id)
    if dag_id == "example_green_api_reboot":
        dag.get_task("reboot_and_wait").poke_interval = 1.0  # instead of 15 s, to keep the test short
    run = dag.test(run_conf={"chat_id": "33600000042@c.us"} if dag_id == "example_green_api_sensor" else None)
    out["runs"][dag_id] = {"state": str(run.state), "run_id": run.run_id,
                           "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()}}
print("RESULT " + json.dumps(out))
"""


def uv() -> str:
    return str(Path(sys.executable).with_name("uv"))


@pytest.fixture(scope="module")
def provider_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with Airflow and the provider's modules, built from this checkout."""
    root = tmp_path_factory.mktemp("standalone")
    package = root / "pkg" / "greenapi"
    package.mkdir(parents=True)
    for name in PROVIDER_MODULES:
        source = PACKAGE / name
        if source.is_dir():
            shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, package / name)
    (root / "pkg" / "pyproject.toml").write_text(PYPROJECT)
    venv = root / "venv"
    python = str(venv / "bin" / "python")
    for command in ([uv(), "venv", "-q", "--python", sys.executable, str(venv)],
                    [uv(), "pip", "install", "-q", "--python", python, "-c", str(ROOT / "requirements.txt"), *REQUIREMENTS],
                    [uv(), "pip", "install", "-q", "--python", python, "--no-deps", str(root / "pkg")]):  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    return venv


def run_examples(venv: Path, tmp_path: Path, sim: Any, conn: str, *dag_ids: str) -> dict[str, Any]:
    dags = tmp_path / "dags"
    shutil.copytree(ROOT / "examples", dags, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GREEN_API_"))}
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_GREEN_API_DEFAULT": conn,
    }
    migrated = subprocess.run([str(venv / "bin" / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    done = subprocess.run([str(venv / "bin" / "python"), "-c", RUN, str(dags), *dag_ids], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert sim.url and "TOKEN-SECRET" not in done.stdout + done.stderr
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.slow
def test_the_provider_alone_runs_the_three_examples_against_the_simulator(provider_venv, tmp_path, make_instance, sim):
    inst = make_instance("green_api_default", starting_seconds=1)
    conn = os.environ["AIRFLOW_CONN_GREEN_API_DEFAULT"]  # as make_instance made it: the simulator, the token
    out = run_examples(provider_venv, tmp_path, sim, conn, "example_green_api_notifier", "example_green_api_reboot",
                       "example_green_api_sensor")  # fmt: skip

    # Installed without the project: no dashboard, no DAGs' glue, no store, no PostgreSQL driver.
    assert out["absent"] == ["greenapi.dashboard", "greenapi.tasks", "greenapi.store", "greenapi.plugin", "psycopg",
                             "psycopg2", "airflow.providers.postgres"]  # fmt: skip
    assert out["import_errors"] == {}
    runs = out["runs"]
    # The notifier's example fails on purpose; its WhatsApp message arrives.
    assert runs["example_green_api_notifier"]["tasks"] == {"load_report": "failed"}
    notice = f"❌ example_green_api_notifier: task load_report failed (run {runs['example_green_api_notifier']['run_id']}): " \
             "the report source did not answer"  # fmt: skip
    # The reboot's example reboots and waits (its trigger, run by dag.test) until authorized.
    assert (runs["example_green_api_reboot"]["state"], runs["example_green_api_reboot"]["tasks"]) == (
        "success", {"reboot_and_wait": "success", "report": "success"})  # fmt: skip
    assert [r["isReboot"] for r in sim.reboots(inst.instance_id)] == [True]
    # The sensor's example sends its greeting once the instance is authorized.
    assert runs["example_green_api_sensor"]["tasks"] == {"wait_until_authorized": "success", "compose": "success",
                                                         "send_greeting": "success"}  # fmt: skip
    messages = [(m["chatId"], m["message"]) for m in sim.messages(inst.instance_id)]
    assert messages[0] == ("10000000000@c.us", notice)
    assert messages[1][0] == "33600000042@c.us"
    assert messages[1][1].startswith(f"Good morning: instance {inst.instance_id} is authorized (seen ")

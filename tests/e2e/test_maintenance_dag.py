"""End-to-end runs of green_api_maintenance: exactly the old rows, runs and logs go."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pendulum
import psycopg
import pytest

from tests.conftest import require_env
from tests.e2e.conftest import run_dag

pytestmark = pytest.mark.e2e


def add_log(db, days_ago: float, now: datetime) -> int:
    row = db.execute(
        "INSERT INTO green_api_health_logs (checked_at, status, instance_id) VALUES (%s, 'healthy', '1') RETURNING id",
        (now - timedelta(days=days_ago),),
    ).fetchone()
    return int(row[0])


def runs_of(dag_id: str) -> set[str]:
    with psycopg.connect(require_env("GREEN_API_AIRFLOW_DB_URL")) as conn:
        return {r[0] for r in conn.execute("SELECT run_id FROM dag_run WHERE dag_id = %s", (dag_id,))}


def xcoms_of(run_id: str) -> int:
    with psycopg.connect(require_env("GREEN_API_AIRFLOW_DB_URL")) as conn:
        return int(conn.execute("SELECT count(*) FROM xcom WHERE run_id = %s", (run_id,)).fetchone()[0])


def report_of(run_id: str) -> dict:
    with psycopg.connect(require_env("GREEN_API_AIRFLOW_DB_URL")) as conn:
        row = conn.execute(
            "SELECT value FROM xcom WHERE dag_id = 'green_api_maintenance' AND run_id = %s AND task_id = 'report'",
            (run_id,),
        ).fetchone()
    assert row is not None
    return row[0] if isinstance(row[0], dict) else json.loads(row[0])


def test_maintenance_drops_the_old_days_whole_and_makes_the_week_ahead(maintenance_dag, db, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    now = datetime.now(UTC)
    db.execute("SELECT green_api_health_log_partitions(%s::date, %s::date)",
               ((now - timedelta(days=46)).date(), (now - timedelta(days=44)).date()))  # a day of its own at 45
    ages = (400, 45, 31, 30.01, 30.001, 29.99, 10, 0)
    rows = {add_log(db, days, now): now - timedelta(days=days) for days in ages}
    outcome = run_dag(maintenance_dag)
    assert outcome.state == "success", outcome.tasks
    # Retention drops whole UTC days: a row goes once the day it was checked on ended before the cutoff.
    run_after = now  # the run's, a few seconds later: the same UTC day but within seconds of midnight
    keep_from = (run_after - timedelta(days=30)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    remaining = sorted(r[0] for r in db.execute("SELECT id FROM green_api_health_logs"))
    assert remaining == sorted(i for i, at in rows.items() if at >= keep_from)
    report = report_of(outcome.run_id)["health_logs"]
    assert report["rows"] == len(rows) - len(remaining) >= 3  # 400, 45 and 31 days old at least
    assert report["days_dropped"] == 3  # the days around 45 days back
    today = run_after.astimezone(UTC).date()
    ahead = {r[0] for r in db.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'green_api_health_logs'::regclass")}
    assert {f"green_api_health_logs_{today + timedelta(days=d):%Y%m%d}" for d in range(-1, 8)} <= ahead


def test_maintenance_purges_old_task_logs_of_its_dags_only(maintenance_dag, make_instance, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    long_ago = pendulum.now("UTC").subtract(days=45).timestamp()
    # Task log folders as the executor writes them: one old, one recent, one of another DAG.
    folders = {
        "old": tmp_path / "dag_id=green_api_health_check" / "run_id=old" / "task_id=check_instances",
        "recent": tmp_path / "dag_id=green_api_health_check" / "run_id=recent" / "task_id=check_instances",
        "other": tmp_path / "dag_id=someone_elses_dag" / "run_id=x" / "task_id=t",
    }
    for name, folder in folders.items():
        folder.mkdir(parents=True)
        log = folder / "attempt=1.log"
        log.write_text("log line\n")
        if name != "recent":
            os.utime(log, (long_ago, long_ago))
    outcome = run_dag(maintenance_dag)
    assert outcome.state == "success", outcome.tasks
    assert not folders["old"].exists()
    assert folders["recent"].exists() and folders["other"].exists()
    assert report_of(outcome.run_id)["task_logs"] == {"run_folders": 1, "files": 1, "bytes": len("log line\n")}


def retention(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "greenapi.retention", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def test_retention_job_removes_old_runs_and_xcoms_of_its_dags_only(health_dag, make_instance, add_contact, db):
    add_contact("Support", "33600000001@c.us", 1)
    make_instance()
    long_ago = pendulum.now("UTC").subtract(days=45)
    old_run = run_dag(health_dag, logical_date=long_ago, run_after=long_ago).run_id
    recent_run = run_dag(health_dag).run_id
    assert xcoms_of(old_run) > 0
    done = retention("--once", AIRFLOW_VAR_GREEN_API_SETTINGS=json.dumps({"airflow_retention_days": 30}))
    assert done.returncode == 0, done.stdout + done.stderr
    runs = runs_of("green_api_health_check")
    assert old_run not in runs and recent_run in runs
    assert xcoms_of(old_run) == 0 and xcoms_of(recent_run) > 0
    assert re.search(r"retention: removed [1-9]\d* run\(s\) of this package's DAGs from before \S+ \S+ UTC",
                     done.stdout), done.stdout  # fmt: skip


def test_retention_job_names_a_bad_setting_and_fails(monkeypatch):
    done = retention("--once", AIRFLOW_VAR_GREEN_API_SETTINGS=json.dumps({"airflow_retention_days": 0}))
    assert done.returncode == 1
    assert "retention: error: green_api_settings.airflow_retention_days must be an integer from 1" in done.stdout

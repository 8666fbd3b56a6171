"""The failure notice: one or two sentences support can act on, in French or English."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from greenapi.domain.notices import FailureFacts, error_line, render_failure_notice

AT = datetime(2026, 11, 30, 16, 3, 2, tzinfo=UTC)
URL = "http://localhost:8080/dags/green_api_maintenance/runs/scheduled__2026-11-30/tasks/purge_health_logs"


def facts(**changes) -> FailureFacts:
    values = {"dag_id": "green_api_maintenance", "task_id": "purge_health_logs", "run_id": "scheduled__2026-11-30",
              "try_number": 2, "at": AT, "error": "health database unreachable (connection green_api_db): refused",
              "log_url": URL} | changes  # fmt: skip
    return FailureFacts(**values)


def test_french_notice_names_the_job_the_task_the_error_and_the_log():
    assert render_failure_notice(facts(), "Europe/Paris") == (
        "⚠️ *MONITORING GREEN API EN ÉCHEC*\n\n"
        "La maintenance (rétention des logs) a échoué le 30/11/2026 17:03:02 CET (DAG green_api_maintenance, "
        "tâche purge_health_logs, essai 2) : health database unreachable (connection green_api_db): refused.\n\n"
        f"🔎 Log de la tâche : {URL}"
    )


def test_english_notice():
    text = render_failure_notice(facts(dag_id="green_api_health_check", task_id="report"), "UTC", "en")
    assert text.startswith("⚠️ *GREEN API MONITORING FAILED*\n\nThe instances' health check failed on 30/11/2026 "
                           "16:03:02 UTC (DAG green_api_health_check, task report, try 2): health database")  # fmt: skip


@pytest.mark.parametrize("dag_id", ["green_api_maintenance", "green_api_scheduled_reboot", "green_api_reboot", "etl"])
def test_only_the_health_check_is_called_the_health_check(dag_id):
    for language in ("fr", "en"):
        text = render_failure_notice(facts(dag_id=dag_id), "UTC", language)
        assert "check de santé" not in text and "health check" not in text


def test_a_dag_of_your_own_is_named():
    assert "Le DAG etl a échoué le " in render_failure_notice(facts(dag_id="etl"), "UTC")


def test_a_traceback_is_reduced_to_its_message():
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n    boom()\nValueError: boom'
    assert error_line(trace) == "ValueError: boom"
    assert error_line("Run failed: a; b\nmore details") == "Run failed: a; b"
    assert error_line("x" * 1000) == "x" * 299 + "…"
    assert error_line(None) is None and error_line("  \n ") is None


def test_without_a_log_address_it_says_where_the_log_is_in_the_ui():
    text = render_failure_notice(facts(log_url=None, error=None), "UTC", "en")
    assert "task purge_health_logs, try 2): no error given." in text
    assert text.endswith("🔎 Task log: Airflow > DAG green_api_maintenance > run scheduled__2026-11-30 > purge_health_logs")

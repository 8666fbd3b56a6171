"""The notice sent to support when a run of the monitoring itself fails (GreenApiNotifier).

One or two sentences a support person can act on: which job and task failed, what went wrong
(one line, never a traceback), and where to look (the task's log in the Airflow UI).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from greenapi.domain.messages import format_time

MAX_ERROR_CHARS = 300

# What each of this package's DAGs is, as support knows it.
DAG_LABELS = {
    "fr": {
        "green_api_health_check": "Le check de santé des instances",
        "green_api_scheduled_reboot": "Le reboot quotidien des instances",
        "green_api_reboot": "Le reboot manuel",
        "green_api_maintenance": "La maintenance (rétention des logs)",
    },
    "en": {
        "green_api_health_check": "The instances' health check",
        "green_api_scheduled_reboot": "The daily reboot of the instances",
        "green_api_reboot": "The manual reboot",
        "green_api_maintenance": "The maintenance (log retention)",
    },
}

_TEXT = {
    "fr": {
        "title": "⚠️ *MONITORING GREEN API EN ÉCHEC*",
        "other_dag": "Le DAG {dag_id}",
        "failed": "{label} a échoué le {time} (DAG {dag_id}, tâche {task_id}, essai {try_number}) : {error}",
        "no_error": "erreur non précisée",
        "look": "Log de la tâche : {url}",
        "look_nowhere": "Log de la tâche : Airflow > DAG {dag_id} > run {run_id} > {task_id}",
    },
    "en": {
        "title": "⚠️ *GREEN API MONITORING FAILED*",
        "other_dag": "DAG {dag_id}",
        "failed": "{label} failed on {time} (DAG {dag_id}, task {task_id}, try {try_number}): {error}",
        "no_error": "no error given",
        "look": "Task log: {url}",
        "look_nowhere": "Task log: Airflow > DAG {dag_id} > run {run_id} > {task_id}",
    },
}


@dataclass(frozen=True)
class FailureFacts:
    """What a failure notice says about one failed task."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    at: datetime
    error: str | None = None  # the exception's text, any length
    log_url: str | None = None


def error_line(text: str | None) -> str | None:
    """The first meaningful line of an error, without traceback, at most MAX_ERROR_CHARS."""
    if not text:
        return None
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return None
    # A traceback says what happened on its last line ("ValueError: ..."); any other text on its first.
    line = (lines[-1] if lines[0].startswith("Traceback") else lines[0]).removesuffix(".")
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1].rstrip() + "…"


def render_failure_notice(facts: FailureFacts, timezone: str, language: str = "fr") -> str:
    """The WhatsApp text of a failure notice."""
    words = _TEXT[language]
    label = DAG_LABELS[language].get(facts.dag_id) or words["other_dag"].format(dag_id=facts.dag_id)
    failed = words["failed"].format(
        label=label, time=format_time(facts.at, timezone), dag_id=facts.dag_id, task_id=facts.task_id,
        try_number=facts.try_number, error=error_line(facts.error) or words["no_error"],
    )  # fmt: skip
    if facts.log_url:
        look = words["look"].format(url=facts.log_url)
    else:
        look = words["look_nowhere"].format(dag_id=facts.dag_id, run_id=facts.run_id, task_id=facts.task_id)
    return f"{words['title']}\n\n{failed}.\n\n🔎 {look}"

"""Daily retention: old health-log rows and old task logs of this package's DAGs."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from greenapi.tasks.notices import support_notifier

DOC = """
### Green API maintenance

Every day:
- makes the daily partitions of `green_api_health_logs` for the week ahead, and drops the days
  older than `health_log_retention_days` (default 30) whole: a day goes once its last check is past
  retention, in well under a second whatever its size, leaving no bloat;
- deletes the task log files of this package's DAGs older than `airflow_retention_days`
  (default 30).

Both periods are keys of Variable `green_api_settings`. The `report` task returns what was removed.

Airflow's own records of these DAGs (runs, task instances, XComs: 288 runs a day for the health
check) are not deleted here: an Airflow 3 task has no access to Airflow's database. The retention
job `python -m greenapi.retention` does it beside the scheduler with `airflow db clean`
(`make run` starts it; in `docker compose` it is the service `airflow-retention`).
"""


@dag(
    dag_id="green_api_maintenance",
    schedule="30 4 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["green-api", "maintenance"],
    doc_md=DOC,
    default_args={
        "retries": 1,
        "retry_delay": timedelta(minutes=10),
        # A failure of the monitoring itself reaches support too.
        "on_failure_callback": support_notifier(),
    },
)
def green_api_maintenance() -> None:
    @task(multiple_outputs=False)
    def purge_health_logs() -> dict:
        from greenapi.tasks import maintenance

        return maintenance.purge_health_logs_step()

    @task(multiple_outputs=False)
    def purge_task_logs() -> dict:
        from greenapi.tasks import maintenance

        return maintenance.purge_task_logs_step()

    @task(multiple_outputs=False)
    def report(health: dict, logs: dict) -> dict:
        return {"health_logs": health, "task_logs": logs}

    report(purge_health_logs(), purge_task_logs())


green_api_maintenance()

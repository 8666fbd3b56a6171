"""Green API health check: every 5 minutes, check -> route -> reboot -> alert -> log -> report."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import TriggerRule, Variable, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from greenapi.domain.config import INSTANCES_VARIABLE, SETTINGS_VARIABLE
from greenapi.store import HealthStore
from greenapi.tasks import common
from greenapi.tasks import health_check as hc

DOC = """
### Green API health check

Every 5 minutes, checks each Green API instance listed in Variable `green_api_instances`
(connection ids, default `["green_api_default"]`) with `getStateInstance`, all instances
concurrently in one task.

| result | status | action |
|---|---|---|
| `authorized` | `healthy` | none |
| another state (notAuthorized, blocked, sleepMode, starting, yellowCard, null) | `unhealthy` | WhatsApp alert, **never** a reboot |
| timeout, connection error, HTTP 5xx | `critical_failure` | automatic reboot; alert if the reboot fails |
| HTTP 401 / 403 / 404 / 466 / other 400 | `unhealthy` | alert saying what to fix, no reboot |
| HTTP 429 | `rate_limited` | recorded only |

Tasks: **check_instances** -> **route** (branch: reboot needed?) -> **reboot_instances** ->
**send_alerts** (to every active row of `system_support_contacts`, by `notification_priority`)
-> **log_results** (one row per check in `green_api_health_logs`, connection `green_api_db`)
-> **report** (fails the run, naming the problem, when an alert reached nobody or the
configuration is wrong).

*Check now*: trigger this DAG by hand; its rows get `trigger_type = 'manual'`.
"""


@dag(
    dag_id="green_api_health_check",
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
    tags=["green-api", "monitoring"],
    doc_md=DOC,
    default_args={"retries": 0, "execution_timeout": timedelta(minutes=10)},
)
def green_api_health_check() -> None:
    @task(multiple_outputs=False)
    def check_instances() -> dict:
        try:
            return hc.check_instances(
                Variable.get(INSTANCES_VARIABLE, default=None), Variable.get(SETTINGS_VARIABLE, default=None)
            )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None

    @task.branch
    def route(checked: dict) -> list[str]:
        return hc.route(checked)

    @task(multiple_outputs=False, task_id=hc.REBOOT_TASK)
    def reboot_instances(checked: dict) -> dict:
        return hc.reboot_instances(checked, Variable.get(SETTINGS_VARIABLE, default=None))

    @task(multiple_outputs=False, task_id=hc.ALERT_TASK, trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def send_alerts() -> dict:
        ti = get_current_context()["ti"]
        findings = hc.findings(ti.xcom_pull(task_ids="check_instances"), ti.xcom_pull(task_ids=hc.REBOOT_TASK))
        outcome = common.send_alerts(findings, Variable.get(SETTINGS_VARIABLE, default=None), HealthStore(), "automatic")
        if outcome["undelivered"]:
            ti.xcom_push(key="failed_outcome", value=outcome)
            raise AirflowFailException("; ".join(outcome["problems"]))
        return outcome

    def _alerting(ti) -> dict | None:
        return ti.xcom_pull(task_ids=hc.ALERT_TASK) or ti.xcom_pull(task_ids=hc.ALERT_TASK, key="failed_outcome")

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=3, retry_delay=timedelta(seconds=20))
    def log_results() -> int:
        context = get_current_context()
        ti, dag_run = context["ti"], context["dag_run"]
        findings = hc.findings(ti.xcom_pull(task_ids="check_instances"), ti.xcom_pull(task_ids=hc.REBOOT_TASK))
        rows = common.log_rows(
            findings,
            _alerting(ti),
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            trigger_type=common.run_trigger_type(dag_run.run_type),
        )
        inserted = HealthStore().insert_health_logs(rows)
        print(f"{len(rows)} check(s) to log, {inserted} new row(s) in green_api_health_logs")
        return len(rows)

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE)
    def report() -> dict:
        ti = get_current_context()["ti"]
        checked = ti.xcom_pull(task_ids="check_instances")
        summary = common.summarize(
            hc.findings(checked, ti.xcom_pull(task_ids=hc.REBOOT_TASK)) if checked else None,
            (checked or {}).get("problems", []),
            _alerting(ti),
            ti.xcom_pull(task_ids="log_results"),
        )
        if summary["problems"]:
            raise AirflowFailException("Run failed: " + "; ".join(summary["problems"]))
        return summary

    checked = check_instances()
    rebooted = reboot_instances(checked)
    alerted = send_alerts()
    route(checked) >> [rebooted, alerted]
    rebooted >> alerted >> log_results() >> report()


green_api_health_check()

"""Green API health check: every 5 minutes, check -> reboot -> conclude -> alert -> log -> report."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import TriggerRule, Variable, dag, task

from greenapi.domain.codec import XCom
from greenapi.domain.config import ShardArgs
from greenapi.domain.findings import Finding
from greenapi.domain.health import CheckedRun, RecoveryWait
from greenapi.domain.records import AlertOutcome, CheckBatch, InstanceCheck
from greenapi.domain.runs import RunSummary
from greenapi.domain.schedule import CHECK_SCHEDULE_VARIABLE, parse_check_schedule
from greenapi.domain.watch import WATCH_NAME, WATCH_VARIABLE, parse_watch
from greenapi.tasks.check_shard import HealthCheckShard
from greenapi.tasks.notices import support_notifier
from greenapi.tasks.reboot_flow import recovery_wait

# Task bodies import their glue when they run: parsing this file stays as cheap as a bare DAG.

# Read at parse time, as the daily reboot's: a bad value is an import error naming it.
SCHEDULE = parse_check_schedule(Variable.get(CHECK_SCHEDULE_VARIABLE, default=None))
WATCH = parse_watch(Variable.get(WATCH_VARIABLE, default=None))


WATCHED_TYPE = "whatsapp"  # the partner entries the watch follows (of the default type)


def schedule() -> object:
    """The cron schedule; with the watch on, that or a change of state, whichever comes first."""
    if not WATCH.enabled:
        return SCHEDULE
    from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable

    from greenapi.domain.config import (
        INSTANCES_VARIABLE,
        ConfigError,
        InstanceList,
        parse_instance_list,
    )
    from greenapi.triggers.green_api import GreenApiStateChangeTrigger

    try:  # the connections and partner accounts of the list; a bad list fails the runs, naming it
        watched = parse_instance_list(Variable.get(INSTANCES_VARIABLE, default=None))
    except ConfigError:
        watched = InstanceList([])
    trigger = GreenApiStateChangeTrigger(
        green_api_conn_ids=watched.conn_ids, watch_seconds=WATCH.watch_seconds, record_round="greenapi.store.record_round",
        watch_name=WATCH_NAME, green_api_partner_conn_ids=[p.conn_id for p in watched.partners if p.type_instance == WATCHED_TYPE],
    )
    changes = Asset(name="green_api_state_changes", watchers=[AssetWatcher(name=WATCH_NAME, trigger=trigger)])
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(SCHEDULE, timezone="UTC"), assets=[changes])


DOC = f"""
### Green API health check

On schedule `{SCHEDULE}` (UTC; Variable `green_api_check_schedule`, by default every 5
minutes), checks each Green API instance listed in Variable `green_api_instances`
(connection ids, default `["green_api_default"]`) with `getStateInstance`, concurrently:
**plan_checks** splits them into mapped **check_shard** tasks of at most
`instances_per_check_task` (setting, default 250). Each shard counts and logs its healthy
instances that need nothing more (no failure streak, no incident) itself; **check_instances**
gathers the rest.

| result | status | action |
|---|---|---|
| `authorized` | `healthy` | none |
| another state (notAuthorized, blocked, sleepMode, starting, yellowCard, null) | `unhealthy` | WhatsApp alert, **never** a reboot |
| timeout, connection error, HTTP 5xx | `critical_failure` | automatic reboot (at most `max_reboots_per_run` per run; none for an outage's members); alert if the reboot fails |
| HTTP 401 / 403 / 404 / 466 / other 400 | `unhealthy` | alert saying what to fix, no reboot |
| HTTP 429 | `rate_limited` | recorded only |

Tasks: **plan_checks** -> **check_shard** (`GreenApiHealthCheckOperator`, mapped; counts and logs the quiet healthy) ->
**check_instances** -> **reboot_instances** (skipped when no check calls for a reboot; after a
confirming re-check, within the cooldown and daily cap) -> **wait_for_recovery**
(`GreenApiFleetStateSensor`: one wait in the triggerer for all the instances rebooted) ->
**conclude** (one finding per check) ->
**send_alerts** (incidents: first alert to the lowest `notification_priority`, escalation,
reminders, resolution; through `green_api_alerts`, never only the failing instance) ->
**log_results** (one row per check in `green_api_health_logs`, connection `green_api_db`) ->
**report** (fails the run, naming the problem, and tells support through GreenApiNotifier).

Many instances of one API host failing alike in a run are one **platform outage**: one incident
and one message, no reboot (settings `outage_min_instances`, `outage_fraction`); many messages
of one kind to one contact go as one (`group_alerts_over`). See docs/alerting.md.

*Check now*: trigger this DAG by hand; its rows get `trigger_type = 'manual'`.

**The watch** (Variable `green_api_watch`, `{{"enabled": true, "watch_seconds": 20}}`, read at
parse time; {"on" if WATCH.enabled else "off"} here): a `GreenApiStateChangeTrigger` in the triggerer looks at
each instance every `watch_seconds` and, on a change of state, starts a run that checks the
instances that changed at once. See docs/alerting.md.
"""


@dag(
    dag_id="green_api_health_check",
    schedule=schedule(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
    tags=["green-api", "monitoring"],
    doc_md=DOC,
    default_args={"retries": 0, "execution_timeout": timedelta(minutes=10)},
)
def green_api_health_check() -> None:
    @task
    def plan_checks() -> list[ShardArgs]:
        from greenapi.tasks import health_check

        return health_check.plan_step()

    @task(show_return_value_in_logs=False)
    def check_instances(shards: list[XCom[CheckBatch]]) -> XCom[CheckedRun]:
        from greenapi.tasks import health_check

        return health_check.check_step(shards)

    @task(show_return_value_in_logs=False)
    def reboot_instances(checked: XCom[CheckedRun]) -> list[RecoveryWait]:
        from greenapi.tasks import health_check

        return health_check.reboot_step(checked)

    # Runs even when the reboot task failed as a whole: its instances are then alerted as not rebooted.
    @task(trigger_rule=TriggerRule.ALL_DONE, show_return_value_in_logs=False)
    def conclude(checked: XCom[CheckedRun] | None, looks: list[list[XCom[InstanceCheck]] | None] | None,
                 ) -> XCom[list[Finding]]:
        from greenapi.tasks import health_check

        return health_check.conclude_step(checked, looks)

    @task(show_return_value_in_logs=False)
    def send_alerts(findings: XCom[list[Finding]], checked: XCom[CheckedRun]) -> XCom[AlertOutcome]:
        from greenapi.tasks import health_check

        return health_check.alert_step(findings, checked)

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=3, retry_delay=timedelta(seconds=20))
    def log_results(findings: XCom[list[Finding]] | None, alerting: XCom[AlertOutcome] | None) -> int:
        from greenapi.tasks import health_check

        return health_check.log_step(findings, alerting)

    # The run's last word: when it fails (configuration, database down, a crash, an alert that
    # reached nobody), support is told through GreenApiNotifier, even without the database.
    @task(trigger_rule=TriggerRule.ALL_DONE, on_failure_callback=support_notifier())
    def report(checked: XCom[CheckedRun] | None, findings: XCom[list[Finding]] | None,
               alerting: XCom[AlertOutcome] | None, logged: int | None) -> XCom[RunSummary]:
        from greenapi.tasks import health_check

        return health_check.report_step(checked, findings, alerting, logged)

    shards = HealthCheckShard.partial(task_id="check_shard").expand_kwargs(plan_checks())
    checked = check_instances(shards.output)
    rebooted = reboot_instances(checked)
    # The reboot task's round (XCom "round") is read by task id: an argument from a failed task's
    # missing custom-key XCom would fail the conclusion, which must run to alert every instance.
    found = conclude(checked, recovery_wait(rebooted))
    rebooted >> found
    alerted = send_alerts(found, checked)
    report(checked, found, alerted, log_results(found, alerted))


green_api_health_check()

"""Daily reboot of every monitored Green API instance, at a local time set from the Airflow UI."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Variable, dag, task

from greenapi.domain.schedule import REBOOT_SCHEDULE_VARIABLE, parse_reboot_schedule
from greenapi.tasks.notices import support_notifier
from greenapi.tasks.reboot_flow import reboot_flow
from greenapi.timetables import DailyLocalTimeTimetable

# Read at parse time: the schedule is part of the DAG. A bad value raises here, so the DAG shows
# an import error naming it instead of silently running at another time.
SCHEDULE = parse_reboot_schedule(Variable.get(REBOOT_SCHEDULE_VARIABLE, default=None))

DOC = f"""
### Green API scheduled reboot

Reboots every instance of Variable `green_api_instances` once a day at
**{SCHEDULE.time} ({SCHEDULE.timezone})**{"" if SCHEDULE.enabled else " — **disabled** (`enabled: false`)"}, then waits
for each to come back `authorized` (Variable `green_api_settings`: `reboot_verify_minutes`,
default 5; `reboot_poll_seconds`, default 15) without holding a worker slot.

Change the time in *Admin > Variables > `green_api_reboot_schedule`*:
`{{"time": "03:00", "timezone": "Europe/Paris", "enabled": true}}`. It applies at the next parse
of this file. Exactly one run per local day, across DST changes.

One row per instance in `green_api_health_logs` with `trigger_type = 'scheduled'`: `rebooted`
when it came back authorized; otherwise a failure and a WhatsApp alert saying what happened
(reboot refused, reboot error, not back in time, back but WhatsApp must be linked again).
"""


@dag(
    dag_id="green_api_scheduled_reboot",
    schedule=DailyLocalTimeTimetable(SCHEDULE.time, SCHEDULE.timezone) if SCHEDULE.enabled else None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    tags=["green-api", "maintenance"],
    doc_md=DOC,
    default_args={"retries": 0},
)
def green_api_scheduled_reboot() -> None:
    # A bad Variable stops the run here: support is told, as for any failure of the daily reboot.
    @task(on_failure_callback=support_notifier())
    def pick_instances() -> list[str]:
        from greenapi.tasks import reboot

        return reboot.scheduled_targets_step()

    reboot_flow(pick_instances(), trigger_type="scheduled")


green_api_scheduled_reboot()

"""Force reboot now: reboots one or all monitored instances on demand, after confirmation."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, Variable, dag, task

from greenapi.domain.config import INSTANCES_VARIABLE, ConfigError, parse_instances
from greenapi.tasks.reboot_flow import reboot_flow

ALL = "all"


def _choices() -> list[str]:
    # Suggestions for the trigger form only; the run validates its own input.
    try:
        return [ALL, *parse_instances(Variable.get(INSTANCES_VARIABLE, default=None))]
    except ConfigError:
        return [ALL]


DOC = """
### Force reboot now

Trigger this DAG (*Trigger* button), pick the instance (a connection id of
`green_api_instances`, an instance of a partner account listed there as
`<partner connection id>/<idInstance>`, or `all`) and tick **confirm**: a reboot can disconnect
WhatsApp.
Without the confirmation the run stops at once and nothing is rebooted.

A confirmed run reboots, waits for each instance to come back `authorized`, alerts support if it
does not, and logs one row per instance with `trigger_type = 'manual'`.

CLI: `airflow dags trigger green_api_reboot --conf '{"instance": "all", "confirm": true}'`
"""


@dag(
    dag_id="green_api_reboot",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    tags=["green-api", "manual"],
    doc_md=DOC,
    default_args={"retries": 0},
    params={
        "instance": Param(
            ALL, type="string", title="Instance", description="Connection id to reboot (a partner account's instance: <partner connection id>/<idInstance>), or 'all'",
            examples=_choices(),
        ),
        "confirm": Param(
            False, type="boolean", title="Confirm the reboot",
            description="A reboot can disconnect WhatsApp (a new QR scan may be needed).",
        ),
    },
)
def green_api_reboot() -> None:
    @task
    def pick_instances() -> list[str]:
        from greenapi.tasks import reboot

        return reboot.manual_targets_step()

    reboot_flow(pick_instances(), trigger_type="manual", notify_failure=False)


green_api_reboot()

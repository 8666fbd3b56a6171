"""Example: reboot a Green API instance and wait, in the triggerer, until it is back authorized."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from greenapi.operators.green_api import GreenApiRebootOperator

DOC = """
### Reboot an instance and wait until it is back

`GreenApiRebootOperator` with `deferrable=True`: the task asks the instance to reboot, then hands
the wait to the triggerer (no worker slot held) until `getStateInstance` answers `authorized`,
looking every `poke_interval` seconds. It fails if the reboot is refused, or names the last state
seen if `authorized` does not come within `timeout`.

Trigger it with the connection id of the instance (param `conn_id`, default `green_api_default`).
A reboot can disconnect WhatsApp for a while: run it deliberately.
"""


@dag(
    dag_id="example_green_api_reboot",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "green-api"],
    doc_md=DOC,
    default_args={"retries": 0},
    params={"conn_id": Param("green_api_default", type="string", title="Connection id of the instance")},
)
def example_green_api_reboot() -> None:
    reboot = GreenApiRebootOperator(
        task_id="reboot_and_wait",
        green_api_conn_id="{{ params.conn_id }}",
        wait_for_state="authorized",
        timeout=600,
        poke_interval=15,
        deferrable=True,
    )

    @task
    def report(outcome: dict[str, Any]) -> None:
        print(f"Instance {outcome['instance_id']} is back: {outcome['state']}")

    report(reboot.output)


example_green_api_reboot()

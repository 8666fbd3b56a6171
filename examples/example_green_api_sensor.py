"""Example: wait until a Green API instance is authorized, then send a WhatsApp message."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from greenapi.operators.green_api import GreenApiSendMessageOperator
from greenapi.sensors.green_api import GreenApiStateSensor

DOC = """
### Wait until an instance is authorized before sending

`GreenApiStateSensor` looks at `getStateInstance` every `poke_interval` seconds (reschedule mode:
no worker slot held between looks) until the instance is `authorized`; then
`GreenApiSendMessageOperator` sends a message built from the sensor's result (its XCom: the
instance id and when it was seen authorized).

Params: `conn_id` (the sending instance's connection) and `chat_id` (the recipient; the default
is a fake number).
"""


@dag(
    dag_id="example_green_api_sensor",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "green-api"],
    doc_md=DOC,
    default_args={"retries": 0},
    params={
        "conn_id": Param("green_api_default", type="string", title="Connection id of the instance"),
        "chat_id": Param("10000000000@c.us", type="string", title="Recipient", pattern=r"^[0-9-]+@[cg]\.us$"),
    },
)
def example_green_api_sensor() -> None:
    authorized = GreenApiStateSensor(
        task_id="wait_until_authorized",
        green_api_conn_id="{{ params.conn_id }}",
        target_states=["authorized"],
        mode="reschedule",
        poke_interval=30,
        timeout=3600,
    )

    @task
    def compose(check: dict[str, Any], ds: str | None = None) -> str:
        # The sensor's XCom: {"conn_id", "instance_id", "checked_at", "result": {"data": {...}, ...}}
        seen = check["checked_at"][:19].replace("T", " ")
        return (
            f"Good morning: instance {check['instance_id']} is authorized (seen {seen} UTC). Report of {ds}."
        )

    GreenApiSendMessageOperator(
        task_id="send_greeting",
        green_api_conn_id="{{ params.conn_id }}",
        chat_id="{{ params.chat_id }}",
        message=compose(authorized.output),
    )


example_green_api_sensor()

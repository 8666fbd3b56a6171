"""Example: send a WhatsApp message when a task fails (GreenApiNotifier as on_failure_callback)."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from greenapi.notifications import GreenApiNotifier

DOC = """
### Send a WhatsApp when a DAG fails

`GreenApiNotifier` in `default_args["on_failure_callback"]`: every task of the DAG that fails
sends one WhatsApp message, with the DAG, the task, the run and the error.

- Sender: the connection `green_api_default` (type Green API).
- Recipient: Variable `green_api_example_chat_id` (e.g. `33612345678@c.us`), default a fake number.

`load_report` always fails, so one run shows the message arrive.
"""

# Rendered when the notice is sent (the task context is the template's context).
NOTICE = GreenApiNotifier(
    message="❌ {{ dag.dag_id }}: task {{ ti.task_id }} failed (run {{ run_id }}): {{ exception }}",
    chat_ids=["{{ var.value.get('green_api_example_chat_id', '10000000000@c.us') }}"],
    green_api_conn_id="green_api_default",
)


@dag(
    dag_id="example_green_api_notifier",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "green-api"],
    doc_md=DOC,
    default_args={"retries": 0, "on_failure_callback": NOTICE},
)
def example_green_api_notifier() -> None:
    @task
    def load_report() -> None:
        raise RuntimeError("the report source did not answer")

    load_report()


example_green_api_notifier()

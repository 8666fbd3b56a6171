"""The example DAGs of examples/: they load, and each does what its doc says against the simulator."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import printed
from tests.faults.conftest import Watcher
from tests.operators import run_unlisted_dag, xcom

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RECIPIENT = "33600000042@c.us"


@pytest.fixture(scope="module")
def examples() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert not bag.import_errors, bag.import_errors
    return bag.dags


def test_examples_load_as_manual_example_dags(examples):
    assert sorted(examples) == [
        "example_green_api_notifier",
        "example_green_api_reboot",
        "example_green_api_sensor",
    ]
    for dag in examples.values():
        assert dag.schedule is None and dag.catchup is False, dag.dag_id
        assert dag.tags == {"example", "green-api"} and dag.doc_md, dag.dag_id


def test_examples_are_not_deployed_with_the_dags():
    from airflow.dag_processing.dagbag import DagBag

    deployed = DagBag(dag_folder=str(EXAMPLES.parent / "dags"))
    assert deployed.dags and not [d for d in deployed.dags if d.startswith("example_")]


@pytest.mark.parametrize(("variable", "recipient"), [(RECIPIENT, RECIPIENT), (None, "10000000000@c.us")],
                         ids=["chat-from-variable", "fake-default-chat"])  # fmt: skip
def test_notifier_example_sends_the_failure_to_whatsapp(
    examples, make_instance, sim, monkeypatch, variable, recipient
):
    sender = make_instance("green_api_default")
    if variable:
        monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_EXAMPLE_CHAT_ID", variable)
    outcome = run_unlisted_dag(examples["example_green_api_notifier"])
    assert (outcome.state, outcome.tasks) == ("failed", {"load_report": "failed"})
    assert [(m["chatId"], m["message"]) for m in sim.messages(sender.instance_id)] == [(
        recipient,
        f"❌ example_green_api_notifier: task load_report failed (run {outcome.run_id}): the report source did not answer",
    )]  # fmt: skip


def test_reboot_example_reboots_and_waits_in_the_triggerer_until_authorized(
    examples, make_instance, sim, capfd
):
    inst = make_instance("green_api_default", state="notAuthorized", starting_seconds=2)
    dag = examples["example_green_api_reboot"]
    dag.get_task("reboot_and_wait").poke_interval = 1.0  # instead of 15 s, to keep the test short
    outcome = run_unlisted_dag(dag)
    assert (outcome.state, outcome.tasks) == ("success", {"reboot_and_wait": "success", "report": "success"})
    assert [r["isReboot"] for r in sim.reboots(inst.instance_id)] == [True]
    assert sim.effective_state(inst.instance_id) == "authorized"
    looks = sim.requests_log(inst.instance_id, "getStateInstance")
    reboot_at = sim.reboots(inst.instance_id)[0]["at"]
    assert len(looks) >= 2 and all(look["at"] > reboot_at for look in looks)  # seen starting, then back
    assert xcom(dag.dag_id, outcome.run_id, "reboot_and_wait") == {
        "instance_id": inst.instance_id,
        "state": "authorized",
    }
    out = printed(capfd)
    assert f"instance {inst.instance_id} is authorized" in out  # the trigger's event
    assert f"Instance {inst.instance_id} is back: authorized" in out


def test_sensor_example_sends_only_once_the_instance_is_authorized(examples, make_instance, sim):
    inst = make_instance("green_api_default", state="starting")
    dag = examples["example_green_api_sensor"]
    dag.get_task("wait_until_authorized").poke_interval = 1.0
    sent_while_starting: list[int] = []

    def authorize() -> None:
        sent_while_starting.append(len(sim.messages()))
        sim.configure(inst.instance_id, state="authorized")

    watcher = Watcher(lambda: len(sim.requests_log(inst.instance_id, "getStateInstance")) >= 2, authorize)
    watcher.start()
    outcome = run_unlisted_dag(dag, run_conf={"chat_id": RECIPIENT})
    watcher.result()
    assert outcome.tasks == {
        "wait_until_authorized": "success",
        "compose": "success",
        "send_greeting": "success",
    }
    assert sent_while_starting == [0]  # two looks at a starting instance, and nothing sent
    [message] = sim.messages(inst.instance_id)
    ds = datetime.fromisoformat(outcome.run_id.removeprefix("manual__")).strftime("%Y-%m-%d")
    assert message["chatId"] == RECIPIENT and message["delivered"]  # sent while authorized
    assert message["message"].startswith(f"Good morning: instance {inst.instance_id} is authorized (seen ")
    assert message["message"].endswith(f" UTC). Report of {ds}.")

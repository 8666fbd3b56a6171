"""The provider's operators, sensor, trigger and notifier over real HTTP against the simulator.

Paths that need Airflow's machinery (templating, deferral, reschedule, task states) run as small
DAGs with ``dag.test()``; the others call ``execute()`` directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum
import psycopg
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException

from greenapi.domain.records import CheckBatch
from greenapi.domain.results import ResultKind
from greenapi.notifications import GreenApiNotifier
from greenapi.operators.green_api import (
    GreenApiHealthCheckOperator,
    GreenApiRebootOperator,
    GreenApiSendMessageOperator,
)
from greenapi.provider import get_provider_info
from greenapi.sensors.green_api import GreenApiFleetStateSensor, GreenApiStateSensor
from greenapi.triggers.green_api import GreenApiFleetStateTrigger, GreenApiStateTrigger
from tests.conftest import TOKEN_PATTERN, require_env
from tests.e2e.conftest import printed
from tests.faults.conftest import Watcher
from tests.operators import run_unlisted_dag, stored_text, xcom

SUPPORT = "33600000001@c.us"
REPO = Path(__file__).resolve().parents[2]


def small_dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
               default_args={"retries": 0}, **kwargs)  # fmt: skip


def raised(kind: type[Exception], call: Any) -> str:
    with pytest.raises(kind) as info:
        call()
    return str(info.value)


def looks(sim: Any, instance_id: str) -> int:
    return len(sim.requests_log(instance_id, "getStateInstance"))


def authorize_after_looks(sim: Any, instance_id: str, count: int) -> Watcher:
    """Makes the instance authorized once it has been looked at ``count`` times (and seen not ready)."""
    watcher = Watcher(
        lambda: looks(sim, instance_id) >= count, lambda: sim.configure(instance_id, state="authorized")
    )
    watcher.start()
    return watcher


# ---- GreenApiSendMessageOperator


def test_send_returns_the_message_id_and_the_message_arrives(make_instance, sim):
    inst = make_instance("green_api_sender")
    op = GreenApiSendMessageOperator(
        task_id="send", chat_id=SUPPORT, message="Hello", green_api_conn_id=inst.conn_id
    )
    id_message = op.execute({})
    assert [(m["chatId"], m["message"], m["idMessage"]) for m in sim.messages(inst.instance_id)] == [
        (SUPPORT, "Hello", id_message)
    ]


QUOTA = {"mode": "http", "status": 466, "body": {"invokeStatus": {"status": "QUOTE_EXCEEDED"}}}


@pytest.mark.parametrize(
    ("fault", "tries", "reason"),
    [
        pytest.param(
            QUOTA, 1, "HTTP 466: QUOTE_EXCEEDED (the instance's quota is exceeded", id="466-not-retried"
        ),
        pytest.param(
            {"mode": "http", "status": 429},
            3,
            "HTTP 429: Too Many Requests (rate limited by the API",
            id="429-retried",
        ),  # fmt: skip
        pytest.param({"mode": "http", "status": 400}, 1, "HTTP 400: Bad Request", id="400-not-retried"),
    ],
)
def test_send_refused_fails_with_the_api_reason_and_no_token(make_instance, sim, capfd, fault, tries, reason):
    inst = make_instance("green_api_sender", faults={"sendMessage": fault})
    op = GreenApiSendMessageOperator(task_id="send", chat_id=SUPPORT, message="Hello", green_api_conn_id=inst.conn_id,
                                     attempts=3, backoff_seconds=0.05)  # fmt: skip
    error = raised(AirflowException, lambda: op.execute({}))
    assert error.startswith(f"sendMessage to {SUPPORT} failed after {tries} attempt(s): {reason}")
    assert error.endswith("connection 'green_api_sender')")
    assert len(sim.requests_log(inst.instance_id, "sendMessage")) == tries
    assert sim.messages() == []
    assert inst.token not in error + printed(capfd)


def test_send_with_a_wrong_token_fails_naming_the_token_not_showing_it(make_instance, sim, capfd):
    inst = make_instance("green_api_sender")
    sim.configure(inst.instance_id, token="regenerated-in-the-console")  # the connection's token is now wrong
    op = GreenApiSendMessageOperator(
        task_id="send", chat_id=SUPPORT, message="Hello", green_api_conn_id=inst.conn_id
    )
    error = raised(AirflowException, lambda: op.execute({}))
    assert error == (
        f"sendMessage to {SUPPORT} failed after 1 attempt(s): HTTP 401: Unauthorized "
        "(the API token (apiTokenInstance) is wrong; connection 'green_api_sender')"
    )
    assert len(sim.requests_log(inst.instance_id, "sendMessage")) == 1  # a refusal is not retried
    assert not TOKEN_PATTERN.search(error + printed(capfd))


def test_send_retries_a_429_and_then_succeeds(make_instance, sim):
    inst = make_instance(
        "green_api_sender", faults={"sendMessage": {"mode": "http", "status": 429, "times": 1}}
    )
    op = GreenApiSendMessageOperator(task_id="send", chat_id=SUPPORT, message="Hello", green_api_conn_id=inst.conn_id,
                                     backoff_seconds=0.05)  # fmt: skip
    id_message = op.execute({})
    assert [r["status"] for r in sim.requests_log(inst.instance_id, "sendMessage")] == [429, 200]
    assert [m["idMessage"] for m in sim.messages(inst.instance_id)] == [id_message]


def test_send_renders_its_templates_and_pushes_the_message_id(make_instance, sim):
    inst = make_instance("green_api_sender")
    with small_dag(
        "test_green_api_send_templated", params={"who": "33600000042", "conn": inst.conn_id}
    ) as dag:
        GreenApiSendMessageOperator(task_id="send", chat_id="{{ params.who }}@c.us", green_api_conn_id="{{ params.conn }}",
                                    message="Report of {{ ds }} for {{ dag.dag_id }}")  # fmt: skip
    outcome = run_unlisted_dag(dag)
    assert outcome.tasks == {"send": "success"}
    [message] = sim.messages(inst.instance_id)
    ds = datetime.fromisoformat(outcome.run_id.removeprefix("manual__")).strftime(
        "%Y-%m-%d"
    )  # the logical date
    assert (message["chatId"], message["message"]) == ("33600000042@c.us", f"Report of {ds} for {dag.dag_id}")
    assert xcom(dag.dag_id, outcome.run_id, "send") == message["idMessage"]


# ---- GreenApiRebootOperator


def test_reboot_accepted_waits_until_authorized(make_instance, sim):
    inst = make_instance("green_api_rebooted", starting_seconds=2)
    op = GreenApiRebootOperator(task_id="reboot", green_api_conn_id=inst.conn_id, poke_interval=1, timeout=20)
    assert op.execute({}) == {"instance_id": inst.instance_id, "state": "authorized"}
    assert [r["isReboot"] for r in sim.reboots(inst.instance_id)] == [True]
    assert 2 <= looks(sim, inst.instance_id) <= 4  # seen starting, then back within about a second


def test_reboot_refused_fails_with_a_clear_message(make_instance, sim, capfd):
    inst = make_instance("green_api_rebooted", reboot_result=False)
    op = GreenApiRebootOperator(task_id="reboot", green_api_conn_id=inst.conn_id, poke_interval=1)
    error = raised(AirflowException, lambda: op.execute({}))
    assert error == (f"Reboot of instance {inst.instance_id} refused by the API (isReboot: False; "
                     f"connection '{inst.conn_id}')")  # fmt: skip
    assert looks(sim, inst.instance_id) == 0  # nothing to wait for
    assert inst.token not in printed(capfd)


def test_reboot_not_back_in_time_names_the_last_state_seen(make_instance, sim):
    inst = make_instance("green_api_rebooted", starting_seconds=60)
    op = GreenApiRebootOperator(task_id="reboot", green_api_conn_id=inst.conn_id, poke_interval=1, timeout=3)
    error = raised(AirflowException, lambda: op.execute({}))
    assert error == (f"Instance {inst.instance_id} rebooted but did not reach authorized within 3 s; "
                     "last seen: starting")  # fmt: skip
    assert 2 <= looks(sim, inst.instance_id) <= 3


def test_reboot_deferrable_waits_in_the_triggerer(make_instance, sim, capfd):
    inst = make_instance("green_api_rebooted", starting_seconds=2)
    with small_dag("test_green_api_reboot_deferrable") as dag:
        GreenApiRebootOperator(task_id="reboot", green_api_conn_id=inst.conn_id, poke_interval=1, timeout=20,
                               deferrable=True)  # fmt: skip
    outcome = run_unlisted_dag(dag)
    assert outcome.tasks == {"reboot": "success"}
    assert xcom(dag.dag_id, outcome.run_id, "reboot") == {
        "instance_id": inst.instance_id,
        "state": "authorized",
    }
    assert len(sim.reboots(inst.instance_id)) == 1 and looks(sim, inst.instance_id) >= 2
    assert f"instance {inst.instance_id} is authorized" in printed(capfd)  # the trigger's event


# ---- the failure paths of a whole run: task states, reasons, and no token anywhere


def test_failures_in_a_run_fail_or_skip_their_task_and_never_show_the_token(make_instance, sim, capfd):
    quota = make_instance("green_api_quota", faults={"sendMessage": QUOTA})
    refused = make_instance("green_api_refused", reboot_result=False)
    stuck = make_instance("green_api_stuck", starting_seconds=60)
    asleep = make_instance("green_api_asleep", state="sleepMode")
    with small_dag("test_green_api_failures") as dag:
        GreenApiSendMessageOperator(
            task_id="send_over_quota", chat_id=SUPPORT, message="x", green_api_conn_id=quota.conn_id
        )
        GreenApiRebootOperator(task_id="reboot_refused", green_api_conn_id=refused.conn_id)
        GreenApiRebootOperator(task_id="reboot_not_back", green_api_conn_id=stuck.conn_id, poke_interval=1, timeout=2,
                               deferrable=True)  # fmt: skip
        GreenApiStateSensor(task_id="never_authorized", green_api_conn_id=asleep.conn_id, poke_interval=1, timeout=2,
                            deferrable=True, never_fail=True)  # fmt: skip
        GreenApiHealthCheckOperator(
            task_id="check_strict", green_api_conn_ids=[asleep.conn_id], fail_on_problem=True
        )
    outcome = run_unlisted_dag(dag)
    out = printed(capfd)
    assert outcome.tasks == {"send_over_quota": "failed", "reboot_refused": "failed", "reboot_not_back": "failed",
                             "never_authorized": "skipped", "check_strict": "failed"}  # fmt: skip
    assert "HTTP 466: QUOTE_EXCEEDED (the instance's quota is exceeded" in out
    assert f"Reboot of instance {refused.instance_id} refused by the API (isReboot: False; connection " in out
    # deferred or not, the same wait and the same error
    assert f"Instance {stuck.instance_id} rebooted but did not reach authorized within 2 s; last seen: starting" in out
    assert "1 instance(s) not healthy (green_api_asleep), 0 not checked" in out
    assert sim.messages() == [] and len(sim.reboots()) == 2
    stored = stored_text(outcome.run_id)  # XComs and rendered template fields
    assert all(
        inst.conn_id in stored for inst in (quota, refused, stuck, asleep)
    )  # the scan reads the run's rows
    assert not TOKEN_PATTERN.search(out + stored)


# ---- GreenApiHealthCheckOperator


def test_health_check_returns_a_typed_result_per_instance_and_the_unusable_ones(make_instance, sim, caplog):
    healthy = make_instance("green_api_healthy")
    unhealthy = make_instance("green_api_unhealthy", state="notAuthorized")
    hanging = make_instance("green_api_hanging", faults={"getStateInstance": {"mode": "hang", "seconds": 3}})
    op = GreenApiHealthCheckOperator(
        task_id="check", listed_in="Variable green_api_instances",
        green_api_conn_ids=[healthy.conn_id, unhealthy.conn_id, hanging.conn_id, "green_api_missing"],
    )  # fmt: skip
    batch = CheckBatch.from_dict(json.loads(json.dumps(op.execute({}))))  # what XCom carries
    seen = {
        c.conn_id: (c.instance_id, c.result.kind, c.result.data.get("stateInstance")) for c in batch.checks
    }
    assert seen == {
        healthy.conn_id: (healthy.instance_id, ResultKind.OK, "authorized"),
        unhealthy.conn_id: (unhealthy.instance_id, ResultKind.OK, "notAuthorized"),
        hanging.conn_id: (hanging.instance_id, ResultKind.TIMEOUT, None),
    }
    assert batch.problems == [
        "unknown connection id 'green_api_missing': create it (Admin > Connections, type Green API)"
        " (listed in Variable green_api_instances)"
    ]


def test_health_check_takes_templated_connection_ids(make_instance, sim):
    first, second = make_instance("green_api_first"), make_instance("green_api_second", state="blocked")
    with small_dag("test_green_api_health_templated", render_template_as_native_obj=True,
                  params={"instances": [first.conn_id, second.conn_id]}) as dag:  # fmt: skip
        GreenApiHealthCheckOperator(task_id="check", green_api_conn_ids="{{ params.instances }}")
    outcome = run_unlisted_dag(dag)
    assert outcome.tasks == {"check": "success"}  # an unhealthy instance is a result, not a failure
    batch = CheckBatch.from_dict(xcom(dag.dag_id, outcome.run_id, "check"))
    assert [(c.instance_id, c.result.data["stateInstance"]) for c in batch.checks] == [
        (first.instance_id, "authorized"),
        (second.instance_id, "blocked"),
    ]
    assert batch.problems == []


# ---- GreenApiStateSensor


def test_sensor_poke_waits_until_the_state_comes(make_instance, sim):
    inst = make_instance(
        "green_api_waited",
        cycle=[{"seconds": 2, "state": "starting"}, {"seconds": 600, "state": "authorized"}],
    )
    sensor = GreenApiStateSensor(task_id="wait", green_api_conn_id=inst.conn_id, poke_interval=1, timeout=20)
    check = sensor.execute({})
    assert (check["instance_id"], check["result"]["data"]) == (
        inst.instance_id,
        {"stateInstance": "authorized"},
    )
    assert looks(sim, inst.instance_id) >= 2


def test_sensor_poke_timeout_with_soft_fail_is_a_skip(make_instance, sim):
    from airflow.sdk.exceptions import AirflowSkipException

    inst = make_instance("green_api_waited", state="notAuthorized")
    sensor = GreenApiStateSensor(task_id="wait", green_api_conn_id=inst.conn_id, poke_interval=1, timeout=2,
                                 soft_fail=True)  # fmt: skip
    with pytest.raises(AirflowSkipException, match="Sensor has timed out"):
        sensor.execute({})
    assert 2 <= looks(sim, inst.instance_id) <= 4


@pytest.mark.parametrize(
    "how", [{"mode": "reschedule"}, {"deferrable": True}], ids=["reschedule", "deferrable"]
)
def test_sensor_waits_and_releases_its_worker(make_instance, sim, capfd, how):
    inst = make_instance("green_api_waited", state="starting")
    with small_dag(f"test_green_api_sensor_{next(iter(how))}") as dag:
        GreenApiStateSensor(
            task_id="wait", green_api_conn_id=inst.conn_id, poke_interval=1, timeout=60, **how
        )
    watcher = authorize_after_looks(sim, inst.instance_id, 2)
    outcome = run_unlisted_dag(dag)
    watcher.result()
    assert outcome.tasks == {"wait": "success"}
    check = xcom(dag.dag_id, outcome.run_id, "wait")
    assert (check["instance_id"], check["result"]["data"]) == (
        inst.instance_id,
        {"stateInstance": "authorized"},
    )
    assert looks(sim, inst.instance_id) >= 3
    if "deferrable" in how:
        assert f"instance {inst.instance_id} is authorized" in printed(capfd)  # the trigger's event
    else:
        assert reschedules(dag.dag_id, outcome.run_id) >= 1


def reschedules(dag_id: str, run_id: str) -> int:
    with psycopg.connect(require_env("GREEN_API_AIRFLOW_DB_URL")) as conn:
        row = conn.execute(
            "SELECT count(*) FROM task_reschedule tr JOIN task_instance ti ON ti.id = tr.ti_id"
            " WHERE ti.dag_id = %s AND ti.run_id = %s", (dag_id, run_id),
        ).fetchone()  # fmt: skip
    return int(row[0]) if row else 0


# ---- GreenApiStateTrigger


def trigger_for(conn_id: str, seconds: float) -> GreenApiStateTrigger:
    end = datetime.now(UTC) + timedelta(seconds=seconds)
    return GreenApiStateTrigger(green_api_conn_id=conn_id, target_states=["authorized"], poke_interval=1,
                                end_at=end.isoformat())  # fmt: skip


async def first_event(trigger: GreenApiStateTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def test_trigger_serializes_to_what_rebuilds_it():
    trigger = GreenApiStateTrigger(green_api_conn_id="green_api_x", target_states=["authorized", "sleepMode"],
                                   poke_interval=2, end_at="2026-01-01T00:05:00+00:00",
                                   first_look_at="2026-01-01T00:00:30+00:00")  # fmt: skip
    classpath, kwargs = trigger.serialize()
    assert classpath == "greenapi.triggers.green_api.GreenApiStateTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert GreenApiStateTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_trigger_fires_success_once_the_state_comes(make_instance, sim):
    inst = make_instance(
        "green_api_trigger",
        cycle=[{"seconds": 1.5, "state": "starting"}, {"seconds": 600, "state": "authorized"}],
    )
    event = asyncio.run(first_event(trigger_for(inst.conn_id, 20)))
    assert (event["status"], event["message"]) == ("success", f"instance {inst.instance_id} is authorized")
    assert event["check"]["result"]["data"] == {"stateInstance": "authorized"}
    assert looks(sim, inst.instance_id) >= 2


def test_trigger_fires_timeout_naming_the_last_state(make_instance, sim):
    inst = make_instance("green_api_trigger", state="notAuthorized")
    trigger = trigger_for(inst.conn_id, 2.5)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "timeout"
    assert event["message"] == (f"instance {inst.instance_id} did not reach authorized by {trigger.end_at}; "
                                "last seen: notAuthorized")  # fmt: skip
    assert 2 <= looks(sim, inst.instance_id) <= 3


# ---- GreenApiFleetStateTrigger and GreenApiFleetStateSensor: one wait for a set of instances


def fleet_trigger(conn_ids: list[str], seconds: float) -> GreenApiFleetStateTrigger:
    end = datetime.now(UTC) + timedelta(seconds=seconds)
    return GreenApiFleetStateTrigger(green_api_conn_ids=conn_ids, target_states=["authorized"], poke_interval=1,
                                     end_at=end.isoformat())  # fmt: skip


def test_fleet_trigger_serializes_to_what_rebuilds_it():
    trigger = GreenApiFleetStateTrigger(green_api_conn_ids=["green_api_a", "green_api_b"], target_states=["authorized"],
                                        poke_interval=2, end_at="2026-01-01T00:05:00+00:00",
                                        first_look_at="2026-01-01T00:00:30+00:00", max_concurrency=8)  # fmt: skip
    classpath, kwargs = trigger.serialize()
    assert classpath == "greenapi.triggers.green_api.GreenApiFleetStateTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert GreenApiFleetStateTrigger(**kwargs).serialize() == (classpath, kwargs)
    with pytest.raises(ValueError, match="green_api_a more than once"):
        GreenApiFleetStateTrigger(green_api_conn_ids=["green_api_a", "green_api_a"], target_states=["authorized"],
                                  poke_interval=1, end_at="2026-01-01T00:05:00+00:00")  # fmt: skip


def test_fleet_trigger_waits_for_each_and_asks_no_more_of_those_back(make_instance, sim):
    back = make_instance("green_api_back")
    slow = make_instance("green_api_slow", cycle=[{"seconds": 2.5, "state": "starting"},
                                                   {"seconds": 600, "state": "authorized"}])  # fmt: skip
    event = asyncio.run(first_event(fleet_trigger([slow.conn_id, back.conn_id], 20)))
    assert (event["status"], event["waiting"]) == ("success", [])
    assert event["message"] == "all 2 instance(s) reached authorized"
    assert [(c["instance_id"], c["result"]["data"]) for c in event["checks"]] == [
        (slow.instance_id, {"stateInstance": "authorized"}), (back.instance_id, {"stateInstance": "authorized"})]
    assert looks(sim, back.instance_id) == 1  # back at the first look: not asked again
    assert looks(sim, slow.instance_id) >= 3


def test_fleet_trigger_times_out_with_every_last_look_and_names_who_is_not_back(make_instance, sim, capfd):
    back = make_instance("green_api_back")
    stuck = make_instance("green_api_stuck", state="notAuthorized")
    trigger = fleet_trigger([back.conn_id, stuck.conn_id, "green_api_missing"], 2.5)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "timeout"
    assert event["waiting"] == [stuck.conn_id, "green_api_missing"]
    assert event["message"].startswith(f"1 of 3 instance(s) reached authorized by {trigger.end_at}; "
                                       f"still not: {stuck.conn_id}; connection(s) unusable: green_api_missing")  # fmt: skip
    states = [(c["conn_id"], c["result"]["data"].get("stateInstance"), c["result"]["kind"]) for c in event["checks"]]
    assert states == [(back.conn_id, "authorized", "ok"), (stuck.conn_id, "notAuthorized", "ok"),
                      ("green_api_missing", None, "connection_error")]  # fmt: skip
    assert 2 <= looks(sim, stuck.instance_id) <= 3 and looks(sim, back.instance_id) == 1
    assert stuck.token not in json.dumps(event) + printed(capfd)


def test_fleet_sensor_here_fails_names_or_returns_the_looks_at_its_timeout(make_instance, sim):
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

    back, stuck = make_instance("green_api_back"), make_instance("green_api_stuck", state="sleepMode")
    ids = [back.conn_id, stuck.conn_id]

    def sensor(**kwargs: Any) -> GreenApiFleetStateSensor:
        return GreenApiFleetStateSensor(task_id="wait", green_api_conn_ids=ids, poke_interval=1, timeout=2,
                                        deferrable=False, **kwargs)  # fmt: skip

    assert f"still not: {stuck.conn_id}" in raised(AirflowSensorTimeout, lambda: sensor().execute({}))
    assert f"still not: {stuck.conn_id}" in raised(AirflowSkipException, lambda: sensor(soft_fail=True).execute({}))
    looked = sensor(fail_on_timeout=False).execute({})
    assert [(c["instance_id"], c["result"]["data"]["stateInstance"]) for c in looked] == [
        (back.instance_id, "authorized"), (stuck.instance_id, "sleepMode")]
    assert GreenApiFleetStateSensor(task_id="none", green_api_conn_ids=[], deferrable=True).execute({}) == []


def test_fleet_sensor_defers_once_for_all_its_instances(make_instance, sim, capfd):
    insts = [make_instance(f"green_api_fleet_{i}", state="starting") for i in range(3)]
    with small_dag("test_green_api_fleet_sensor") as dag:
        GreenApiFleetStateSensor(task_id="wait", green_api_conn_ids=[i.conn_id for i in insts], poke_interval=1,
                                 timeout=60, deferrable=True)  # fmt: skip
    watchers = [authorize_after_looks(sim, i.instance_id, n) for i, n in zip(insts, (1, 2, 3), strict=True)]
    outcome = run_unlisted_dag(dag)
    for watcher in watchers:
        watcher.result()
    assert outcome.tasks == {"wait": "success"}
    looked = xcom(dag.dag_id, outcome.run_id, "wait")
    assert [(c["instance_id"], c["result"]["data"]) for c in looked] == [
        (i.instance_id, {"stateInstance": "authorized"}) for i in insts]
    assert "all 3 instance(s) reached authorized" in printed(capfd)  # the trigger's event


# ---- GreenApiNotifier.async_notify (the triggerer's way)


async def notify(notifier: GreenApiNotifier, context: dict[str, Any]) -> None:
    notifier.context = context  # type: ignore[assignment]
    await notifier


def test_async_notify_sends_the_rendered_message(make_instance, sim):
    inst = make_instance("green_api_alerts")
    notifier = GreenApiNotifier(
        message="Deadline missed by {{ dag_id }}", chat_ids=[SUPPORT, "33600000002@c.us"]
    )
    asyncio.run(notify(notifier, {"dag_id": "nightly_load"}))
    assert [(m["chatId"], m["message"]) for m in sim.messages(inst.instance_id)] == [
        (SUPPORT, "Deadline missed by nightly_load"),
        ("33600000002@c.us", "Deadline missed by nightly_load"),
    ]


def test_async_notify_refused_raises_naming_the_chat(make_instance, sim, capfd):
    inst = make_instance("green_api_alerts", faults={"sendMessage": QUOTA})
    notifier = GreenApiNotifier(message="Deadline missed", chat_ids=[SUPPORT])
    error = raised(RuntimeError, lambda: asyncio.run(notify(notifier, {})))
    assert (
        error == f"GreenApiNotifier via 'green_api_alerts' did not reach {SUPPORT}: HTTP 466: QUOTE_EXCEEDED"
    )
    assert inst.token not in error + printed(capfd)


# ---- the provider as Airflow sees it


def test_airflow_lists_the_provider_with_its_version():
    listed = subprocess.run([str(REPO / ".venv/bin/airflow"), "providers", "list", "-o", "json"],
                            capture_output=True, text=True, env=os.environ, timeout=120, check=True)  # fmt: skip
    providers = {
        p["package_name"]: p["version"] for p in json.loads(listed.stdout[listed.stdout.index("[") :])
    }
    assert providers["airflow-provider-green-api"] == "0.2.0"


def test_provider_info_declares_every_extension():
    from airflow.providers_manager import ProvidersManager

    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-green-api"
    modules = {kind: [m for entry in info[kind] for m in entry["python-modules"]]
               for kind in ("hooks", "operators", "sensors", "triggers")}  # fmt: skip
    assert modules == {"hooks": ["greenapi.hooks.green_api"], "operators": ["greenapi.operators.green_api"],
                       "sensors": ["greenapi.sensors.green_api"], "triggers": ["greenapi.triggers.green_api"]}  # fmt: skip
    assert info["notifications"] == ["greenapi.notifications.green_api.GreenApiNotifier"]
    assert info["plugins"] == [{"name": "green_api", "plugin-class": "greenapi.plugin.GreenApiPlugin"}]
    manager = ProvidersManager()
    ours = "airflow-provider-green-api"
    # Airflow lists a notifier (by class name) only once it has imported it.
    assert "greenapi.notifications.green_api.GreenApiNotifier" in manager.notification
    assert [t.trigger_class_name for t in manager.trigger if t.package_name == ours] == [
        "greenapi.triggers.green_api"
    ]
    assert [c["hook-class-name"] for c in info["connection-types"]] == [
        "greenapi.hooks.green_api.GreenApiHook", "greenapi.hooks.green_api.GreenApiLegacyHook",
        "greenapi.hooks.green_api.GreenApiPartnerHook",
    ]


def test_health_check_also_reads_socket_queue_and_settings_of_authorized_instances(make_instance, sim):
    broken = make_instance("green_api_broken", socket_status="offline", queue_length=12,
                           settings={"incomingWebhook": "no"}, extra={"expected_settings": {"incomingWebhook": "yes"}})
    down = make_instance("green_api_down", state="notAuthorized")
    op = GreenApiHealthCheckOperator(task_id="check", green_api_conn_ids=[broken.conn_id, down.conn_id],
                                     also_read=["socket", "queue", "settings"])  # fmt: skip
    raw = json.loads(json.dumps(op.execute({})))
    batch = CheckBatch.from_dict(raw)
    reading = {c.conn_id: c.reading for c in batch.checks}
    assert reading[down.conn_id] is None  # not authorized: nothing more is read
    got = reading[broken.conn_id]
    assert (got.socket, got.queue, got.settings) == ("offline", 12, "drift")
    assert [(d.key, d.expected, d.actual) for d in got.drift] == [("incomingWebhook", "yes", "no")]
    assert "queued message" not in json.dumps(raw)  # the queue travels as its length only
    assert sim.requests_log(down.instance_id, "showMessagesQueue") == []
    with pytest.raises(ValueError, match="also_read"):
        GreenApiHealthCheckOperator(task_id="bad", green_api_conn_ids=["x"], also_read=["queues"])


def test_the_reboot_operator_and_the_sensor_follow_default_deferrable():
    """Like Airflow's own operators: ``[operators] default_deferrable`` is their default, read when
    the module is imported: one process imports them afresh under each setting (unset, True, False)."""
    probe = """
import importlib, os, sys
os.environ.pop("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", None)
for setting in sys.argv[1:]:
    if setting != "unset":
        os.environ["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = setting
    ops = importlib.reload(importlib.import_module("greenapi.operators.green_api"))
    sensors = importlib.reload(importlib.import_module("greenapi.sensors.green_api"))
    R, S = ops.GreenApiRebootOperator, sensors.GreenApiStateSensor
    print(setting, R(task_id="r").deferrable, S(task_id="s").deferrable, R(task_id="x", deferrable=False).deferrable)
"""
    done = subprocess.run([sys.executable, "-c", probe, "unset", "True", "False"], env=os.environ,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "unset False False False",
        "True True True False",
        "False False False False",
    ]


def test_health_check_takes_a_whole_partner_account_and_reads_its_expiry(make_instance, make_partner, sim):
    from datetime import UTC, datetime, timedelta, timezone

    own = make_instance("green_api_own")
    partner = make_partner(count=3)
    first, second, third = sorted(partner.instances)
    soon = (datetime.now(UTC) + timedelta(days=2)).astimezone(timezone(timedelta(hours=3)))
    sim.set_partner_instance(first, expiration_date=soon.replace(tzinfo=None).isoformat(timespec="seconds"))
    sim.delete_partner_instance(partner.token, third)
    op = GreenApiHealthCheckOperator(task_id="check", green_api_conn_ids=[own.conn_id, {"partner": partner.conn_id}],
                                     expiry_warning_days=3)  # fmt: skip
    batch = CheckBatch.from_dict(json.loads(json.dumps(op.execute({}))))
    assert [c.conn_id for c in batch.checks] == [own.conn_id, partner.key(first), partner.key(second)]
    expiry = {c.instance_id: c.reading.expiry if c.reading else None for c in batch.checks}
    assert expiry[own.instance_id] is None  # not a partner account's instance: nothing said of expiry
    assert expiry[first].expiring and not expiry[first].expired
    assert not expiry[second].expiring and not expiry[second].expired
    with pytest.raises(AirflowException, match='green_api_conn_ids: partner entry .* has unknown key'):
        GreenApiHealthCheckOperator(task_id="bad", green_api_conn_ids=[{"partnr": "x"}]).execute({})

"""End-to-end runs of green_api_scheduled_reboot and green_api_reboot ("force reboot now")."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.conftest import require_env
from tests.e2e.conftest import log_rows, printed, run_dag

pytestmark = pytest.mark.e2e

SUPPORT = "33600000001@c.us"
# Wait at most 3 s for recovery, looking every second (the API allows 1 request/s).
FAST = json.dumps({"reboot_verify_minutes": 0.05, "reboot_poll_seconds": 1, "send_backoff_seconds": 0.05})


@pytest.fixture(autouse=True)
def fast_verification(monkeypatch, add_contact, make_instance):
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", FAST)
    add_contact("Support", SUPPORT, 1)
    make_instance("green_api_alerts")  # alerts never go only through the instance that failed


def two_instances(make_instance, monkeypatch, **config):
    first = make_instance("green_api_first", **config)
    second = make_instance("green_api_second", **config)
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(["green_api_first", "green_api_second"]))
    return first, second


def paris(row) -> str:
    return row["checked_at"].astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y %H:%M:%S %Z")


def recovery_waits(run_id: str) -> list[tuple[int, str, int]]:
    """The wait_for_recovery task instances of a run: (map index, state, instances it waited on)."""
    with psycopg.connect(require_env("GREEN_API_AIRFLOW_DB_URL")) as conn:
        rows = conn.execute(
            "SELECT ti.map_index, ti.state, jsonb_array_length(x.value) FROM task_instance ti"
            " LEFT JOIN xcom x ON x.run_id = ti.run_id AND x.task_id = ti.task_id AND x.map_index = ti.map_index"
            "  AND x.key = 'return_value'"
            " WHERE ti.run_id = %s AND ti.task_id = 'wait_for_recovery'", (run_id,),
        ).fetchall()  # fmt: skip
    return [tuple(r) for r in rows]


def test_scheduled_reboot_back_authorized_is_rebooted(scheduled_reboot_dag, make_instance, monkeypatch, sim, db):
    first, second = two_instances(make_instance, monkeypatch, starting_seconds=1.5)
    outcome = run_dag(scheduled_reboot_dag)
    assert outcome.state == "success", outcome.tasks
    rows = log_rows(db)
    assert [r["instance_id"] for r in rows] == sorted([first.instance_id, second.instance_id])
    for row in rows:
        assert (row["status"], row["state_instance"], row["trigger_type"]) == ("rebooted", "authorized", "scheduled")
        assert (row["reboot_triggered"], row["reboot_success"], row["support_notified"]) == (True, True, False)
        assert row["dag_id"] == "green_api_scheduled_reboot"
    assert len(sim.reboots(first.instance_id)) == 1 and len(sim.reboots(second.instance_id)) == 1
    assert sim.messages() == []
    # One wait, in the triggerer, for both instances.
    assert recovery_waits(outcome.run_id) == [(0, "success", 2)]


def test_scheduled_reboot_refused_alerts(scheduled_reboot_dag, make_instance, sim, db, alert_link):
    inst = make_instance(reboot_result=False)
    outcome = run_dag(scheduled_reboot_dag)
    assert outcome.state == "success", outcome.tasks
    [row] = log_rows(db)
    assert (row["status"], row["alert_type"], row["reboot_success"]) == ("critical_failure", "reboot_refused", False)
    assert row["error_message"] == "Reboot refused (isReboot=False)"
    assert row["support_notified"] is True
    text = (
        f"🚨 *ALERTE GREEN API* 🚨\n\n⏰ {paris(row)}\n📱 Instance: {inst.instance_id}\n\n"
        "🔄 *REBOOT PLANIFIÉ REFUSÉ*\n\nErreur: Reboot refused (isReboot=False)\n\n"
        "⚠️ *ACTION REQUISE:*\n1. Vérifier le dashboard Green API\n2. Relancer le reboot si nécessaire\n\n"
        f"🔗 Dashboard: {alert_link}"
    )
    assert [(m["chatId"], m["message"]) for m in sim.messages()] == [(SUPPORT, text)]


def test_scheduled_reboot_error_alerts(scheduled_reboot_dag, make_instance, sim, db):
    make_instance(faults={"reboot": {"mode": "http", "status": 500}})
    run_dag(scheduled_reboot_dag)
    [row] = log_rows(db)
    assert (row["status"], row["alert_type"]) == ("critical_failure", "reboot_error")
    assert row["error_message"].startswith("Reboot request failed: HTTP 500")
    [message] = sim.messages()
    assert "❌ *ÉCHEC DU REBOOT PLANIFIÉ*" in message["message"]
    assert f"Erreur: {row['error_message']}" in message["message"]


def test_scheduled_reboot_stuck_starting_past_the_deadline_alerts(scheduled_reboot_dag, make_instance, sim, db):
    inst = make_instance(starting_seconds=60)
    run_dag(scheduled_reboot_dag)
    [row] = log_rows(db)
    assert (row["status"], row["state_instance"], row["alert_type"]) == ("critical_failure", "starting", "reboot_not_back")
    assert row["error_message"] == 'Not back as authorized 0.05 min after the reboot (last: state "starting")'
    [message] = sim.messages()
    assert "⏳ *INSTANCE NON REVENUE APRÈS REBOOT PLANIFIÉ*" in message["message"]
    assert "État détecté: starting" in message["message"]
    looks = sim.requests_log(inst.instance_id, "getStateInstance")
    assert 2 <= len(looks) <= 5  # polled about once a second until the 3 s deadline
    assert [r["status"] for r in looks] == [200] * len(looks)  # never rate limited


def test_scheduled_reboot_back_not_authorized_asks_to_relink(scheduled_reboot_dag, make_instance, sim, db):
    make_instance(state_after_reboot="notAuthorized")
    run_dag(scheduled_reboot_dag)
    [row] = log_rows(db)
    assert (row["status"], row["state_instance"], row["alert_type"]) == ("unhealthy", "notAuthorized", "reboot_needs_relink")
    [message] = sim.messages()
    assert "📵 *RECONNEXION WHATSAPP NÉCESSAIRE*" in message["message"]
    assert "Scanner le QR code" in message["message"]


def test_manual_reboot_without_confirmation_reboots_nothing(manual_reboot_dag, make_instance, sim, db, capfd):
    make_instance()
    outcome = run_dag(manual_reboot_dag, run_conf={"instance": "all"})
    assert outcome.state == "failed"
    # One clear message, from the first task: nothing else fails after it.
    assert outcome.tasks == {"pick_instances": "failed", "reboot_instances": "upstream_failed",
                             "wait_for_recovery": "upstream_failed", "conclude": "upstream_failed",
                             "send_alerts": "upstream_failed",
                             "log_results": "upstream_failed", "report": "upstream_failed"}  # fmt: skip
    assert "Reboot not confirmed: nothing was rebooted" in printed(capfd)
    assert sim.reboots() == [] and sim.requests_log() == []
    assert log_rows(db) == []


def test_manual_reboot_confirmed_reboots_the_chosen_instance(manual_reboot_dag, make_instance, monkeypatch, sim, db):
    first, second = two_instances(make_instance, monkeypatch)
    outcome = run_dag(manual_reboot_dag, run_conf={"instance": "green_api_second", "confirm": True})
    assert outcome.state == "success", outcome.tasks
    [row] = log_rows(db)
    assert (row["instance_id"], row["status"], row["trigger_type"]) == (second.instance_id, "rebooted", "manual")
    assert sim.reboots(first.instance_id) == [] and len(sim.reboots(second.instance_id)) == 1


def test_manual_reboot_of_all_instances(manual_reboot_dag, make_instance, monkeypatch, sim, db):
    first, second = two_instances(make_instance, monkeypatch, reboot_result=False)
    run_dag(manual_reboot_dag, run_conf={"instance": "all", "confirm": True})
    rows = log_rows(db)
    assert {r["alert_type"] for r in rows} == {"reboot_refused"} and len(rows) == 2
    assert {r["trigger_type"] for r in rows} == {"manual"}
    assert all("🔄 *REBOOT MANUEL REFUSÉ*" in m["message"] for m in sim.messages())
    assert len(sim.messages()) == 2


def test_manual_reboot_of_an_unknown_instance_is_refused_by_name(manual_reboot_dag, make_instance, sim, capfd):
    make_instance()
    outcome = run_dag(manual_reboot_dag, run_conf={"instance": "green_api_nope", "confirm": True})
    assert outcome.state == "failed"
    assert [task for task, state in outcome.tasks.items() if state == "failed"] == ["pick_instances"]
    assert "instance 'green_api_nope' is not one of the monitored instances" in printed(capfd)
    assert sim.reboots() == []


def test_a_broken_instances_variable_stops_the_daily_reboot_at_once_and_support_is_told(
    scheduled_reboot_dag, make_instance, monkeypatch, sim, db
):
    make_instance()
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", "[green_api_default]")  # not JSON
    outcome = run_dag(scheduled_reboot_dag)
    assert outcome.state == "failed"
    assert [task for task, state in outcome.tasks.items() if state == "failed"] == ["pick_instances"]
    assert sim.reboots() == [] and log_rows(db) == []
    [notice] = sim.messages()
    assert notice["chatId"] == SUPPORT
    assert notice["message"].startswith("⚠️ *MONITORING GREEN API EN ÉCHEC*\n\nLe reboot quotidien des instances a échoué")
    assert "tâche pick_instances, essai 1) : Variable green_api_instances is not valid JSON" in notice["message"]
    assert "check de santé" not in notice["message"]

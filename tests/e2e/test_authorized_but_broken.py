"""'Authorized but broken' (issue 15): runs of the health-check DAG against the simulator, through
simulated time, asserting what support receives and what the health log and the incidents hold.

The instance's state stays ``authorized`` throughout: only what the checks read beyond it changes.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.e2e import test_incidents
from tests.e2e.conftest import log_rows
from tests.e2e.test_incidents import L1, L2, inbox, run_at

pytestmark = pytest.mark.e2e

# The incident tests' fixtures: two support levels, green_api_alerts as the sender, a distinct day.
setup, settings, t0 = test_incidents.setup, test_incidents.settings, test_incidents.t0

HOOK = "https://bot.example.com/hook"


def incidents(db, instance_id):
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT kind, resolved_at IS NULL AS open, checks, reboots, last_error FROM green_api_incidents"
                    " WHERE instance_id = %s ORDER BY id", (instance_id,))  # fmt: skip
        return list(cur.fetchall())


def test_socket_offline_three_checks_opens_an_incident_then_resolves(health_dag, make_instance, sim, db, setup, t0):
    inst = make_instance(socket_status="offline")
    for minute in (0, 5):
        assert run_at(health_dag, t0, minute).state == "success"
    assert inbox(sim, L1) == []  # two readings: the vendor says its status may be wrong once
    assert run_at(health_dag, t0, 10).state == "success"
    [opening] = inbox(sim, L1)
    assert "📡 *SOCKET WHATSAPP HORS LIGNE*" in opening and f"📱 Instance: {inst.instance_id}" in opening
    assert "État détecté: authorized" in opening and "3 contrôle(s) de suite" in opening
    [incident] = incidents(db, inst.instance_id)
    assert (incident["kind"], incident["open"], incident["reboots"]) == ("socket_offline", True, 0)
    assert sim.reboots(inst.instance_id) == []  # never a reboot
    # Not sent through the instance whose socket is down: through green_api_alerts.
    assert {m["instance_id"] for m in sim.messages()} == {setup.instance_id}

    # Still offline 15 minutes after it opened: the second level is told, as for any incident.
    for minute in (15, 20, 25):
        assert run_at(health_dag, t0, minute).state == "success"
    [escalation] = inbox(sim, L2)
    assert "ESCALADE (niveau 2)" in escalation and "📡 *SOCKET WHATSAPP HORS LIGNE*" in escalation
    sim.configure(inst.instance_id, socket_status="online")
    assert run_at(health_dag, t0, 30).state == "success"
    for chat in (L1, L2):
        assert "✅ *INCIDENT RÉSOLU*" in inbox(sim, chat)[-1] and "socket WhatsApp hors ligne" in inbox(sim, chat)[-1]
    assert [i["open"] for i in incidents(db, inst.instance_id)] == [False]
    rows = log_rows(db)
    assert [r["socket_status"] for r in rows] == ["offline"] * 6 + ["online"]
    assert {r["state_instance"] for r in rows} == {"authorized"}


def test_settings_drift_names_each_key_never_a_secret_and_resolves(
    health_dag, make_instance, sim, db, setup, t0, settings
):  # fmt: skip
    secret = "hook-secret-value-0042"
    expected = {"webhookUrl": HOOK, "incomingWebhook": "yes", "webhookUrlToken": secret,
                "delaySendMessagesMilliseconds": 500}  # fmt: skip
    good = {"webhookUrl": HOOK, "incomingWebhook": "yes", "webhookUrlToken": secret,
            "delaySendMessagesMilliseconds": 500}  # fmt: skip
    inst = make_instance(settings=good, extra={"expected_settings": expected})
    settings(settings_check_minutes=60)
    assert run_at(health_dag, t0, 0).state == "success"
    assert inbox(sim, L1) == []
    sim.configure(inst.instance_id, settings={**good, "webhookUrl": "https://other.example.com/x",
                                              "incomingWebhook": "no", "webhookUrlToken": "changed-by-someone"})
    assert run_at(health_dag, t0, 5).state == "success"  # not due: read 5 minutes ago
    assert inbox(sim, L1) == []
    assert len(sim.requests_log(inst.instance_id, "getSettings")) == 1
    assert run_at(health_dag, t0, 60).state == "success"
    [opening] = inbox(sim, L1)
    assert "⚙️ *RÉGLAGES DE L'INSTANCE MODIFIÉS*" in opening
    assert f'webhookUrl: attendu "{HOOK}", actuel "https://other.example.com/x"' in opening
    assert 'incomingWebhook: attendu "yes", actuel "no"' in opening
    assert "webhookUrlToken: différent de la valeur attendue (secret, non affiché)" in opening
    assert "delaySendMessagesMilliseconds" not in opening  # 500 matches its number
    assert secret not in opening and "changed-by-someone" not in opening
    [incident] = incidents(db, inst.instance_id)
    assert (incident["kind"], incident["open"]) == ("settings_drift", True)
    for value in (secret, "changed-by-someone"):
        assert db.execute("SELECT count(*) FROM green_api_incidents WHERE last_error LIKE %s",
                          (f"%{value}%",)).fetchone() == (0,)  # fmt: skip
    # A healthy state does not resolve it: the settings do.
    assert run_at(health_dag, t0, 65).state == "success"
    assert [i["open"] for i in incidents(db, inst.instance_id)] == [True]
    sim.configure(inst.instance_id, settings=good)
    assert run_at(health_dag, t0, 120).state == "success"
    assert [i["open"] for i in incidents(db, inst.instance_id)] == [False]
    assert "RÉSOLU" in inbox(sim, L1)[-1].upper()
    assert sim.reboots(inst.instance_id) == []
    assert [r["settings_status"] for r in log_rows(db)] == ["match", None, "drift", None, "match"]


def test_stuck_queue_alerts_with_count_and_duration_in_english(
    health_dag, make_instance, sim, db, setup, t0, settings
):  # fmt: skip
    settings(language="en", queue_alert_threshold=50, queue_alert_checks=3)
    inst = make_instance(queue_length=60, queue_growth=1)
    for minute in (0, 5):
        assert run_at(health_dag, t0, minute).state == "success"
    assert inbox(sim, L1) == []
    assert run_at(health_dag, t0, 10).state == "success"
    [opening] = inbox(sim, L1)
    assert "📤 *OUTGOING QUEUE STUCK*" in opening
    assert "63 message(s) waiting for" in opening and "(3 check(s) without going down)" in opening
    [incident] = incidents(db, inst.instance_id)
    assert (incident["kind"], incident["open"], incident["reboots"]) == ("outgoing_queue_stuck", True, 0)
    assert sim.reboots(inst.instance_id) == []  # reboot_on_stuck_queue is false by default
    # The queue drains: the messages move, the incident resolves.
    sim.configure(inst.instance_id, queue_growth=-40)
    assert run_at(health_dag, t0, 15).state == "success"
    assert [i["open"] for i in incidents(db, inst.instance_id)] == [False]
    assert "RESOLVED" in inbox(sim, L1)[-1].upper()
    assert [r["queue_length"] for r in log_rows(db)] == [61, 62, 63, 23]


def test_queue_under_the_threshold_or_going_down_opens_nothing(health_dag, make_instance, sim, db, setup, t0):
    inst = make_instance(queue_length=49, queue_growth=0)
    for minute in (0, 5, 10):
        assert run_at(health_dag, t0, minute).state == "success"
    sim.configure(inst.instance_id, queue_length=200, queue_growth=-5)
    for minute in (15, 20, 25, 30):
        assert run_at(health_dag, t0, minute).state == "success"
    assert incidents(db, inst.instance_id) == []
    assert inbox(sim, L1) == []
    assert [r["queue_length"] for r in log_rows(db)] == [49, 49, 49, 195, 190, 185, 180]


def test_stuck_queue_reboots_only_with_reboot_on_stuck_queue(health_dag, make_instance, sim, db, setup, t0, settings):
    settings(reboot_on_stuck_queue=True, queue_alert_checks=2)
    inst = make_instance(queue_length=80)
    for minute in (0, 5):
        assert run_at(health_dag, t0, minute).state == "success"
    assert len(sim.reboots(inst.instance_id)) == 1  # at the second check in a row, with the opening
    assert "📤 *FILE D'ENVOI BLOQUÉE*" in inbox(sim, L1)[0]
    rows = log_rows(db)
    assert [(r["status"], r["reboot_triggered"]) for r in rows] == [("healthy", False), ("rebooted", True)]
    assert rows[1]["error_message"] == "outgoing queue stuck: 80 messages for 2 checks"
    assert run_at(health_dag, t0, 10).state == "success"  # still stuck: the 30-minute cooldown holds
    assert len(sim.reboots(inst.instance_id)) == 1


def test_a_short_queue_ends_the_streak_even_when_its_check_is_settled_by_its_shard(
    health_dag, make_instance, sim, db, setup, t0
):  # fmt: skip
    inst = make_instance(queue_length=60)
    assert run_at(health_dag, t0, 0).state == "success"  # streak 1
    sim.configure(inst.instance_id, queue_length=10)  # healthy and quiet, but a streak is running
    assert run_at(health_dag, t0, 5).state == "success"
    sim.configure(inst.instance_id, queue_length=60)
    for minute in (10, 15):
        assert run_at(health_dag, t0, minute).state == "success"
    assert incidents(db, inst.instance_id) == []  # 2 in a row since the short queue, not 3
    streak = db.execute("SELECT queue_streak FROM green_api_instance_status WHERE instance_id = %s",
                        (inst.instance_id,)).fetchone()  # fmt: skip
    assert streak == (2,)
    assert run_at(health_dag, t0, 20).state == "success"
    assert [i["kind"] for i in incidents(db, inst.instance_id)] == ["outgoing_queue_stuck"]

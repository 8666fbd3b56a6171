"""Sequences of health-check runs through simulated time (the run's logical time).

Each test asserts the exact messages each contact received, as support would see them.
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pendulum
import psycopg
import pytest

from greenapi.domain.incidents import format_duration
from tests.e2e.conftest import log_rows, run_dag
from tests.e2e.test_health_check_dag import FAST, HANG_TWICE

pytestmark = pytest.mark.e2e

L1 = "33600000001@c.us"  # notification_priority 1
L2 = "33600000002@c.us"  # notification_priority 2
_days = itertools.count()


@pytest.fixture
def t0():
    """A distinct, past noon (UTC) per test."""
    return pendulum.datetime(2026, 2, 1, 12, 0, tz="UTC").add(days=next(_days))


@pytest.fixture
def settings(monkeypatch):
    def set_(**values):
        monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps({**FAST, **values}))

    set_()
    return set_


@pytest.fixture
def setup(add_contact, make_instance, settings, alert_link):
    add_contact("Niveau 1", L1, 1)
    add_contact("Niveau 2", L2, 2)
    return make_instance("green_api_alerts")


def run_at(dag, t0, minutes):
    when = t0 + timedelta(minutes=minutes)
    return run_dag(dag, logical_date=when, run_after=when)


def inbox(sim, chat_id):
    return [m["message"] for m in sim.messages() if m["chatId"] == chat_id]


def shown(moment, zone="Europe/Paris"):
    """A time as the messages show it."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%d/%m/%Y %H:%M:%S %Z")


def lasted(first, last, language="fr"):
    """The duration the messages give between two checks (real times)."""
    return format_duration(last["checked_at"] - first["checked_at"], language)


def test_one_alert_then_silence(health_dag, make_instance, sim, db, setup, t0):
    inst = make_instance(state="notAuthorized")
    for minute in (0, 5, 10):
        assert run_at(health_dag, t0, minute).state == "success"
    [opening] = inbox(sim, L1)
    assert "⚠️ *INSTANCE NON AUTORISÉE*" in opening and f"📱 Instance: {inst.instance_id}" in opening
    assert inbox(sim, L2) == []
    rows = log_rows(db)
    assert [r["support_notified"] for r in rows] == [True, False, False]
    assert len({r["incident_id"] for r in rows}) == 1 and rows[0]["incident_id"] is not None


def test_escalation_at_15_minutes(health_dag, make_instance, sim, db, setup, t0):
    make_instance(state="notAuthorized")
    for minute in (0, 10):
        run_at(health_dag, t0, minute)
    assert inbox(sim, L2) == []
    run_at(health_dag, t0, 15)  # 15 minutes of logical time; how long it lasted is the checks' real times
    [escalation] = inbox(sim, L2)
    first, _, last = log_rows(db)
    assert escalation.startswith(f"⬆️ *ESCALADE (niveau 2)*\nIncident toujours en cours depuis {lasted(first, last)}."
                                 f"\n\n🚨 *ALERTE GREEN API* 🚨\n\n⏰ {shown(last['checked_at'])}\n")
    assert "⚠️ *INSTANCE NON AUTORISÉE*" in escalation
    assert len(inbox(sim, L1)) == 1  # level 1 is not told again


def test_reminder_every_60_minutes_says_how_long(health_dag, make_instance, sim, db, setup, t0, alert_link):
    inst = make_instance(state="notAuthorized")
    for minute in (0, 15, 59):
        run_at(health_dag, t0, minute)
    assert len(inbox(sim, L1)) == 1
    run_at(health_dag, t0, 60)
    reminder = inbox(sim, L1)[-1]
    first, *_, last = log_rows(db)
    assert reminder == (
        f"🚨 *ALERTE GREEN API* 🚨\n\n⏰ {shown(last['checked_at'])}\n"
        f"📱 Instance: {inst.instance_id}\n\n🔁 *RAPPEL: INCIDENT EN COURS*\n\nProblème: instance non autorisée\n"
        f"Depuis: {lasted(first, last)} (ouvert le {shown(first['checked_at'])})\nDernier état: notAuthorized\n"
        'Dernière erreur: Instance state is "notAuthorized" instead of "authorized"\nReboots: 0\n\n'
        f"🔗 Dashboard: {alert_link}"
    )
    assert inbox(sim, L2)[-1] == reminder  # the escalated level is reminded too
    assert len(inbox(sim, L2)) == 2  # the escalation at 15, then the reminder at 60


def test_resolution_tells_everyone_alerted_the_total_downtime(health_dag, make_instance, sim, db, setup, t0):
    inst = make_instance(state="notAuthorized")
    for minute in (0, 15):
        run_at(health_dag, t0, minute)
    sim.configure(inst.instance_id, state="authorized")
    run_at(health_dag, t0, 65)
    first, _, healthy = log_rows(db)
    for chat in (L1, L2):
        resolution = inbox(sim, chat)[-1]
        assert "✅ *INCIDENT RÉSOLU*" in resolution
        assert (f"Durée totale: {lasted(first, healthy)} (du {shown(first['checked_at'])}"
                f" au {shown(healthy['checked_at'])})") in resolution
        assert "Actions: aucun reboot" in resolution
    incidents = db.execute("SELECT opened_at, resolved_at, resolution_notified_at FROM green_api_incidents").fetchall()
    [(opened, resolved, told)] = incidents
    assert (resolved - opened) == timedelta(minutes=65) and told is not None  # logical times: the timing


def test_failure_threshold_needs_consecutive_failures(health_dag, make_instance, sim, db, setup, settings, t0):
    settings(failure_threshold=2)
    make_instance(state="notAuthorized")
    run_at(health_dag, t0, 0)
    assert sim.messages() == []
    run_at(health_dag, t0, 5)
    assert len(inbox(sim, L1)) == 1


def test_alerts_are_routed_around_a_failing_sender(health_dag, make_instance, sim, db, setup, settings, t0):
    sim.configure(setup.instance_id, faults={"sendMessage": {"mode": "http", "status": 500}})
    backup = make_instance("green_api_backup")
    settings(alert_senders=["green_api_backup"])
    make_instance(state="blocked")
    outcome = run_at(health_dag, t0, 0)
    assert outcome.state == "success", outcome.tasks
    assert [m["chatId"] for m in sim.messages(backup.instance_id)] == [L1]
    tried = db.execute("SELECT sender, ok FROM green_api_alert_deliveries ORDER BY id").fetchall()
    assert tried == [("green_api_alerts", False)] * 3 + [("green_api_backup", True)]


def test_email_fallback_when_no_whatsapp_sender_works(
    health_dag, make_instance, sim, db, add_contact, settings, smtp_server, monkeypatch, t0
):
    port, mailbox = smtp_server
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "monitor@example.org"}}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))
    db.execute("INSERT INTO system_support_contacts (full_name, phone_number, notification_priority, email)"
               " VALUES ('Astreinte', %s, 1, 'oncall@example.org')", (L1,))
    sender = make_instance("green_api_alerts", faults={"sendMessage": {"mode": "http", "status": 401}})
    inst = make_instance(state="notAuthorized")
    outcome = run_at(health_dag, t0, 0)
    assert outcome.state == "success", outcome.tasks
    [(recipients, mail)] = mailbox.messages
    assert recipients == ["oncall@example.org"]
    assert inst.instance_id in mail["Subject"]
    assert "INSTANCE NON AUTORISÉE" in mail.get_body(("html", "plain")).get_content()
    assert sim.messages(sender.instance_id) == []
    channels = db.execute("SELECT channel, ok FROM green_api_alert_deliveries ORDER BY id").fetchall()
    assert channels == [("whatsapp", False), ("email", True)]  # a 401 is not retried
    assert log_rows(db)[0]["support_notified"] is True


def test_failing_check_inside_the_maintenance_window_opens_nothing(
    health_dag, make_instance, sim, db, setup, monkeypatch, t0
):
    at = t0.in_timezone("Europe/Paris")
    schedule = {"time": at.strftime("%H:%M"), "timezone": "Europe/Paris", "enabled": True}
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE", json.dumps(schedule))
    make_instance(state="notAuthorized")
    run_at(health_dag, t0, 3)
    [row] = log_rows(db)
    assert (row["status"], row["in_maintenance_window"], row["incident_id"]) == ("unhealthy", True, None)
    assert sim.messages() == []
    run_at(health_dag, t0, 12)  # past the 10-minute settle time
    assert len(inbox(sim, L1)) == 1
    assert log_rows(db)[-1]["in_maintenance_window"] is False


@pytest.mark.slow
def test_reboot_cooldown_and_daily_cap(health_dag, make_instance, sim, db, setup, t0):
    inst = make_instance(faults={"getStateInstance": {"mode": "hang", "seconds": 3}})
    for minute in (0, 10, 30, 60, 90):
        run_at(health_dag, t0, minute)
    assert len(sim.reboots(inst.instance_id)) == 3  # at 0, 30 and 60: 10 is in the cooldown, 90 past the cap
    rows = log_rows(db)
    assert [r["reboot_triggered"] for r in rows] == [True, False, True, True, False]
    assert "cooldown" in rows[1]["error_message"]
    assert rows[4]["alert_type"] == "reboot_loop"
    opening, reminder, loop = inbox(sim, L1)  # one incident for the outage, its reminder, the loop
    assert "⏳ *INSTANCE NON REVENUE APRÈS REBOOT AUTOMATIQUE*" in opening
    assert "🔁 *RAPPEL: INCIDENT EN COURS*" in reminder and "Reboots: 3" in reminder
    assert "🔴 *CRITIQUE*" in loop and "🔁 *BOUCLE DE REBOOTS*" in loop
    assert "3 automatic reboots in 24 h: cap of 3 reached" in loop


def test_a_resolution_names_every_problem_of_the_incident_and_what_was_done(health_dag, make_instance, sim, db,
                                                                            setup, t0, alert_link):  # fmt: skip
    """Not authorized, then no answer and a reboot that brings it back: the resolution names both
    problems, in order, when each was first seen (times with their zone) and what was done."""
    inst = make_instance(state="notAuthorized", starting_seconds=1)
    run_at(health_dag, t0, 0)
    sim.configure(inst.instance_id, state="authorized", faults={"getStateInstance": HANG_TWICE})
    run_at(health_dag, t0, 5)
    first, rebooted = log_rows(db)
    assert (rebooted["status"], rebooted["reboot_success"]) == ("rebooted", True)
    opening, resolution = inbox(sim, L1)

    def hm(row):
        return row["checked_at"].astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M %Z")

    assert resolution == (
        f"✅ *GREEN API* ✅\n\n⏰ {shown(rebooted['checked_at'])}\n📱 Instance: {inst.instance_id}\n\n"
        "✅ *INCIDENT RÉSOLU*\n\nProblème: instance non autorisée → pas de réponse\n"
        f"Durée totale: {lasted(first, rebooted)} (du {shown(first['checked_at'])} au {shown(rebooted['checked_at'])})\n"
        "Actions: 1 reboot(s) automatique(s), 1 réussi(s)\n\nDéroulé:\n"
        f"1. {hm(first)}: instance non autorisée (notAuthorized); aucun reboot\n"
        f"2. {hm(rebooted)}: pas de réponse; reboot automatique, réussi\n"
        f"3. {hm(rebooted)}: rétablie\n\n🔗 Dashboard: {alert_link}"
    )
    [course] = db.execute("SELECT course FROM green_api_incidents").fetchone()
    assert [(e["problem"], e["reboot_ok"]) for e in course] == [("instance_not_authorized", None), ("no_answer", True)]


def test_starting_for_six_minutes_is_rebooted(health_dag, make_instance, sim, db, setup, t0):
    inst = make_instance(state="starting", starting_seconds=1)
    run_at(health_dag, t0, 0)
    assert sim.reboots() == []
    run_at(health_dag, t0, 6)
    assert len(sim.reboots(inst.instance_id)) == 1
    last = log_rows(db)[-1]
    assert (last["status"], last["reboot_triggered"], last["reboot_success"]) == ("rebooted", True, True)
    resolution = inbox(sim, L1)[-1]
    assert "✅ *INCIDENT RÉSOLU*" in resolution and "1 reboot(s) automatique(s), 1 réussi(s)" in resolution


def test_when_every_channel_fails_the_next_run_tries_again(health_dag, make_instance, sim, db, setup, t0):
    sim.configure(setup.instance_id, faults={"sendMessage": {"mode": "http", "status": 401}})
    make_instance(state="notAuthorized")
    first = run_at(health_dag, t0, 0)
    assert (first.state, first.tasks["send_alerts"]) == ("failed", "failed")
    assert inbox(sim, L1) == []
    sim.configure(setup.instance_id, faults={})
    second = run_at(health_dag, t0, 5)
    assert second.state == "success", second.tasks
    [opening] = inbox(sim, L1)
    assert "⚠️ *INSTANCE NON AUTORISÉE*" in opening
    assert [r["support_notified"] for r in log_rows(db)] == [False, True]


def test_messages_in_english(health_dag, make_instance, sim, db, setup, settings, t0):
    settings(language="en", message_timezone="UTC")
    inst = make_instance(state="notAuthorized")
    run_at(health_dag, t0, 0)
    [opening] = inbox(sim, L1)
    assert opening.startswith("🚨 *GREEN API ALERT* 🚨\n\n⏰ ")
    assert f"📱 Instance: {inst.instance_id}\n\n⚠️ *INSTANCE NOT AUTHORIZED*\n\nState: notAuthorized" in opening


def incident_rows(db):
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return list(cur.execute("SELECT * FROM green_api_incidents ORDER BY id").fetchall())


def streak_start(db, instance_id):
    row = db.execute("SELECT streak_started_at FROM green_api_instance_status WHERE instance_id = %s",
                     (instance_id,)).fetchone()  # fmt: skip
    return row[0]


def test_messages_and_incidents_give_the_real_times_of_the_checks(
    health_dag, make_instance, sim, db, setup, settings, t0, alert_link
):
    """Runs of 12:00 ... 13:10 (logical); what support reads are the times the checks were made."""
    settings(failure_threshold=2)
    inst = make_instance(state="notAuthorized")
    run_at(health_dag, t0, 0)  # the first failing check: no incident yet, its time is kept
    [first] = log_rows(db)
    assert incident_rows(db) == [] and streak_start(db, inst.instance_id) == first["checked_at"]
    for minute in (5, 20, 65):  # opens at the second failure, escalates at 20, reminds at 65
        run_at(health_dag, t0, minute)
    sim.configure(inst.instance_id, state="authorized")
    run_at(health_dag, t0, 70)
    first, opened, escalated, reminded, healthy = log_rows(db)
    opening, reminder, resolution = inbox(sim, L1)
    escalation, reminder_2, resolution_2 = inbox(sim, L2)
    assert (reminder_2, resolution_2) == (reminder, resolution)

    # Each header is the time of the check it reports on, never the run's logical time.
    assert opening.startswith(f"🚨 *ALERTE GREEN API* 🚨\n\n⏰ {shown(opened['checked_at'])}\n")
    assert shown(t0.add(minutes=5)) not in opening
    assert escalation.startswith(
        f"⬆️ *ESCALADE (niveau 2)*\nIncident toujours en cours depuis {lasted(first, escalated)}.\n\n"
        f"🚨 *ALERTE GREEN API* 🚨\n\n⏰ {shown(escalated['checked_at'])}\n"
    )
    error = 'Instance state is "notAuthorized" instead of "authorized"'
    assert reminder == (
        f"🚨 *ALERTE GREEN API* 🚨\n\n⏰ {shown(reminded['checked_at'])}\n📱 Instance: {inst.instance_id}\n\n"
        "🔁 *RAPPEL: INCIDENT EN COURS*\n\nProblème: instance non autorisée\n"
        f"Depuis: {lasted(first, reminded)} (ouvert le {shown(first['checked_at'])})\nDernier état: notAuthorized\n"
        f"Dernière erreur: {error}\nReboots: 0\n\n🔗 Dashboard: {alert_link}"
    )
    assert resolution == (
        f"✅ *GREEN API* ✅\n\n⏰ {shown(healthy['checked_at'])}\n📱 Instance: {inst.instance_id}\n\n"
        "✅ *INCIDENT RÉSOLU*\n\nProblème: instance non autorisée\n"
        f"Durée totale: {lasted(first, healthy)} (du {shown(first['checked_at'])} au {shown(healthy['checked_at'])})\n"
        f"Actions: aucun reboot\n\n🔗 Dashboard: {alert_link}"
    )
    # Stored: the real times next to the logical ones, which drove the escalation and the reminder.
    [incident] = incident_rows(db)
    assert (incident["first_failed_at"], incident["recovered_at"]) == (first["checked_at"], healthy["checked_at"])
    assert (incident["opened_at"], incident["resolved_at"]) == (t0.add(minutes=5), t0.add(minutes=70))
    assert {r["incident_id"] for r in (opened, escalated, reminded)} == {incident["id"]}
    assert streak_start(db, inst.instance_id) == healthy["checked_at"]


def test_resolution_in_english_gives_the_real_times(health_dag, make_instance, sim, db, setup, settings, t0, alert_link):
    settings(language="en", message_timezone="UTC")
    inst = make_instance(state="notAuthorized")
    run_at(health_dag, t0, 0)
    sim.configure(inst.instance_id, state="authorized")
    run_at(health_dag, t0, 10)
    first, healthy = log_rows(db)
    _, resolution = inbox(sim, L1)
    assert resolution == (
        f"✅ *GREEN API* ✅\n\n⏰ {shown(healthy['checked_at'], 'UTC')}\n📱 Instance: {inst.instance_id}\n\n"
        "✅ *INCIDENT RESOLVED*\n\nProblem: instance not authorized\n"
        f"Total downtime: {lasted(first, healthy, 'en')} (from {shown(first['checked_at'], 'UTC')}"
        f" to {shown(healthy['checked_at'], 'UTC')})\nActions: no reboot\n\n🔗 Dashboard: {alert_link}"
    )


def test_one_instance_failing_its_reboot_does_not_silence_the_others(health_dag, make_instance, sim, db, setup, t0,
                                                                     monkeypatch):  # fmt: skip
    """Two unreachable instances; claiming the second one's reboot fails in PostgreSQL (a trigger
    refuses it). The first is rebooted and alerted; the second is alerted, its reboot named as not
    made; nothing is rebooted twice."""
    hang = {"getStateInstance": {"mode": "hang", "seconds": 3}}
    first = make_instance("green_api_default", faults=hang)
    second = make_instance("green_api_second", faults=hang)
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(["green_api_default", "green_api_second"]))
    db.execute(f"""
        CREATE FUNCTION refuse_claim_for_test() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
          IF NEW.instance_id = '{second.instance_id}' AND cardinality(NEW.auto_reboots) > 0 THEN
            RAISE EXCEPTION 'claim refused by the test';
          END IF;
          RETURN NEW;
        END $$""")  # fmt: skip
    db.execute("CREATE TRIGGER refuse_claim BEFORE INSERT OR UPDATE ON green_api_instance_status"
               " FOR EACH ROW EXECUTE FUNCTION refuse_claim_for_test()")  # fmt: skip
    db.commit()
    try:
        outcome = run_at(health_dag, t0, 0)
    finally:
        db.execute("DROP TRIGGER refuse_claim ON green_api_instance_status")
        db.execute("DROP FUNCTION refuse_claim_for_test()")
        db.commit()
    assert outcome.tasks["reboot_instances"] == "success" and outcome.tasks["send_alerts"] == "success", outcome.tasks
    assert len(sim.reboots(first.instance_id)) == 1 and sim.reboots(second.instance_id) == []
    rows = {r["instance_id"]: r for r in log_rows(db)}
    assert (rows[first.instance_id]["reboot_triggered"], rows[first.instance_id]["support_notified"]) == (True, True)
    assert rows[second.instance_id]["reboot_success"] is False and rows[second.instance_id]["support_notified"] is True
    assert "reboot not requested: " in rows[second.instance_id]["error_message"]
    assert "claim refused by the test" in rows[second.instance_id]["error_message"]
    messages = inbox(sim, L1)
    assert len(messages) == 2
    assert any(first.instance_id in m for m in messages) and any(second.instance_id in m for m in messages)


def test_a_reboot_task_that_fails_as_a_whole_silences_no_instance(health_dag, make_instance, sim, db, setup, t0,
                                                                 monkeypatch):  # fmt: skip
    """reboot_instances crashes before it says what it did (here: an error raised inside it, as a
    lost worker would leave it). The conclusion still runs: both unreachable instances are alerted,
    their reboot named as unknown, and the run's report names the task."""
    from greenapi.tasks import health_check

    hang = {"getStateInstance": {"mode": "hang", "seconds": 3}}
    first = make_instance("green_api_default", faults=hang)
    second = make_instance("green_api_second", faults=hang)
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(["green_api_default", "green_api_second"]))

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost (raised by the test)")

    monkeypatch.setattr(health_check, "reboot_instances", crash)
    outcome = run_at(health_dag, t0, 0)
    assert outcome.tasks["reboot_instances"] == "failed", outcome.tasks
    assert (outcome.tasks["conclude"], outcome.tasks["send_alerts"], outcome.tasks["log_results"]) == (
        "success", "success", "success"), outcome.tasks  # fmt: skip
    assert outcome.tasks["report"] == "failed" and outcome.state == "failed"
    assert sim.reboots() == []
    rows = {r["instance_id"]: r for r in log_rows(db)}
    for inst in (first, second):
        row = rows[inst.instance_id]
        assert (row["status"], row["support_notified"], row["reboot_success"]) == ("critical_failure", True, False)
        assert "reboot_instances did not complete" in row["error_message"]
    alerts = [m for m in inbox(sim, L1) if "ALERTE GREEN API" in m]
    assert len(alerts) == 2
    assert any(first.instance_id in m for m in alerts) and any(second.instance_id in m for m in alerts)
    # and the run's failure notice (GreenApiNotifier on report) names the task
    [notice] = [m for m in inbox(sim, L1) if "ALERTE GREEN API" not in m]
    assert "reboot_instances did not complete" in notice

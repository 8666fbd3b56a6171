"""End-to-end runs of green_api_health_check: Airflow, the simulator over HTTP, PostgreSQL.

Each test asserts what support would check: the rows in green_api_health_logs, the exact
WhatsApp messages the simulator received, and the reboots it received.
"""

from __future__ import annotations

import json
from urllib.parse import quote
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.e2e.conftest import log_rows, printed, run_dag

pytestmark = pytest.mark.e2e

SUPPORT_1 = "33600000001@c.us"
SUPPORT_2 = "33600000002@c.us"
HANG = {"mode": "hang", "seconds": 5}
# The check and its confirming re-check hang; after the reboot the instance answers again.
HANG_TWICE = {**HANG, "times": 2}
# Short waits: retries, the re-check, and the recovery check after a reboot (3 s, every second).
FAST = {"send_backoff_seconds": 0.05, "recheck_timeout_seconds": 1, "reboot_poll_seconds": 1,
        "reboot_verify_minutes": 0.05}

NOT_AUTHORIZED_TEXT = """🚨 *ALERTE GREEN API* 🚨

⏰ {time}
📱 Instance: {instance}

⚠️ *INSTANCE NON AUTORISÉE*

État détecté: {state}
Erreur: {error}

ℹ️ *PAS DE REBOOT AUTOMATIQUE*
Le reboot déconnecte WhatsApp (nécessite scan QR)

⚠️ *ACTION SUGGÉRÉE:*
1. Vérifier le dashboard Green API
2. Reconnecter WhatsApp si nécessaire
3. Ou attendre la reconnexion automatique

🔗 Dashboard: {dashboard}"""

REBOOT_FAILED_TEXT = """🚨 *ALERTE GREEN API* 🚨

⏰ {time}
📱 Instance: {instance}

❌ *TIMEOUT + REBOOT ÉCHOUÉ*

Erreur: {error}
Temps réponse: {ms}ms

⚠️ *ACTION REQUISE:*
1. L'instance ne répond plus
2. Reboot automatique a échoué
3. Intervention manuelle critique

🔗 Dashboard: {dashboard}"""

COMPLETE_FAILURE_TEXT = """🚨 *ALERTE GREEN API* 🚨

⏰ {time}
📱 Instance: {instance}

🔴 *ÉCHEC COMPLET DU SYSTÈME*

Erreur: {error}

⚠️ *ACTION IMMÉDIATE REQUISE:*
1. Instance complètement inaccessible
2. Reboot impossible
3. Vérifier dashboard Green API
4. Contact support Green API si nécessaire

🔗 Dashboard: {dashboard}"""


@pytest.fixture
def contacts(add_contact):
    # Same priority level: both get the first alert of an incident (escalation has its own tests).
    add_contact("Support Principal", SUPPORT_1, 1)
    add_contact("Support Secondaire", SUPPORT_2, 1)
    add_contact("Ancien Support", "33600000003@c.us", 1, active=False)
    add_contact("Astreinte N2", "33600000009@c.us", 2)


@pytest.fixture(autouse=True)
def sender(make_instance, monkeypatch, alert_link):
    """The alert-sending instance (connection green_api_alerts); short retry backoff; Airflow's base_url."""
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps(FAST))
    return make_instance("green_api_alerts")


def paris(row) -> str:
    return row["checked_at"].astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y %H:%M:%S %Z")


def only_row(db):
    rows = log_rows(db)
    assert len(rows) == 1, rows
    return rows[0]


def sent(sim, instance_id=None):
    return [(m["chatId"], m["message"]) for m in sim.messages(instance_id)]


def test_healthy_instance_logs_one_row_and_alerts_nobody(health_dag, make_instance, sim, db, contacts):
    inst = make_instance(state="authorized")
    outcome = run_dag(health_dag)
    assert outcome.state == "success", outcome.tasks
    assert outcome.tasks["reboot_instances"] == "skipped"
    row = only_row(db)
    assert row["status"] == "healthy"
    assert row["state_instance"] == "authorized"
    assert row["instance_id"] == inst.instance_id
    assert row["connection_id"] == "green_api_default"
    assert row["reboot_triggered"] is False
    assert row["reboot_success"] is None
    assert row["support_notified"] is False
    assert row["support_notification_sent_at"] is None
    assert row["trigger_type"] == "manual"
    assert row["run_id"] == outcome.run_id
    assert 0 <= row["response_time_ms"] < 1000
    assert sim.messages() == []
    assert sim.reboots() == []


@pytest.mark.parametrize(
    ("state", "shown", "error"),
    [
        ("notAuthorized", "notAuthorized", 'Instance state is "notAuthorized" instead of "authorized"'),
        ("blocked", "blocked", 'Instance state is "blocked" instead of "authorized"'),
        ("sleepMode", "sleepMode", 'Instance state is "sleepMode" instead of "authorized"'),
        ("starting", "starting", 'Instance state is "starting" instead of "authorized"'),
        ("yellowCard", "yellowCard", 'Instance state is "yellowCard" instead of "authorized"'),
        (None, "null", 'Instance state is null instead of "authorized" (instance still being created?)'),
        ("pendingMagic", "pendingMagic", 'Instance state is "pendingMagic", a value the Green API does not document'),
    ],
)
def test_not_authorized_states_alert_every_contact_without_reboot(
    health_dag, make_instance, sim, db, contacts, state, shown, error, sender, alert_link
):
    inst = make_instance(state=state)
    outcome = run_dag(health_dag)
    assert outcome.state == "success", outcome.tasks
    row = only_row(db)
    assert row["status"] == "unhealthy"
    assert row["state_instance"] == (None if state is None else state)
    assert row["error_message"] == error
    assert row["reboot_triggered"] is False
    assert row["alert_type"] == "instance_not_authorized"
    assert row["support_notified"] is True
    assert row["support_notification_sent_at"] is not None
    text = NOT_AUTHORIZED_TEXT.format(
        time=paris(row), instance=inst.instance_id, state=shown, error=error, dashboard=alert_link
    )
    if state == "blocked":  # the vendor's "account banned": the alert is marked critical
        text = text.replace("\n\n⚠️ *INSTANCE NON AUTORISÉE*", "\n\n🔴 *CRITIQUE*\n\n⚠️ *INSTANCE NON AUTORISÉE*", 1)
    # The first priority level, inactive contact skipped; through green_api_alerts, never the failing instance.
    assert sent(sim, sender.instance_id) == [(SUPPORT_1, text), (SUPPORT_2, text)]
    assert sent(sim, inst.instance_id) == []
    assert sim.reboots() == []


@pytest.mark.parametrize(
    ("extra", "link"),
    [({}, None),  # None: the dashboard under Airflow's [api] base_url (alert_link)
     ({"dashboard_url": "https://ops.example.org/green"}, "https://ops.example.org/green")],
)
def test_the_alerts_dashboard_link_opens_the_airflow_dashboard_unless_the_connection_sets_one(
    health_dag, make_instance, sim, db, contacts, sender, alert_link, extra, link
):
    make_instance(state="notAuthorized", extra=extra)
    assert run_dag(health_dag).state == "success"
    texts = [text for _, text in sent(sim, sender.instance_id)]
    assert len(texts) == 2 and all(text.endswith(f"\n\n🔗 Dashboard: {link or alert_link}") for text in texts)


def test_starting_reported_as_http_400_counts_as_starting(health_dag, make_instance, sim, db, contacts, sender):
    make_instance(
        faults={"getStateInstance": {"mode": "http", "status": 400, "body": "instance in starting process try later"}}
    )
    run_dag(health_dag)
    row = only_row(db)
    assert (row["status"], row["state_instance"], row["reboot_triggered"]) == ("unhealthy", "starting", False)
    assert [chat for chat, _ in sent(sim, sender.instance_id)] == [SUPPORT_1, SUPPORT_2]


def test_hang_then_reboot_ok_is_rebooted_without_alert(health_dag, make_instance, sim, db, contacts):
    inst = make_instance(faults={"getStateInstance": HANG_TWICE}, starting_seconds=1)
    outcome = run_dag(health_dag)
    assert outcome.state == "success", outcome.tasks
    assert outcome.tasks["reboot_instances"] == "success"
    row = only_row(db)
    assert row["status"] == "rebooted"
    assert row["error_message"] == "Connection timeout"
    assert (row["reboot_triggered"], row["reboot_success"], row["support_notified"]) == (True, True, False)
    assert 1000 <= row["response_time_ms"] < 2500
    assert [r["isReboot"] for r in sim.reboots(inst.instance_id)] == [True]
    assert sim.messages() == []
    # check, confirming re-check, then looks until it answered "authorized" again
    looks = sim.requests_log(inst.instance_id, "getStateInstance")
    assert [r["fault"] for r in looks[:2]] == ["hang", "hang"] and looks[-1]["status"] == 200
    assert outcome.tasks["wait_for_recovery"] == "success"


def test_hang_then_reboot_refused_alerts_timeout_and_reboot_failed(
    health_dag, make_instance, sim, db, contacts, sender, alert_link
):
    inst = make_instance(faults={"getStateInstance": HANG}, reboot_result=False)
    outcome = run_dag(health_dag)
    assert outcome.state == "success", outcome.tasks
    row = only_row(db)
    assert row["status"] == "critical_failure"
    assert (row["reboot_triggered"], row["reboot_success"]) == (True, False)
    assert row["alert_type"] == "timeout_and_reboot_failed"
    assert row["error_message"] == "Connection timeout | Reboot refused (isReboot=False)"
    text = REBOOT_FAILED_TEXT.format(
        time=paris(row), instance=inst.instance_id, error=row["error_message"], ms=row["response_time_ms"],
        dashboard=alert_link,
    )
    assert sent(sim, sender.instance_id) == [(SUPPORT_1, text), (SUPPORT_2, text)]
    assert len(sim.reboots(inst.instance_id)) == 1


@pytest.mark.parametrize(
    ("reboot_fault", "reboot_error"),
    [
        ({"mode": "http", "status": 500}, "HTTP 500"),
        (HANG, "Connection timeout"),
        ({"mode": "reset"}, "Connection error: connection reset by peer"),
    ],
)
def test_hang_then_reboot_error_alerts_complete_failure(
    health_dag, make_instance, sim, db, contacts, reboot_fault, reboot_error, sender, alert_link
):
    inst = make_instance(faults={"getStateInstance": HANG, "reboot": reboot_fault})
    run_dag(health_dag)
    row = only_row(db)
    assert row["status"] == "critical_failure"
    assert (row["reboot_triggered"], row["reboot_success"]) == (True, False)
    assert row["alert_type"] == "complete_failure"
    assert row["error_message"].startswith(f"Primary: Connection timeout | Reboot: {reboot_error}")
    text = COMPLETE_FAILURE_TEXT.format(
        time=paris(row), instance=inst.instance_id, error=row["error_message"], dashboard=alert_link
    )
    assert sent(sim, sender.instance_id) == [(SUPPORT_1, text), (SUPPORT_2, text)]
    assert sim.reboots(inst.instance_id) == []  # the reboot request never got a 200


def test_server_error_5xx_triggers_a_reboot(health_dag, make_instance, sim, db, contacts):
    inst = make_instance(
        faults={"getStateInstance": {"mode": "http", "status": 502, "times": 2, "body": "<html><body><h1>502 Bad Gateway</h1></body></html>", "content_type": "text/html"}}
    )
    run_dag(health_dag)
    row = only_row(db)
    assert row["status"] == "rebooted"
    assert row["error_message"] == "HTTP 502: 502 Bad Gateway"
    assert (row["reboot_triggered"], row["reboot_success"], row["support_notified"]) == (True, True, False)
    assert len(sim.reboots(inst.instance_id)) == 1
    assert sim.messages() == []


@pytest.mark.parametrize(
    ("status", "body", "fix"),
    [
        (401, None, "The API token (apiTokenInstance) is wrong"),
        (403, None, "The instance id (idInstance) is wrong"),
        (466, '{"invokeStatus": {"status": "QUOTE_EXCEEDED", "description": "quota"}, "correspondentsStatus": {}}',
         "quota is exceeded"),
    ],
)
def test_account_and_configuration_errors_alert_what_to_fix_without_reboot(
    health_dag, make_instance, sim, db, contacts, status, body, fix
, sender):
    # The alert goes through the sender instance, since the monitored one refuses requests.
    fault = {"mode": "http", "status": status}
    if body:
        fault["body"] = body
    inst = make_instance(faults={"getStateInstance": fault})
    run_dag(health_dag)
    row = only_row(db)
    assert row["status"] == "unhealthy"
    assert row["error_message"].startswith(f"HTTP {status}")
    assert row["alert_type"] == "configuration_error"
    assert row["reboot_triggered"] is False
    assert sim.reboots() == []
    messages = sent(sim, sender.instance_id)
    assert [chat for chat, _ in messages] == [SUPPORT_1, SUPPORT_2]
    text = messages[0][1]
    assert "🔧 *ERREUR DE CONFIGURATION*" in text
    assert f"Erreur: {row['error_message']}" in text
    assert fix in text
    assert f"📱 Instance: {inst.instance_id}" in text
    assert sent(sim, inst.instance_id) == []


def test_rate_limited_429_is_recorded_without_alert_or_reboot(health_dag, make_instance, sim, db, contacts):
    make_instance(faults={"getStateInstance": {"mode": "http", "status": 429}})
    outcome = run_dag(health_dag)
    assert outcome.state == "success", outcome.tasks
    row = only_row(db)
    assert row["status"] == "rate_limited"
    assert row["alert_type"] is None
    assert (row["reboot_triggered"], row["support_notified"]) == (False, False)
    assert sim.messages() == []
    assert sim.reboots() == []


def test_malformed_body_alerts_invalid_response_without_reboot(health_dag, make_instance, sim, db, contacts, sender):
    make_instance(faults={"getStateInstance": {"mode": "malformed"}})
    run_dag(health_dag)
    row = only_row(db)
    assert row["status"] == "unhealthy"
    assert row["error_message"] == "Malformed answer: body is not valid JSON"
    assert row["alert_type"] == "invalid_response"
    assert row["reboot_triggered"] is False
    messages = sent(sim, sender.instance_id)
    assert [chat for chat, _ in messages] == [SUPPORT_1, SUPPORT_2]
    assert "⚠️ *RÉPONSE INVALIDE DE L'API*" in messages[0][1]
    assert sim.reboots() == []


def test_no_active_contact_fails_the_run_but_logs_the_check(health_dag, make_instance, sim, db, add_contact, capfd):
    add_contact("Parti", SUPPORT_1, 1, active=False)
    make_instance(state="notAuthorized")
    outcome = run_dag(health_dag)
    assert outcome.state == "failed"
    assert outcome.tasks["send_alerts"] == "failed"
    assert outcome.tasks["report"] == "failed"
    assert "no active support contact in system_support_contacts" in printed(capfd)
    row = only_row(db)
    assert (row["status"], row["support_notified"]) == ("unhealthy", False)
    assert sim.messages() == []


def test_no_active_contact_fails_even_a_healthy_run(health_dag, make_instance, sim, db, capfd):
    make_instance(state="authorized")
    outcome = run_dag(health_dag)
    assert outcome.state == "failed"
    assert outcome.tasks["report"] == "failed"
    assert "nobody can be alerted" in printed(capfd)
    assert only_row(db)["status"] == "healthy"


def deliveries(db):
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM green_api_alert_deliveries ORDER BY id")
        return list(cur.fetchall())


def test_alert_send_failing_is_retried_logged_as_not_notified_and_fails_the_run(
    health_dag, make_instance, sim, db, contacts, capfd, sender
):
    sim.configure(sender.instance_id, faults={"sendMessage": {"mode": "http", "status": 500}})
    inst = make_instance(state="notAuthorized")
    outcome = run_dag(health_dag)
    assert outcome.state == "failed"
    assert outcome.tasks["send_alerts"] == "failed"
    assert outcome.tasks["log_results"] == "success"
    row = only_row(db)
    assert (row["status"], row["alert_type"]) == ("unhealthy", "instance_not_authorized")
    assert row["support_notified"] is False
    assert row["support_notification_sent_at"] is None
    assert f"instance {inst.instance_id}) reached no contact" in printed(capfd)
    attempts = sim.requests_log(sender.instance_id, "sendMessage")
    # Three attempts per contact (5xx is retried), never through the failing instance; then the
    # failure notifier of the run tries too (through the same, failing, sender).
    assert [(a["status"], a["body"]["chatId"]) for a in attempts[:6]] == [(500, SUPPORT_1)] * 3 + [(500, SUPPORT_2)] * 3
    assert all("MONITORING GREEN API EN ÉCHEC" in a["body"]["message"] for a in attempts[6:]) and attempts[6:]
    assert sim.requests_log(inst.instance_id, "sendMessage") == []
    recorded = deliveries(db)
    assert [(d["recipient"], d["attempt"], d["ok"], d["sender"]) for d in recorded] == [
        (SUPPORT_1, 1, False, "green_api_alerts"), (SUPPORT_1, 2, False, "green_api_alerts"),
        (SUPPORT_1, 3, False, "green_api_alerts"), (SUPPORT_2, 1, False, "green_api_alerts"),
        (SUPPORT_2, 2, False, "green_api_alerts"), (SUPPORT_2, 3, False, "green_api_alerts"),
    ]
    assert all(d["error"].startswith("HTTP 500") and d["channel"] == "whatsapp" for d in recorded)


def test_a_send_failing_once_is_retried_and_delivered(health_dag, make_instance, sim, db, contacts, sender):
    sim.configure(sender.instance_id, faults={"sendMessage": {"mode": "http", "status": 502, "times": 1}})
    make_instance(state="blocked")
    outcome = run_dag(health_dag)
    assert outcome.state == "success", outcome.tasks
    assert only_row(db)["support_notified"] is True
    assert [chat for chat, _ in sent(sim, sender.instance_id)] == [SUPPORT_1, SUPPORT_2]
    recorded = [(d["recipient"], d["attempt"], d["ok"]) for d in deliveries(db)]
    assert recorded == [(SUPPORT_1, 1, False), (SUPPORT_1, 2, True), (SUPPORT_2, 1, True)]
    assert all(d["id_message"] for d in deliveries(db) if d["ok"])


def test_two_instances_one_healthy_one_not(
    health_dag, make_instance, sim, db, contacts, monkeypatch, sender, capfd, caplog
):
    good = make_instance("green_api_good", state="authorized")
    bad = make_instance("green_api_bad", state="notAuthorized")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(["green_api_good", "green_api_bad"]))
    outcome = run_dag(health_dag)
    assert outcome.state == "success", outcome.tasks
    # The task log a support person reads: the instance with a problem, a summary, no raw dicts.
    log = caplog.text + printed(capfd)
    assert f'{bad.instance_id} (green_api_bad): notAuthorized: Instance state is "notAuthorized"' in log
    assert f"2 instances: 1 healthy, 1 notAuthorized ({bad.instance_id})" in log
    assert f"opening about instance {bad.instance_id} (incident 1) sent to {SUPPORT_1} via green_api_alerts" in log
    assert "Returned value was: {'checks'" not in log
    rows = {r["instance_id"]: r for r in log_rows(db)}
    assert set(rows) == {good.instance_id, bad.instance_id}
    assert rows[good.instance_id]["status"] == "healthy"
    assert rows[bad.instance_id]["status"] == "unhealthy"
    assert rows[bad.instance_id]["support_notified"] is True
    assert rows[good.instance_id]["support_notified"] is False
    messages = sent(sim, sender.instance_id)
    assert [chat for chat, _ in messages] == [SUPPORT_1, SUPPORT_2]
    assert all(f"📱 Instance: {bad.instance_id}" in text for _, text in messages)
    assert sent(sim, bad.instance_id) == [] and sent(sim, good.instance_id) == []


def test_instances_are_checked_concurrently(health_dag, make_instance, sim, db, contacts, monkeypatch):
    ids = [f"green_api_slow_{n}" for n in range(6)]
    for conn_id in ids:
        make_instance(conn_id, latency_ms=800)
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(ids))
    run_dag(health_dag)
    rows = log_rows(db)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"healthy"}
    starts = sorted(r["at"] for r in sim.requests_log(method="getStateInstance"))
    # Six 800 ms answers in one task: started together, not one after the other (that would
    # spread the starts over 4 s at least; a loaded machine delays a thread's start by a second).
    assert starts[-1] - starts[0] < 2.0


def test_many_instances_are_split_into_mapped_check_tasks(
    health_dag, make_instance, sim, db, contacts, monkeypatch, sender, capfd
):
    ids = [f"green_api_shard_{n}" for n in range(5)]
    made = {conn_id: make_instance(conn_id, state="notAuthorized" if conn_id.endswith("3") else "authorized")
            for conn_id in ids}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps([*ids, "green_api_missing"]))
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps({**FAST, "instances_per_check_task": 2}))
    outcome = run_dag(health_dag)
    # Six ids, two per task: three mapped tasks, and one gathering step that sees all of them.
    assert outcome.mapped["check_shard"] == ["success", "success", "success"]
    assert outcome.tasks["check_instances"] == "success"
    rows = {r["instance_id"]: r["status"] for r in log_rows(db)}
    assert rows == {made[c].instance_id: "unhealthy" if c.endswith("3") else "healthy" for c in ids}
    assert len(sim.requests_log(method="getStateInstance")) == 5
    # The missing connection, in the last task, still fails the run by name.
    assert outcome.state == "failed" and outcome.tasks["report"] == "failed"
    assert "unknown connection id 'green_api_missing'" in printed(capfd)
    messages = sent(sim, sender.instance_id)
    alert, notices = messages[:2], messages[2:]
    assert [chat for chat, _ in alert] == [SUPPORT_1, SUPPORT_2]
    assert all(f"📱 Instance: {made['green_api_shard_3'].instance_id}" in text for _, text in alert)
    assert [chat for chat, _ in notices] == [SUPPORT_1, SUPPORT_2, "33600000009@c.us"]
    assert all("unknown connection id 'green_api_missing'" in text for _, text in notices)


def test_unknown_connection_id_fails_the_run_and_still_logs_the_others(
    health_dag, make_instance, sim, db, contacts, monkeypatch, capfd
):
    inst = make_instance("green_api_known", state="authorized")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(["green_api_known", "green_api_missing"]))
    outcome = run_dag(health_dag)
    assert outcome.state == "failed"
    assert outcome.tasks["report"] == "failed"
    assert "unknown connection id 'green_api_missing'" in printed(capfd)
    assert [r["instance_id"] for r in log_rows(db)] == [inst.instance_id]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("not json", "Variable green_api_instances is not valid JSON"),
        ('{"a": 1}', "must be a non-empty JSON list of connection ids"),
        ("[]", "must be a non-empty JSON list of connection ids"),
        ('["ok", "bad id!"]', "invalid connection id: 'bad id!'"),
    ],
)
def test_invalid_instances_variable_fails_with_a_message_naming_it(
    health_dag, make_instance, sim, db, contacts, monkeypatch, capfd, value, named, sender
):
    make_instance()
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", value)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example.test")
    outcome = run_dag(health_dag)
    assert outcome.state == "failed"
    assert outcome.tasks["plan_checks"] == "failed"
    assert named in printed(capfd)
    assert log_rows(db) == []
    assert sim.requests_log(method="getStateInstance") == []
    # The monitoring itself is broken: GreenApiNotifier tells the contacts, naming the problem.
    notices = sent(sim, sender.instance_id)
    assert [chat for chat, _ in notices] == [SUPPORT_1, SUPPORT_2, "33600000009@c.us"]
    text = notices[0][1]
    assert text.startswith("⚠️ *MONITORING GREEN API EN ÉCHEC*\n\nLe check de santé des instances a échoué le ")
    assert "(DAG green_api_health_check, tâche report, essai 1) : Run failed: " in text
    assert named in text and "Traceback" not in text
    # Where to look: the task's log in the Airflow UI, from [api] base_url.
    assert f"🔎 Log de la tâche : http://airflow.example.test/dags/green_api_health_check/runs/{quote(outcome.run_id)}/tasks/report" in text


def test_connection_without_token_is_named(health_dag, sim, db, contacts, monkeypatch, capfd):
    conn = {"conn_type": "greenapi", "host": sim.url, "login": "7700000001"}
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DEFAULT", json.dumps(conn))
    outcome = run_dag(health_dag)
    assert outcome.state == "failed"
    assert "Connection green_api_default: password (apiTokenInstance) is empty" in printed(capfd)


def test_a_rerun_of_the_same_run_does_not_duplicate_rows(health_dag, make_instance, sim, db, contacts):
    import pendulum

    make_instance(state="authorized")
    when = pendulum.datetime(2026, 6, 1, 12, 0, tz="UTC")
    first = run_dag(health_dag, logical_date=when, run_after=when)
    second = run_dag(health_dag, logical_date=when, run_after=when)
    assert first.run_id == second.run_id
    assert len(log_rows(db)) == 1
    assert len(sim.requests_log(method="getStateInstance")) == 2  # the second run did check again


def test_healthy_instances_with_nothing_to_follow_are_settled_by_their_check_task(
    health_dag, make_instance, sim, db, contacts, monkeypatch
):  # fmt: skip
    """What travels between tasks is O(problems): a quiet healthy instance (seen before, not failing,
    no incident) is counted and logged by its check task; only the failing one goes on."""
    from datetime import UTC, datetime, timedelta

    from tests.operators import xcom

    quiet = [make_instance(f"green_api_quiet_{n}", state="authorized") for n in range(3)]
    bad = make_instance("green_api_bad", state="notAuthorized")
    conn_ids = [i.conn_id for i in quiet] + [bad.conn_id]
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(conn_ids))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    runs = [run_dag(health_dag, logical_date=start + timedelta(minutes=5 * n), run_after=start + timedelta(minutes=5 * n))
            for n in range(2)]  # fmt: skip
    assert [r.state for r in runs] == ["success", "success"], [r.tasks for r in runs]

    # First run: never seen before, every check goes on. Second run: the quiet ones stop at their shard.
    first, second = (xcom(health_dag.dag_id, r.run_id, "check_instances") for r in runs)
    assert (len(first["checks"]), first["settled"]) == (4, 0)
    assert ([c["conn_id"] for c in second["checks"]], second["settled"]) == ([bad.conn_id], 3)
    assert [f["conn_id"] for f in xcom(health_dag.dag_id, runs[1].run_id, "conclude")] == [bad.conn_id]
    assert xcom(health_dag.dag_id, runs[1].run_id, "report")["statuses"] == {"healthy": 3, "unhealthy": 1}
    assert xcom(health_dag.dag_id, runs[1].run_id, "report")["logged"] == 4

    # Every check still has its row, and the quiet ones' counters move on as the alert step's would.
    rows = [r for r in log_rows(db) if r["run_id"] == runs[1].run_id]
    assert sorted((r["connection_id"], r["status"]) for r in rows) == sorted(
        [(i.conn_id, "healthy") for i in quiet] + [(bad.conn_id, "unhealthy")]
    )
    assert all(r["trigger_type"] == "manual" and r["response_time_ms"] is not None for r in rows)
    counted = db.execute("SELECT instance_id, consecutive_successes, consecutive_failures, last_checked_at"
                         " FROM green_api_instance_status ORDER BY instance_id").fetchall()  # fmt: skip
    assert counted == sorted(
        [(i.instance_id, 2, 0, start + timedelta(minutes=5)) for i in quiet] + [(bad.instance_id, 0, 2, start + timedelta(minutes=5))]
    )
    told = [m["chatId"] for m in sim.messages()]
    assert SUPPORT_1 in told and len(told) == len(set(told))  # the failing one's opening, once per contact
    assert all(bad.instance_id in m["message"] for m in sim.messages())

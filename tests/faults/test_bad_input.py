"""Bad configuration and data, each refused with an error that names it, and nothing half-done.

The README's "What it survives" table lists every case with the test that checks it; the cases
already covered where they belong (the schema, the hook, the reboot schedule, the Variable of
instances) are named there, not repeated here.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import psycopg
import pytest
from airflow.sdk import DAG

from greenapi.notifications import GreenApiNotifier
from tests.e2e.conftest import log_rows, run_dag
from tests.e2e.test_health_check_dag import FAST

pytestmark = pytest.mark.faults
SUPPORT = "33600000001@c.us"
FALLBACK = "33600000077@c.us"


def printed(capfd) -> str:
    out = capfd.readouterr()
    return out.out + out.err


@pytest.fixture
def support(add_contact, make_instance):
    add_contact("Support", SUPPORT, 1)
    return make_instance("green_api_alerts")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ("{oops", "Variable green_api_settings is not valid JSON"),
        ('{"colour": 1}', "unknown key(s) ['colour']"),
        ('{"reminder_minutes": 0}', "green_api_settings.reminder_minutes must be a number above 0 to 10080, got 0"),
        ('{"reboot_cooldown_minutes": -5}', "reboot_cooldown_minutes must be a number from 0"),
        ('{"max_concurrency": 0}', "max_concurrency must be an integer from 1 to 1000, got 0"),
        ('{"message_timezone": "Mars/Olympus"}', "message_timezone is not a known IANA timezone: 'Mars/Olympus'"),
        ('{"fallback_chat_ids": ["+33 6 12"]}', "fallback_chat_ids must be a list of chat ids"),
    ],
)
def test_bad_settings_stop_the_run_before_any_call_naming_the_key(
    health_dag, make_instance, sim, db, support, monkeypatch, capfd, settings, named
):
    inst = make_instance(state="notAuthorized")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", settings)
    outcome = run_dag(health_dag)
    assert outcome.state == "failed" and outcome.tasks["plan_checks"] == "failed"
    assert named in printed(capfd)
    assert sim.requests_log(inst.instance_id) == []  # nothing checked, rebooted or sent half-way
    assert log_rows(db) == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"host": "htp//nowhere", "login": "7700000001", "password": "tok-123456"},
         "Connection green_api_default: host must be the instance's apiUrl"),
        ({"login": "77 01;--", "password": "tok-123456"},
         "Connection green_api_default: login must be the numeric idInstance, got '77 01;--'"),
        ({"login": "7700000001", "password": "tok/../../etc"},
         "Connection green_api_default: password (apiTokenInstance) contains characters a token never has"),
    ],
)  # fmt: skip
def test_a_bad_connection_is_named_and_the_other_instances_are_still_checked(
    health_dag, make_instance, sim, db, support, monkeypatch, capfd, fields, named
):
    other = make_instance("green_api_other", state="authorized")
    conn = {"conn_type": "greenapi", "host": sim.url, **fields}
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(["green_api_default", "green_api_other"]))
    outcome = run_dag(health_dag)
    assert outcome.state == "failed" and outcome.tasks["report"] == "failed"
    text = printed(capfd)
    assert named in text
    assert "tok-123456" not in text and "tok/../../etc" not in text  # the error never shows the token
    assert [(r["instance_id"], r["status"]) for r in log_rows(db)] == [(other.instance_id, "healthy")]
    assert {r["instance_id"] for r in sim.requests_log(method="getStateInstance")} == {other.instance_id}


def test_ten_thousand_contacts_are_refused_and_support_is_told_through_the_fallback(
    health_dag, make_instance, sim, db, monkeypatch, capfd
):
    sender = make_instance("green_api_alerts")
    inst = make_instance(state="notAuthorized")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps({**FAST, "fallback_chat_ids": [FALLBACK]}))
    db.execute(
        "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority)"
        " SELECT 'Imported ' || n, (33700000000 + n)::text || '@c.us', 1 FROM generate_series(1, 10000) n"
    )
    outcome = run_dag(health_dag)
    named = "system_support_contacts has 10000 active contacts, more than green_api_settings.max_contacts (50)"
    assert named in printed(capfd)
    assert outcome.state == "failed"
    # Not one of the 10,000 was messaged; the failure notice, naming the problem, went to the fallback.
    messages = sim.messages(sender.instance_id)
    assert [m["chatId"] for m in messages] == [FALLBACK]
    assert named in messages[0]["message"]
    # Nothing is lost: the check is logged, and the incident waits, unannounced, for the fix.
    [row] = log_rows(db)
    assert (row["instance_id"], row["status"], row["support_notified"]) == (inst.instance_id, "unhealthy", False)
    db.execute("UPDATE system_support_contacts SET is_active = false WHERE full_name LIKE 'Imported %'")
    db.execute(
        "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority)"
        " VALUES ('Support', %s, 1)", (SUPPORT,),
    )  # fmt: skip
    assert run_dag(health_dag).state == "success"
    [alert] = [m for m in sim.messages(sender.instance_id) if m["chatId"] == SUPPORT]
    assert f"📱 Instance: {inst.instance_id}" in alert["message"]


def test_a_contact_with_a_malformed_number_is_refused_by_the_database(db):
    with pytest.raises(psycopg.errors.CheckViolation, match="system_support_contacts_phone_number_format"):
        db.execute(
            "INSERT INTO system_support_contacts (full_name, phone_number, notification_priority)"
            " VALUES ('Bad', '06 12 34 56 78', 1)"
        )
    assert db.execute("SELECT count(*) FROM system_support_contacts").fetchone()[0] == 0


def test_a_notifier_template_with_a_missing_placeholder_still_sends_the_notice_saying_why(sim, make_instance):
    sender = make_instance("green_api_alerts")
    context = {"dag": DAG("etl", schedule=None), "ti": SimpleNamespace(task_id="extract", try_number=1),
               "task_id": "extract", "run_id": "r1"}  # fmt: skip
    GreenApiNotifier(message="{{ task_id }} failed on {{ instance_name }}", chat_ids=[SUPPORT])(context)
    [message] = sim.messages(sender.instance_id)
    assert message["chatId"] == SUPPORT
    assert "MONITORING GREEN API EN ÉCHEC" in message["message"]  # the default notice...
    assert "Le DAG etl a échoué le " in message["message"] and "(DAG etl, tâche extract, essai 1)" in message["message"]
    assert "'instance_name' is undefined" in message["message"]  # ...saying what was wrong


def test_a_notifier_template_that_does_not_parse_is_refused_when_the_dag_is_defined():
    with pytest.raises(ValueError, match="GreenApiNotifier: message is not a valid Jinja template"):
        GreenApiNotifier(message="{{ task_id ")

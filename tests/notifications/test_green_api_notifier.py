"""GreenApiNotifier over real HTTP: any DAG's failure callback, also with the database down."""

from __future__ import annotations

import json

from greenapi.notifications import GreenApiNotifier


def test_notifier_sends_the_rendered_message_to_the_contacts(sim, make_instance, add_contact):
    sender = make_instance("green_api_alerts")
    add_contact("Support", "33600000001@c.us", 1)
    notifier = GreenApiNotifier(message="Échec de {{ task_id }} ({{ run_id }})")
    notifier({"task_id": "extract", "run_id": "r1"})
    notifier({"task_id": "load", "run_id": "r2"})  # one notifier object serves every run
    assert [(m["chatId"], m["message"]) for m in sim.messages(sender.instance_id)] == [
        ("33600000001@c.us", "Échec de extract (r1)"),
        ("33600000001@c.us", "Échec de load (r2)"),
    ]


def test_notifier_reaches_the_fallback_chats_when_the_database_is_down(sim, make_instance, monkeypatch):
    sender = make_instance("green_api_alerts")
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DB", "postgresql://postgres@127.0.0.1:9/unreachable")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps({"fallback_chat_ids": ["33600000077@c.us"]}))
    GreenApiNotifier(message="PostgreSQL down, {{ task_id }} failed")({"task_id": "log_results"})
    assert [(m["chatId"], m["message"]) for m in sim.messages(sender.instance_id)] == [
        ("33600000077@c.us", "PostgreSQL down, log_results failed"),
    ]


def test_notifier_tries_the_next_sender_when_the_first_fails(sim, make_instance, monkeypatch):
    first = make_instance("green_api_alerts", faults={"sendMessage": {"mode": "http", "status": 403}})
    second = make_instance("green_api_backup")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps({"alert_senders": ["green_api_backup"]}))
    GreenApiNotifier(message="x", chat_ids=["33600000001@c.us"])({})
    assert [m["chatId"] for m in sim.messages(second.instance_id)] == ["33600000001@c.us"]
    assert len(sim.requests_log(first.instance_id, "sendMessage")) == 1  # a 403 is not retried

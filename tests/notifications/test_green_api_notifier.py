"""GreenApiNotifier over real HTTP: any DAG's failure callback, also with the database down.

This package's DAGs route it to the support contacts (``support_route``): a provider's notifier
looks its recipients up where its user says, here in the health database."""

from __future__ import annotations

import json

import pytest

from greenapi.notifications import GreenApiNotifier
from greenapi.tasks.notices import support_route


def test_notifier_sends_the_rendered_message_to_the_contacts(sim, make_instance, add_contact):
    sender = make_instance("green_api_alerts")
    add_contact("Support", "33600000001@c.us", 1)
    notifier = GreenApiNotifier(message="Échec de {{ task_id }} ({{ run_id }})", route=support_route)
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
    GreenApiNotifier(message="PostgreSQL down, {{ task_id }} failed", route=support_route)({"task_id": "log_results"})
    assert [(m["chatId"], m["message"]) for m in sim.messages(sender.instance_id)] == [
        ("33600000077@c.us", "PostgreSQL down, log_results failed"),
    ]


def test_notifier_tries_the_next_sender_when_the_first_fails(sim, make_instance, monkeypatch):
    first = make_instance("green_api_alerts", faults={"sendMessage": {"mode": "http", "status": 403}})
    second = make_instance("green_api_backup")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps({"alert_senders": ["green_api_backup"]}))
    GreenApiNotifier(message="x", chat_ids=["33600000001@c.us"], route=support_route)({})
    assert [m["chatId"] for m in sim.messages(second.instance_id)] == ["33600000001@c.us"]
    assert len(sim.requests_log(first.instance_id, "sendMessage")) == 1  # a 403 is not retried


def test_a_notifier_without_recipients_is_refused_when_defined():
    with pytest.raises(ValueError, match="give chat_ids, or a route that finds the recipients"):
        GreenApiNotifier(message="x")


def test_chat_ids_alone_need_no_database_and_no_variable(sim, make_instance, monkeypatch):
    sender = make_instance("green_api_alerts")
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_DB", "postgresql://postgres@127.0.0.1:9/unreachable")
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", "{not json")  # never read
    GreenApiNotifier(message="{{ task_id }} failed", chat_ids=["33600000005@c.us"])({"task_id": "extract"})
    assert [(m["chatId"], m["message"]) for m in sim.messages(sender.instance_id)] == [
        ("33600000005@c.us", "extract failed"),
    ]

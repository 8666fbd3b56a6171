"""A fleet failing together: one outage, one message, no reboot stampede (real runs of the health
check over 200 simulated instances, through simulated time)."""

from __future__ import annotations

import html
import itertools
import json
import socket
from collections import Counter

import pendulum
import pytest

from tests.e2e.conftest import log_rows
from tests.e2e.test_health_check_dag import FAST, HANG, HANG_TWICE
from tests.e2e.test_incidents import L1, L2, inbox, run_at

pytestmark = pytest.mark.e2e

FLEET = 200
_days = itertools.count()


@pytest.fixture
def t0():
    """A distinct, past noon (UTC) per test (apart from test_incidents' days)."""
    return pendulum.datetime(2026, 6, 1, 12, 0, tz="UTC").add(days=next(_days))


@pytest.fixture
def setup(add_contact, make_instance, monkeypatch, alert_link):
    add_contact("Niveau 1", L1, 1)
    add_contact("Niveau 2", L2, 2)
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps(FAST))
    return make_instance("green_api_alerts")


@pytest.fixture
def fleet(make_instance, monkeypatch, sim):
    # 3 s to answer, not the suite's 1 s: 200 calls at once to the simulator, which shares its
    # process with the run, must not time out on a loaded machine (the hung ones hang 5 s).
    insts = [make_instance(f"green_api_fleet_{n:03d}", extra={"state_timeout": 3}) for n in range(FLEET)]
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps([i.conn_id for i in insts]))
    return insts


def host_of(sim) -> str:
    return sim.url.split("://", 1)[1].rstrip("/")


def test_a_correlated_outage_is_one_incident_without_reboots_and_one_resolution(
    health_dag, sim, db, setup, fleet, t0
):
    # Two instances hang alone: each is rebooted on its own, as before, and comes back.
    for inst in fleet[:2]:
        sim.configure(inst.instance_id, faults={"getStateInstance": HANG_TWICE})
    assert run_at(health_dag, t0, 0).state == "success"
    assert sorted(r["instance_id"] for r in sim.reboots()) == sorted(i.instance_id for i in fleet[:2])
    assert inbox(sim, L1) == []
    # Then 150 of the 200 hang for two runs: one outage, no reboot, one message.
    down = fleet[50:]
    for inst in down:
        sim.configure(inst.instance_id, faults={"getStateInstance": HANG})
    for minute in (5, 10):
        assert run_at(health_dag, t0, minute).state == "success"
    assert len(sim.reboots()) == 2  # at most 7 in all: the two lone ones only
    [opening] = inbox(sim, L1)
    assert "🌩️ *PANNE DE LA PLATEFORME GREEN API*" in opening and f"🌐 Hôte: {host_of(sim)}" in opening
    assert "Instances touchées: 150 sur 200 (" in opening and "et 145 autres)" in opening
    assert inbox(sim, L2) == []  # not escalated within 15 minutes
    rows = [r for r in log_rows(db) if r["instance_id"] == down[0].instance_id]
    assert [r["status"] for r in rows] == ["healthy", "critical_failure", "critical_failure"]
    assert rows[1]["error_message"] == (f"Connection timeout | not rebooted: platform outage on host {host_of(sim)} "
                                        "(no answer), 150 of 200 instances")  # fmt: skip
    assert not rows[1]["reboot_triggered"]
    outage = db.execute("SELECT id, kind, checks, cardinality(members) FROM green_api_incidents"
                        " WHERE kind = 'platform_outage'").fetchall()  # fmt: skip
    assert [tuple(o)[1:] for o in outage] == [("platform_outage", 2, 150)]
    own = db.execute("SELECT count(*) FROM green_api_incidents WHERE kind <> 'platform_outage'").fetchone()
    assert own == (0,)  # the members opened no incident of their own
    assert rows[2]["incident_id"] == outage[0][0]  # the member's row points to the outage
    # All answer again: one resolution per contact told, saying how many recovered.
    for inst in down:
        sim.configure(inst.instance_id, faults={})
    assert run_at(health_dag, t0, 15).state == "success"
    [_, resolution] = inbox(sim, L1)
    assert "✅ *INCIDENT RÉSOLU*" in resolution and "Problème: panne de la plateforme" in resolution
    assert (
        "Rétablies: 150 sur 150" in resolution
        and "Toujours en échec (incident propre ouvert): 0" in resolution
    )
    assert inbox(sim, L2) == [] and len(sim.reboots()) == 2


def test_an_outage_that_ends_leaves_the_still_failing_their_own_incidents_from_their_start(
    health_dag, sim, db, setup, fleet, t0
):
    for inst in fleet[:150]:
        sim.configure(inst.instance_id, state="notAuthorized")
    assert run_at(health_dag, t0, 0).state == "success"
    [opening] = inbox(sim, L1)  # one message for 150 instances, none rebooted
    # On a failure, say what the run logged: a CI run once saw 139 incidents and no outage here.
    seen = Counter((r["status"], r["state_instance"], (r["error_message"] or "")[:60]) for r in log_rows(db))
    assert "Symptôme: state notAuthorized" in opening and "Instances touchées: 150 sur 200" in opening, seen
    assert sim.reboots() == []
    # 142 come back: 8 is below outage_min_instances, the outage is over.
    for inst in fleet[8:150]:
        sim.configure(inst.instance_id, state="authorized")
    assert run_at(health_dag, t0, 5).state == "success"
    messages = inbox(sim, L1)
    [resolution] = [m for m in messages if "INCIDENT RÉSOLU" in m]
    assert "Rétablies: 142 sur 150" in resolution
    assert f"Toujours en échec (incident propre ouvert): 8 ({fleet[0].instance_id}, " in resolution
    # Their 8 openings go to the contact as one message that lists them (over group_alerts_over, 5).
    [grouped] = [m for m in messages if "NOUVEAUX INCIDENTS" in m]
    assert "📋 *8 NOUVEAUX INCIDENTS*" in grouped
    assert all(f"• {i.instance_id}: instance non autorisée (depuis " in grouped for i in fleet[:8])
    assert len(messages) == 3
    still = db.execute("SELECT instance_id, first_failed_at FROM green_api_incidents"
                       " WHERE kind = 'instance_not_authorized' ORDER BY instance_id").fetchall()  # fmt: skip
    assert [r[0] for r in still] == sorted(i.instance_id for i in fleet[:8])
    first: dict[str, object] = {}
    for row in log_rows(db):  # oldest first
        if row["status"] == "unhealthy":
            first.setdefault(row["instance_id"], row["checked_at"])
    assert all(at == first[i] for i, at in still)  # their incidents start at their first failing check


def test_many_lone_failures_reach_a_contact_as_one_message_each_recorded_per_incident(
    health_dag, sim, db, setup, fleet, t0
):
    broken = fleet[:7]  # 7 of 200: no outage, seven incidents
    for inst in broken:
        sim.configure(inst.instance_id, state="blocked")
    assert run_at(health_dag, t0, 0).state == "success"
    [grouped] = inbox(sim, L1)
    assert grouped.startswith("🚨 *ALERTE GREEN API* 🚨") and "📋 *7 NOUVEAUX INCIDENTS*" in grouped
    assert all(f"• {i.instance_id}: instance non autorisée" in grouped for i in broken)
    # each incident knows its opening reached the contact: the next runs send nothing again
    delivered = db.execute("SELECT count(DISTINCT incident_id), count(DISTINCT id_message) FROM"
                           " green_api_alert_deliveries WHERE ok").fetchone()  # fmt: skip
    assert delivered == (7, 1)
    assert run_at(health_dag, t0, 5).state == "success"
    assert inbox(sim, L1) == [grouped] and inbox(sim, L2) == []
    for inst in broken:
        sim.configure(inst.instance_id, state="authorized")
    assert run_at(health_dag, t0, 10).state == "success"
    [_, resolved] = inbox(sim, L1)
    assert (
        "✅ *7 INCIDENTS RÉSOLUS*" in resolved
        and f"• {broken[0].instance_id}: instance non autorisée (" in resolved
    )


def test_when_nothing_answers_not_even_the_senders_the_mail_says_the_monitor_may_be_cut_off(
    health_dag, make_instance, sim, db, smtp_server, monkeypatch, t0, capfd
):
    port, mailbox = smtp_server
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "monitor@example.org"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", json.dumps(FAST))
    db.execute("INSERT INTO system_support_contacts (full_name, phone_number, notification_priority, email)"
               " VALUES ('Astreinte', %s, 1, 'oncall@example.org')", (L1,))  # fmt: skip
    with socket.socket() as closed:  # a port nothing listens on: the sender does not answer
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    sender = make_instance("green_api_alerts")
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_ALERTS", json.dumps(
        {"conn_type": "greenapi", "host": dead, "login": sender.instance_id, "password": sender.token}))  # fmt: skip
    silent = [make_instance(f"green_api_silent_{n}", faults={"getStateInstance": HANG}) for n in range(3)]
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps([i.conn_id for i in silent]))
    outcome = run_at(health_dag, t0, 0)
    mails = [mail for _, mail in mailbox.messages]
    assert len(mails) == 3 and all(m["Subject"].endswith(": the monitor may be cut off") for m in mails)
    body = html.unescape(mails[0].get_body(("html", "plain")).get_content())
    assert "LE MONITEUR LUI-MÊME EST PEUT-ÊTRE COUPÉ DU RÉSEAU" in body and "Aucune instance n'a répondu" in body
    # the run says so by name
    assert outcome.tasks["report"] == "failed"
    assert "the monitor itself may be cut off from the network" in capfd.readouterr().out
    assert sim.messages() == []


def test_many_hosts_down_at_once_reach_a_contact_as_one_message(health_dag, make_instance, sim, db, setup,
                                                                  monkeypatch, t0):  # fmt: skip
    # 6 hosts (loopback addresses the simulator does not listen on), 10 instances each: 6 outages.
    port = sim.url.rsplit(":", 1)[1].rstrip("/")
    conn_ids = []
    for host in range(2, 8):
        for n in range(10):
            inst = make_instance(f"green_api_h{host}_{n}")
            conn = {"conn_type": "greenapi", "host": f"http://127.0.0.{host}:{port}", "login": inst.instance_id,
                    "password": inst.token, "extra": {"state_timeout": 1}}  # fmt: skip
            monkeypatch.setenv(f"AIRFLOW_CONN_{inst.conn_id.upper()}", json.dumps(conn))
            conn_ids.append(inst.conn_id)
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", json.dumps(conn_ids))
    assert run_at(health_dag, t0, 0).state == "success"
    [grouped] = inbox(sim, L1)
    assert "📋 *6 NOUVEAUX INCIDENTS*" in grouped and sim.reboots() == []
    for host in range(2, 8):
        assert f"• platform outage on host 127.0.0.{host}:{port} (no answer), 10 of 10 instances: panne" in grouped
    outages = db.execute("SELECT count(*), min(opening_notified_at) IS NOT NULL FROM green_api_incidents"
                         " WHERE kind = 'platform_outage'").fetchone()  # fmt: skip
    assert outages == (6, True)

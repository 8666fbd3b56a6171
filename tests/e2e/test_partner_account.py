"""A partner account (issue 26): runs of the health-check DAG over every instance of a Green API
partner account in the simulator, with no connection per instance; what support receives, what the
health log and the dashboard's tables hold, and that no token is kept anywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from tests.e2e.conftest import log_rows
from tests.e2e.test_incidents import L1, inbox, run_at, settings, setup, t0  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

UTC3 = timezone(timedelta(hours=3))


def partner_date(moment: datetime) -> str:
    """A date as getInstances gives it: naive, UTC+3."""
    return moment.astimezone(UTC3).replace(tzinfo=None).isoformat(timespec="seconds")


def rows_of(db, sql, *params):
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def test_every_instance_of_the_account_is_checked_as_it_changes(
    health_dag, make_instance, make_partner, sim, db, setup, t0, monkeypatch  # noqa: F811
):  # fmt: skip
    own = make_instance("green_api_default")
    partner = make_partner(count=50)
    ids = sorted(partner.instances)
    # One instance of the account also has a connection of its own: it is checked once, under it.
    both = ids[0]
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_BOTH", json.dumps(
        {"conn_type": "greenapi", "host": sim.url, "login": both, "password": partner.instances[both],
         "extra": {"state_timeout": 1}}))  # fmt: skip
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES",
                       json.dumps(["green_api_default", "green_api_both", {"partner": "green_api_partner"}]))

    # Run 1: the explicit instances and the account's 49 others.
    assert run_at(health_dag, t0, 0).state == "success"
    rows = log_rows(db)
    assert len(rows) == 51 and {r["instance_id"] for r in rows} == {own.instance_id, *ids}
    assert [r["connection_id"] for r in rows if r["instance_id"] == both] == ["green_api_both"]
    assert {r["instance_name"] for r in rows if r["instance_id"] == ids[1]} == {"Client 002"}
    assert inbox(sim, L1) == []
    listed = rows_of(db, "SELECT instance_id, name, deleted FROM green_api_partner_instances ORDER BY 1")
    assert [(r["instance_id"], r["deleted"]) for r in listed] == [(i, False) for i in ids]

    # Between runs: one created, one deleted, six expiring in 2 days, one expired.
    created = sim.create_partner_instance(partner.token, id_instance=int(ids[-1]) + 1000, name="Client new",
                                          api_token="TOKEN-SECRET-00000000cafe0001")["idInstance"]  # fmt: skip
    gone = ids[2]
    sim.delete_partner_instance(partner.token, gone)
    soon = partner_date(datetime.now(UTC) + timedelta(days=2))
    expiring = ids[10:16]
    for instance_id in expiring:
        sim.set_partner_instance(instance_id, expiration_date=soon)
    expired = ids[20]
    sim.set_partner_instance(expired, is_expired=True, expiration_date=partner_date(datetime.now(UTC) - timedelta(days=1)))
    sim.configure(expired, state="notAuthorized")
    sim.clear_records()

    second_run = run_at(health_dag, t0, 5)
    assert second_run.state == "success"
    second = [r for r in log_rows(db) if r["checked_at"] > max(r["checked_at"] for r in rows)]
    assert {r["instance_id"] for r in second} == ({own.instance_id, *ids, str(created)} - {gone})
    assert sim.requests_log(gone, "getStateInstance") == []
    # The plan lists the account anew; a check task reuses a listing under 2 minutes old in its
    # process (here dag.test()'s one process), else lists once: 1 + check tasks at most, whatever the fleet.
    assert 1 <= len(sim.requests_log(None, "getInstances")) <= 1 + len(second_run.mapped["check_shard"])
    messages = inbox(sim, L1)
    # Six expiring: one grouped warning, in the seed's style; the expired one: its own incident, no reboot.
    [grouped] = [m for m in messages if "NOUVEAUX INCIDENTS" in m]
    assert "📋 *8 NOUVEAUX INCIDENTS*" in grouped  # the expired one is also not authorized: two problems
    for instance_id in expiring:
        assert f"• {instance_id} (Client {ids.index(instance_id) + 1:03d}): abonnement bientôt expiré" in grouped
    assert f"• {expired} (Client 021): abonnement expiré" in grouped
    assert f"• {expired} (Client 021): instance non autorisée" in grouped
    assert sim.reboots() == []
    kinds = rows_of(db, "SELECT instance_id, kind FROM green_api_incidents WHERE resolved_at IS NULL ORDER BY 1, 2")
    assert {(r["instance_id"], r["kind"]) for r in kinds} >= {(i, "instance_expiring") for i in expiring} | {
        (expired, "instance_expired"), (expired, "instance_not_authorized")}
    marked = rows_of(db, "SELECT instance_id, status, deleted_at FROM green_api_fleet WHERE instance_id = %s", gone)
    assert marked[0]["status"] == "deleted" and marked[0]["deleted_at"] is not None

    # Run 3: the warning is not sent again; the listing fails and changes nothing.
    sim.patch_partner(partner.token, {"faults": {"getInstances": {"mode": "http", "status": 503, "times": 1}}})
    sim.clear_records()
    third = run_at(health_dag, t0, 10)
    assert third.state == "failed" and third.tasks["check_instances"] == "success"
    assert {r["instance_id"] for r in log_rows(db) if r["run_id"] == third.run_id} == {own.instance_id, both}
    # Support hears of the failed listing (the run's failure notice), of no instance: nothing is
    # alerted, taken for deleted or resolved.
    notices = [m["message"] for m in sim.messages()]
    assert notices and all("getInstances failed: HTTP 503" in m for m in notices), notices
    assert rows_of(db, "SELECT count(*) AS n FROM green_api_partner_instances WHERE deleted")[0]["n"] == 1
    still = rows_of(db, "SELECT count(*) AS n FROM green_api_incidents WHERE resolved_at IS NULL")[0]["n"]
    assert still == len(kinds)

    # Run 4: paid again; each warning resolves once.
    later = partner_date(datetime.now(UTC) + timedelta(days=30))
    for instance_id in expiring:
        sim.set_partner_instance(instance_id, expiration_date=later)
    assert run_at(health_dag, t0, 15).state == "success"
    [resolved] = [m for m in inbox(sim, L1) if "INCIDENTS RÉSOLUS" in m]
    assert "✅ *6 INCIDENTS RÉSOLUS*" in resolved

    # No token anywhere the run wrote: rows, incidents, XComs, the partner table.
    tokens = [partner.token, *partner.instances.values(), "TOKEN-SECRET-00000000cafe0001"]
    written = json.dumps([log_rows(db), rows_of(db, "SELECT * FROM green_api_incidents"),
                          rows_of(db, "SELECT * FROM green_api_partner_instances")], default=str)  # fmt: skip
    assert not [t for t in tokens if t in written]

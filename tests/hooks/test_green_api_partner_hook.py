"""GreenApiPartnerHook, and instances of a partner account called through GreenApiHook: over HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from greenapi.domain.config import ConfigError
from greenapi.hooks.green_api import (
    GreenApiAsyncHook,
    GreenApiPartnerHook,
    PartnerApiError,
    UnusableConnection,
    open_hook,
)
from greenapi.operators.green_api import check_instances


def listings(sim) -> int:
    return len(sim.requests_log(None, "getInstances"))


def test_the_hook_lists_the_account_and_its_test_button_says_what_it_holds(make_partner, sim):
    partner = make_partner(count=3)
    gone = sorted(partner.instances)[0]
    sim.delete_partner_instance(partner.token, gone)
    instances = GreenApiPartnerHook("green_api_partner").get_instances()
    assert sorted(i.instance_id for i in instances) == sorted(partner.instances)
    assert [i.instance_id for i in instances if i.deleted] == [gone]
    assert {i.name for i in instances} == {"Client 001", "Client 002", "Client 003"}
    ok, said = GreenApiPartnerHook("green_api_partner").test_connection()
    assert ok and said.startswith("Partner account listed in ")
    assert said.endswith("2 live instance(s) (2 whatsapp), 1 deleted")
    assert partner.token not in json.dumps([sim.requests_log(), said])


def test_an_instance_of_the_account_is_called_under_its_key_with_one_listing_for_many(make_partner, sim):
    partner = make_partner(count=30)
    keys = [partner.key(i) for i in sorted(partner.instances)]
    batch = check_instances(keys, max_concurrency=30)
    assert batch.problems == [] and len(batch.checks) == 30
    assert {c.result.data["stateInstance"] for c in batch.checks} == {"authorized"}
    assert {c.conn_id for c in batch.checks} == set(keys)
    assert {c.name for c in batch.checks} == {f"Client {n:03d}" for n in range(1, 31)}
    # 30 instances, one getInstances: the account is listed once per process while fresh.
    assert listings(sim) == 1
    # Each call went out with the instance's own token, and no token reached a check.
    assert all(partner.instances[c.instance_id] not in json.dumps(c.to_dict()) for c in batch.checks)
    assert len(sim.requests_log(None, "getStateInstance")) >= 30


def test_the_async_hook_resolves_a_key_too(make_partner):
    partner = make_partner(count=1)
    [instance_id] = partner.instances
    result = asyncio.run(GreenApiAsyncHook(partner.key(instance_id)).get_state_instance())
    assert result.ok and result.data == {"stateInstance": "authorized"}


def test_a_deleted_or_unknown_instance_is_unusable_by_name(make_partner, sim):
    partner = make_partner(count=1)
    [instance_id] = partner.instances
    sim.delete_partner_instance(partner.token, instance_id)
    with pytest.raises(UnusableConnection, match=f"instance {instance_id} was deleted from the account of "
                                                 "partner connection 'green_api_partner' on 20"):  # fmt: skip
        open_hook(partner.key(instance_id))
    with pytest.raises(UnusableConnection, match="instance 42 is not in the account of partner connection"):
        open_hook("green_api_partner/42")


@pytest.mark.parametrize(
    ("fault", "named"),
    [
        ({"mode": "http", "status": 401}, "HTTP 401: the partner token was refused (the connection's password)"),
        ({"mode": "http", "status": 429}, "HTTP 429: too many requests to the partner API"),
        ({"mode": "http", "status": 503, "body": "upstream down"}, "HTTP 503: upstream down"),
        ({"mode": "malformed"}, "the answer is not valid JSON"),
        ({"mode": "hang", "seconds": 5}, "no answer within 2 s"),
        ({"mode": "reset"}, "connection error: "),
    ],
)
def test_a_listing_that_fails_says_why_never_with_the_token(make_partner, sim, fault, named):
    partner = make_partner(count=2, faults={"getInstances": fault})
    with pytest.raises(PartnerApiError) as caught:
        GreenApiPartnerHook("green_api_partner").get_instances()
    said = str(caught.value)
    assert said.startswith("partner connection 'green_api_partner': getInstances failed: ") and named in said
    assert partner.token not in said
    # A check of the account's instances then names the account once, and calls none of them.
    batch = check_instances([partner.key(i) for i in partner.instances], max_concurrency=4)
    assert batch.checks == [] and len(batch.problems) == 1
    assert named in batch.problems[0] and batch.problems[0].endswith("2 instance(s) of this account not checked")
    assert sim.requests_log(None, "getStateInstance") == []


def test_a_partner_connection_with_a_bad_field_is_named(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GREEN_API_PARTNER_BAD", json.dumps(
        {"conn_type": "greenapipartner", "host": "api.green-api.com", "password": "TOKEN-SECRET-0123456789abcdef"}))
    with pytest.raises(ConfigError, match="Connection green_api_partner_bad: host must be an address such as"):
        GreenApiPartnerHook("green_api_partner_bad").get_instances()
    ok, said = GreenApiPartnerHook("green_api_partner_bad").test_connection()
    assert not ok and "host must be an address" in said and "TOKEN-SECRET" not in said

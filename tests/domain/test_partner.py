"""A partner account's listing, the instance list's partner entries, expiry: pure, no Airflow."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from greenapi.domain.alert_step import plan_incidents
from greenapi.domain.broken import Reading, Thresholds, Watch, fold, sign_text
from greenapi.domain.config import ConfigError, parse_instance_list, parse_instances, parse_settings
from greenapi.domain.findings import Finding
from greenapi.domain.incidents import Policy, due
from greenapi.domain.partner import (
    PartnerListingError,
    PartnerSource,
    expand,
    expiry_of,
    parse_listing,
    partner_key,
    split_key,
)
from greenapi.domain.rules import AlertKind, Status

TOKEN = "TOKEN-SECRET-0123456789abcdef"


def item(ident: int, **fields: object) -> dict[str, object]:
    return {"idInstance": ident, "name": f"Client {ident}", "typeInstance": "whatsapp", "typeAccount": "",
            "partnerUserUiid": "", "timeCreated": "2026-11-01T10:00:00", "timeDeleted": "0001-01-01T00:00:00",
            "apiTokenInstance": TOKEN, "deleted": False, "tariff": "Business", "isFree": False, "isPartner": True,
            "expirationDate": "2026-12-31T00:00:00", "isExpired": False, **fields}  # fmt: skip


def test_a_listing_reads_every_field_in_the_accounts_zone_and_keeps_the_token_out_of_sight():
    [live, gone] = parse_listing([item(1101), item(1102, deleted=True, timeDeleted="2026-12-04T13:30:00",
                                                   apiTokenInstance="")])  # fmt: skip
    assert (live.instance_id, live.name, live.type_instance, live.deleted, live.expired, live.tariff) == (
        "1101", "Client 1101", "whatsapp", False, False, "Business")
    # No zone in the documented dates: read in UTC+3 (Green API's billing) unless the connection says otherwise.
    assert live.expires_at == datetime(2026, 12, 30, 21, 0, tzinfo=UTC)
    assert gone.deleted and gone.time_deleted == datetime(2026, 12, 4, 10, 30, tzinfo=UTC)
    assert parse_listing([item(1101)], "UTC")[0].expires_at == datetime(2026, 12, 31, tzinfo=UTC)
    assert TOKEN not in repr(live) and TOKEN not in json.dumps(live.public().to_dict())
    assert live.token == TOKEN


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"error": "x"}, "getInstances must answer a JSON array of instances, got dict"),
        (["x"], "getInstances item 0 must be a JSON object, got str"),
        ([item(1101, idInstance="abc")], "getInstances item 0 (idInstance abc): idInstance must be a number"),
        ([item(1101), item(1101)], "getInstances item 1 (idInstance 1101): idInstance 1101 is listed twice"),
        ([item(1101, apiTokenInstance=None)], "getInstances item 0 (idInstance 1101): apiTokenInstance is missing"),
        ([item(1101, isExpired="no")], "isExpired must be true or false, got 'no'"),
        ([item(1101, expirationDate="tomorrow")], "expirationDate is not a date and time: 'tomorrow'"),
    ],
)
def test_a_bad_listing_is_refused_naming_the_item_and_field_never_a_token(payload, named):
    with pytest.raises(PartnerListingError) as caught:
        parse_listing(payload)
    assert named in str(caught.value) and TOKEN not in str(caught.value)


def test_the_instance_list_takes_partner_entries_beside_connection_ids():
    wanted = parse_instance_list('["green_api_default", {"partner": "green_api_partner", "type": "whatsapp"}]')
    assert wanted.conn_ids == ["green_api_default"]
    assert wanted.partners == [PartnerSource("green_api_partner", "whatsapp")]
    assert parse_instance_list([{"partner": "p"}]).partners == [PartnerSource("p", "whatsapp")]
    assert parse_instances('["a", {"partner": "p"}]') == ["a"]


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ([{"partner": "p", "kind": "whatsapp"}], "has unknown key(s) ['kind']"),
        ([{"partner": ""}], '"partner" must be the id of a Green API partner connection'),
        ([{"partner": "p/q"}], '"partner" must be the id of a Green API partner connection'),
        ([{"partner": "p", "type": 3}], '"type" must be an instance type such as "whatsapp", got 3'),
        ([{"partner": "p"}, {"partner": "p"}], "lists partner connection 'p' twice"),
    ],
)
def test_a_bad_partner_entry_is_refused_by_name(raw, named):
    with pytest.raises(ConfigError) as caught:
        parse_instance_list(json.dumps(raw))
    assert named in str(caught.value) and "green_api_instances" in str(caught.value)


def test_expanding_checks_each_live_instance_once_and_skips_what_cannot_be_listed():
    listing = parse_listing([item(3), item(1), item(2, deleted=True), item(4, typeInstance="telegram"), item(5)])
    keys = expand(["green_api_default"], [PartnerSource("acct"), PartnerSource("down")], {"acct": listing},
                  listed_both_ways=frozenset({"5"}))  # fmt: skip
    # Deleted, another type, and the one with a connection of its own are not among the account's keys.
    assert keys == ["green_api_default", "acct/1", "acct/3"]
    assert split_key("acct/3") == ("acct", "3") and split_key("green_api_default") is None
    assert partner_key("acct", "3") == "acct/3"


def test_expiry_warns_within_the_days_and_flags_what_ended():
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    assert expiry_of(now + timedelta(days=2), False, now, 3).expiring
    assert not expiry_of(now + timedelta(days=4), False, now, 3).follow_up
    # A date gone by that the account does not flag yet still warns; a flagged one is expired, not expiring.
    assert expiry_of(now - timedelta(hours=1), False, now, 3).expiring
    ended = expiry_of(now - timedelta(days=1), True, now, 3)
    assert ended.expired and not ended.expiring
    assert not expiry_of(None, False, now, 3).follow_up
    assert parse_settings('{"expiry_warning_days": 7}').expiry_warning_days == 7


def finding(reading: Reading, checked_at: datetime, instance_id: str = "1101") -> Finding:
    return Finding(conn_id=f"acct/{instance_id}", instance_id=instance_id, dashboard_url="https://example.org/",
                   checked_at=checked_at.isoformat(), status=Status.HEALTHY, state="authorized", error=None,
                   response_time_ms=40, reading=reading, name="Client 1101")  # fmt: skip


def test_an_expiring_instance_warns_once_and_resolves_when_the_date_moves():
    settings = parse_settings({"language": "en", "message_timezone": "Europe/Paris"})
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    soon = expiry_of(now + timedelta(days=2), False, now, 3)
    plan = plan_incidents([finding(Reading(expiry=soon), now)], {}, [], settings, now, {})
    [opened] = plan.incidents
    assert opened.kind is AlertKind.INSTANCE_EXPIRING and opened.open
    assert opened.last_error == "paid until 2026-12-07 13:00 CET (2 d 0 h)"
    # One warning: after its opening, neither reminders nor escalations, whatever the time.
    told = replace(opened, id=1, opening_notified_at=now, levels_notified=1)
    assert due(told, now + timedelta(days=2), [1, 2], Policy(reminder_minutes=60, escalation_minutes=15)) == []
    # Paid again: the date moved past the warning days; the warning resolves.
    later = now + timedelta(minutes=5)
    moved = expiry_of(now + timedelta(days=30), False, later, 3)
    [resolved] = plan_incidents([finding(Reading(expiry=moved), later)], {}, [told], settings, later, {}).incidents
    assert resolved.id == 1 and not resolved.open


def test_an_expired_instance_opens_its_own_incident_and_no_expiring_one():
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    _, signs = fold(Watch(), Reading(expiry=expiry_of(now - timedelta(days=1), True, now, 3)), now, Thresholds())
    holding = [s.kind for s in signs if s.holds]
    assert holding == [AlertKind.INSTANCE_EXPIRED]
    [expired] = [s for s in signs if s.holds]
    assert sign_text(expired, now, "fr", "Europe/Paris") == "abonnement expiré (fin le 2026-12-04 13:00 CET)"

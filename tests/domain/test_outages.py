"""Correlated failures: which failing checks form an outage, and the reboots a run holds back.
Pure functions, no Airflow."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from greenapi.domain.config import Settings
from greenapi.domain.health import CheckedRun, findings
from greenapi.domain.outages import (
    NO_ANSWER,
    api_host,
    find_outages,
    hold_reboots,
    hosts_checked,
    is_outage_key,
    symptom,
)
from greenapi.domain.records import CheckBatch, InstanceCheck
from greenapi.domain.results import ApiResult, ResultKind
from greenapi.domain.rules import AlertKind, Status

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOST_A, HOST_B = "7103.api.greenapi.com", "7105.api.greenapi.com"
TIMEOUT = ApiResult("getStateInstance", ResultKind.TIMEOUT, 5000, error="Connection timeout")
REFUSED = ApiResult("getStateInstance", ResultKind.CONNECTION_ERROR, 3, error="Connection refused")
HTTP_502 = ApiResult("getStateInstance", ResultKind.HTTP_ERROR, 40, 502)
HTTP_401 = ApiResult("getStateInstance", ResultKind.HTTP_ERROR, 40, 401)
HTTP_429 = ApiResult("getStateInstance", ResultKind.HTTP_ERROR, 40, 429)


def state(name: str | None) -> ApiResult:
    return ApiResult("getStateInstance", ResultKind.OK, 20, 200, {"stateInstance": name})


def checks(count: int, result: ApiResult, host: str = HOST_A, start: int = 0) -> list[InstanceCheck]:
    return [InstanceCheck(f"green_api_{i}", f"{1101000000 + i}", NOW.isoformat(), result, api_host=host)
            for i in range(start, start + count)]  # fmt: skip


def outages_of(failing: list[InstanceCheck], hosts: dict[str, int], **settings: float):
    limits = {"min_instances": 10, "fraction": 0.5, **settings}
    return find_outages(failing, hosts, **limits)  # type: ignore[arg-type]


def test_the_host_is_the_api_url_s_network_location():
    assert api_host("https://7103.api.greenapi.com") == HOST_A
    assert api_host("http://127.0.0.1:8080/") == "127.0.0.1:8080"


@pytest.mark.parametrize(("result", "expected"), [
    (TIMEOUT, NO_ANSWER), (REFUSED, NO_ANSWER), (HTTP_502, NO_ANSWER),
    (state("notAuthorized"), "state notAuthorized"), (state("starting"), "state starting"),
    (state("authorized"), None), (HTTP_401, None), (HTTP_429, None),
])  # fmt: skip
def test_the_symptoms_an_outage_groups_by(result, expected):
    assert symptom(result) == expected


def test_many_failing_alike_on_one_host_are_one_outage_naming_host_symptom_and_count():
    failing = checks(150, TIMEOUT) + checks(3, state("notAuthorized"), start=150)
    [outage] = outages_of(failing, {HOST_A: 200})
    assert (outage.host, outage.symptom, outage.count, outage.checked) == (HOST_A, NO_ANSWER, 150, 200)
    assert outage.describe() == f"platform outage on host {HOST_A} (no answer), 150 of 200 instances"
    assert outage.sample() == "1101000000, 1101000001, 1101000002, 1101000003, 1101000004 and 145 more"
    assert is_outage_key(outage.key) and HOST_A in outage.key


@pytest.mark.parametrize(
    ("failing", "checked", "why"),
    [
        (9, 9, "fewer than outage_min_instances: a small fleet behaves as before"),
        (90, 200, "less than outage_fraction of the host"),
    ],
)
def test_too_few_or_too_small_a_part_is_no_outage(failing, checked, why):
    assert outages_of(checks(failing, TIMEOUT), {HOST_A: checked}) == [], why


def test_hosts_and_symptoms_are_apart():
    failing = (checks(12, TIMEOUT) + checks(12, state("notAuthorized"), start=12)
               + checks(12, TIMEOUT, HOST_B, start=24))  # fmt: skip
    found = outages_of(failing, {HOST_A: 24, HOST_B: 40})
    # host A: 12 timeouts and 12 notAuthorized, each half of its 24; host B: 12 of 40 is too few
    assert sorted((o.host, o.symptom, o.count) for o in found) == [
        (HOST_A, NO_ANSWER, 12),
        (HOST_A, "state notAuthorized", 12),
    ]
    assert hosts_checked(checks(3, TIMEOUT) + checks(2, TIMEOUT, HOST_B, start=3)) == {HOST_A: 3, HOST_B: 2}


def test_an_outage_s_members_are_not_rebooted_and_a_run_makes_at_most_its_budget():
    members = checks(150, TIMEOUT)
    alone = checks(30, TIMEOUT, HOST_B, start=150)
    [outage] = outages_of(members + alone, {HOST_A: 200, HOST_B: 1000})
    reasons = {c.conn_id: "no answer" for c in members + alone}
    made, held = hold_reboots(reasons, members + alone, [outage], max_reboots=20)
    assert list(made) == [c.conn_id for c in alone[:20]]  # the first 20 in check order
    assert (
        held[members[0].conn_id]
        == f"not rebooted: platform outage on host {HOST_A} (no answer), 150 of 200 instances"
    )
    assert held[alone[25].conn_id] == "not rebooted: max_reboots_per_run (20) reached in this run"
    assert len(made) + len(held) == 180


def test_a_reboot_held_back_is_alerted_and_logged_with_its_reason():
    [member] = checks(1, TIMEOUT)
    [spare] = checks(1, TIMEOUT, HOST_B, start=1)
    batch = CheckBatch([member, spare], hosts={HOST_A: 1, HOST_B: 1})
    held = {member.conn_id: "not rebooted: platform outage on host X (no answer), 150 of 200 instances",
            spare.conn_id: "not rebooted: max_reboots_per_run (20) reached in this run"}  # fmt: skip
    run = CheckedRun.of(batch, NOW, held=held)
    by_conn = {f.conn_id: f for f in findings(run, None, {}, Settings())}
    for conn_id, why in held.items():
        found = by_conn[conn_id]
        assert (found.status, found.alert, found.reboot_triggered) == (
            Status.CRITICAL_FAILURE,
            AlertKind.COMPLETE_FAILURE,
            False,
        )
        assert found.error == f"Connection timeout | {why}"


def test_the_members_findings_name_their_outage():
    failing = checks(12, TIMEOUT)
    [outage] = outages_of(failing, {HOST_A: 12})
    run = CheckedRun.of(CheckBatch(failing, hosts={HOST_A: 12}), NOW, outages=[outage])
    assert {f.outage for f in findings(run, None, {}, Settings())} == {outage.key}
    assert CheckedRun.from_dict(run.to_dict()) == run  # what XCom carries


# ---- the outage's incident


def test_an_outage_opens_one_incident_follows_it_and_resolves_it_when_no_longer_seen():
    from datetime import timedelta

    from greenapi.domain.outages import parse_outage_key, plan_outages

    [outage] = outages_of(checks(12, TIMEOUT), {HOST_A: 12})
    [opened] = plan_outages([outage], [], NOW, NOW, {outage.key: NOW - timedelta(seconds=30)})
    assert (opened.instance_id, opened.kind, opened.checks, opened.members) == (
        outage.key,
        AlertKind.PLATFORM_OUTAGE,
        1,
        tuple(outage.instance_ids),
    )
    assert opened.first_failed_at == NOW - timedelta(seconds=30) and opened.open
    assert parse_outage_key(outage.key) == (HOST_A, NO_ANSWER)
    later = NOW + timedelta(minutes=5)
    [followed] = plan_outages([outage], [opened], later, later)
    assert (followed.checks, followed.opened_at, followed.open) == (2, NOW, True)
    assert plan_outages([outage], [followed], later, later) == []  # the same run again: counted once
    [resolved] = plan_outages([], [followed], later + timedelta(minutes=5), later + timedelta(minutes=5))
    assert resolved.resolved_at == later + timedelta(minutes=5) and not resolved.open
    assert plan_outages([], [resolved], later, later) == []  # over: nothing more to change


def test_the_resolution_says_how_many_recovered_and_which_still_fail():
    from dataclasses import replace

    from greenapi.domain.outages import plan_outages, report_outage, resolution_lines

    [outage] = outages_of(checks(12, TIMEOUT), {HOST_A: 20})
    [opened] = plan_outages([outage], [], NOW, NOW)
    assert report_outage(opened, set(), 20, "en").affected == (
        "12 of 20 (1101000000, 1101000001, 1101000002, 1101000003, 1101000004 and 7 more)"
    )
    resolved = replace(opened, resolved_at=NOW)
    report = report_outage(resolved, {"1101000003", "1101000011", "999"}, None, "en")
    assert (report.recovered, report.still_failing) == (10, ("1101000003", "1101000011"))
    assert resolution_lines(report, "en") == (
        "\nRecovered: 10 of 12\nStill failing (own incident opened): 2 (1101000003, 1101000011)"
    )


def test_an_outage_s_members_open_no_incident_of_their_own_but_are_counted():
    from greenapi.domain.alert_step import plan_incidents
    from greenapi.domain.outages import inhibited

    failing = checks(12, TIMEOUT)
    [outage] = outages_of(failing, {HOST_A: 12})
    _, held = hold_reboots({c.conn_id: "no answer" for c in failing}, failing, [outage], 20)
    run = CheckedRun.of(CheckBatch(failing, hosts={HOST_A: 12}), NOW, outages=[outage], held=held)
    found = findings(run, None, {}, Settings())
    quiet = plan_incidents(found, {}, [], Settings(), NOW, {}, inhibited([outage]))
    assert quiet.incidents == [] and [c.consecutive_failures for c in quiet.counters] == [1] * 12
    alone = plan_incidents(found, {}, [], Settings(), NOW, {})  # without the outage: one each
    assert len(alone.incidents) == 12

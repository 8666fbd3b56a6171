"""The reboot decision, the check's plan and schedule, a run's summary and the one codec of the
records that cross XCom: pure functions, no Airflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from greenapi.domain.broken import Drift, Reading
from greenapi.domain.codec import decode, encode
from greenapi.domain.config import ConfigError, Settings, instances_digest, shard_args
from greenapi.domain.findings import Finding
from greenapi.domain.health import (
    CheckedRun,
    RebootAttempt,
    RebootRound,
    carried,
    decide_reboot,
    not_requested,
    reboot_outcome,
    recovery_waits,
)
from greenapi.domain.records import AlertOutcome, CheckBatch, Delivery, InstanceCheck, Told, reads_made
from greenapi.domain.results import ApiResult, ResultKind
from greenapi.domain.rules import AlertKind, SkipReason, Status
from greenapi.domain.runs import RunSummary, summarize
from greenapi.domain.schedule import parse_check_schedule

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TIMEOUT = ApiResult("getStateInstance", ResultKind.TIMEOUT, 1000, error="Connection timeout")
AUTHORIZED = ApiResult("getStateInstance", ResultKind.OK, 12, 200, {"stateInstance": "authorized"})
CHECK = InstanceCheck("c1", "1101", NOW.isoformat(), TIMEOUT, "https://d/")


# ---- the automatic reboot


@pytest.mark.parametrize(("reason", "recheck", "previous", "unknown", "skipped"), [
    ("no answer", TIMEOUT, [], False, None),
    ("no answer", AUTHORIZED, [], False, SkipReason.RECOVERED),
    ("no answer", TIMEOUT, [NOW - timedelta(minutes=10)], False, SkipReason.COOLDOWN),
    ("no answer", TIMEOUT, [NOW - timedelta(hours=h) for h in (1, 2, 3)], False, SkipReason.CAP),
    ("no answer", TIMEOUT, [NOW], False, SkipReason.ALREADY),  # an earlier try of this run made it
    ("no answer", TIMEOUT, [], True, SkipReason.ALREADY),  # run again without the database: unknown
    # a stuck queue is not cleared by an authorized re-check
    ("outgoing queue stuck: 80 messages for 3 checks", AUTHORIZED, [], False, None),
])  # fmt: skip
def test_the_reboot_a_check_calls_for_is_made_or_skipped_for_a_reason(reason, recheck, previous, unknown, skipped):
    attempt = decide_reboot(CHECK, reason, recheck, previous, NOW, Settings(), unknown=unknown)
    assert (attempt.skipped, attempt.reason, attempt.recheck, attempt.result) == (skipped, reason, recheck, None)
    assert attempt.recent_reboots == len([t for t in previous if NOW - timedelta(hours=24) < t <= NOW])


def test_a_reboot_that_fails_before_its_request_is_reported_as_failing_by_name():
    attempt = not_requested(CHECK, "no answer", RuntimeError("database gone\nsecond line"))
    assert attempt.result is not None and not attempt.accepted
    assert attempt.result.error == "reboot not requested: RuntimeError: database gone"
    assert reboot_outcome(attempt) == "not accepted"


def test_a_round_carries_the_past_days_reboots_and_its_own_and_waits_for_the_accepted():
    accepted = ApiResult("reboot", ResultKind.OK, 5, 200, {"isReboot": True})
    made = RebootAttempt("c1", "1101", "no answer", requested_at=NOW.isoformat(), result=accepted)
    skipped = RebootAttempt("c2", "1102", "no answer", skipped=SkipReason.COOLDOWN)
    run = CheckedRun.of(CheckBatch([CHECK]), NOW, {"c1": "no answer"},
                        {"1102": [NOW - timedelta(hours=25), NOW - timedelta(minutes=10)]})  # fmt: skip
    round_ = carried(RebootRound([made, skipped]), run)
    assert round_.reboots_24h == {"1101": [NOW], "1102": [NOW - timedelta(minutes=10)]}
    assert recovery_waits(round_, Settings(reboot_poll_seconds=5, reboot_verify_minutes=2)) == [
        {"green_api_conn_ids": ["c1"], "poke_interval": 5.0, "timeout": 120.0}]  # one wait for all  # fmt: skip
    assert recovery_waits(RebootRound([skipped]), Settings()) == []  # nothing accepted: no wait
    assert [reboot_outcome(a) for a in round_.attempts] == ["accepted", "cooldown"]


def test_the_queue_and_settings_reads_made_are_recorded_each_with_its_own_time():
    read = [InstanceCheck("c1", "1101", NOW.isoformat(), AUTHORIZED, reading=Reading("online", 3)),
            InstanceCheck("c2", "1102", NOW.isoformat(), AUTHORIZED, reading=Reading("online", None, "match")),
            InstanceCheck("c3", "1103", NOW.isoformat(), AUTHORIZED, reading=Reading("online")),
            InstanceCheck("c4", "1104", NOW.isoformat(), TIMEOUT)]  # fmt: skip
    assert reads_made(read, NOW) == {"1101": (NOW, None), "1102": (None, NOW)}


# ---- the plan and the schedule


def test_the_check_is_split_into_tasks_of_at_most_instances_per_check_task():
    ids = [f"c{n}" for n in range(501)]
    shards = shard_args(ids, Settings(instances_per_check_task=250, max_concurrency=64))
    assert [(s["shard"], s["shards"]) for s in shards] == [(0, 3), (1, 3), (2, 3)]
    assert {s["instances_digest"] for s in shards} == {instances_digest(ids)}
    assert {(s["max_concurrency"], s["listed_in"]) for s in shards} == {(64, "Variable green_api_instances")}
    assert shard_args([], Settings()) == []


@pytest.mark.parametrize(("raw", "cron"), [(None, "*/5 * * * *"), ("", "*/5 * * * *"), ("0  * * * *", "0 * * * *"),
                                           ("*/2 8-18 * * 1-5", "*/2 8-18 * * 1-5")])  # fmt: skip
def test_the_check_schedule_is_a_five_field_cron_every_5_minutes_by_default(raw, cron):
    assert parse_check_schedule(raw) == cron


@pytest.mark.parametrize("raw", ["every minute", "* * * *", "0 0 * * * *", "99 * * * *", "@hourly"])
def test_a_bad_check_schedule_is_refused_by_name(raw):
    with pytest.raises(ConfigError, match=r"Variable green_api_check_schedule must be a cron expression of five"):
        parse_check_schedule(raw)


# ---- a run's summary


def test_a_runs_summary_counts_the_settled_checks_and_fails_on_any_problem():
    found = [Finding("c1", "1101", "u", NOW.isoformat(), Status.UNHEALTHY, "notAuthorized", "e", 5,
                     alert=AlertKind.INSTANCE_NOT_AUTHORIZED)]  # fmt: skip
    summary = summarize(found, [], AlertOutcome(), 1, settled=3)
    assert summary == RunSummary(4, {"healthy": 3, "unhealthy": 1}, 4, [])
    broken = summarize(None, ["bad Variable"], None, None)
    assert broken.problems == ["bad Variable", "the first task produced no result: see its log",
                               "send_alerts did not complete: see that task's log",
                               "log_results did not complete: the checks may be missing from green_api_health_logs"]  # fmt: skip


# ---- the codec


RECORDS = [
    CHECK,
    CheckedRun.of(CheckBatch([CHECK], ["p"], 2), NOW, {"c1": "no answer"}, {"1101": [NOW]}),
    RebootRound([RebootAttempt("c1", "1101", "no answer", recheck=TIMEOUT, skipped=SkipReason.CAP)], "db down"),
    Finding("c1", "1101", "u", NOW.isoformat(), Status.UNHEALTHY, None, "e", None, alert=AlertKind.SETTINGS_DRIFT,
            reading=Reading("online", 3, "drift", (Drift("webhookUrl", "a", "b"),), {"queue": "timeout"})),
    AlertOutcome([Delivery("opening", "1101", "336@c.us", "whatsapp", "s", 1, True, NOW.isoformat())], ["p"], 1,
                 {"1101": 4}, [Told("1101", AlertKind.COMPLETE_FAILURE, NOW)], {"1101": True}),
    RunSummary(1, {"healthy": 1}, 1, []),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_crosses_xcom_as_json_and_comes_back_the_same(record):
    import json

    raw = record.to_dict()
    assert json.loads(json.dumps(raw)) == raw  # plain JSON
    assert type(record).from_dict(raw) == record
    assert decode(type(record), encode(record)) == record


def test_the_documented_shapes_are_kept():
    assert set(CHECK.to_dict()) == {"conn_id", "instance_id", "checked_at", "result", "dashboard_url", "reading",
                                    "api_host", "name"}  # fmt: skip
    assert CHECK.to_dict()["result"]["kind"] == "timeout"
    assert set(RECORDS[1].to_dict()) == {"checks", "problems", "settled", "hosts", "logical_now", "reboot_reasons",
                                         "reboots_24h", "outages", "held"}  # fmt: skip
    assert RECORDS[4].to_dict()["untracked"] == [{"instance_id": "1101", "kind": "complete_failure",
                                                  "at": "2026-05-01T12:00:00Z"}]  # fmt: skip


def test_a_record_that_does_not_fit_is_refused_naming_the_field():
    with pytest.raises(ValidationError, match="result.kind"):
        InstanceCheck.from_dict({**CHECK.to_dict(), "result": {**TIMEOUT.to_dict(), "kind": "exploded"}})

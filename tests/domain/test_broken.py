"""What the readings of an authorized instance mean (greenapi.domain.broken): pure, no Airflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from greenapi.domain.broken import (
    Drift,
    Read,
    Reading,
    Thresholds,
    Watch,
    compare_settings,
    drift_text,
    due_reads,
    fold,
    parse_reads,
    same_setting,
    sign_text,
)
from greenapi.domain.config import ConfigError, expected_settings
from greenapi.domain.rules import AlertKind

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMITS = Thresholds(queue_alert_threshold=50, queue_alert_checks=3, offline_alert_checks=3)


@pytest.mark.parametrize(("expected", "actual", "same"), [
    ("yes", "yes", True), ("yes", "no", False), (500, "500", True), ("500", 500, True), (500, 500.0, True),
    (True, True, True), (True, "true", False), ("yes", True, False), ("", None, True), ("https://a", "https://b", False),
])  # fmt: skip
def test_a_number_matches_its_text_a_bool_only_a_bool(expected, actual, same):
    assert same_setting(expected, actual) is same


def test_drift_names_each_key_and_never_keeps_a_secret():
    expected = {"webhookUrl": "https://bot/hook", "webhookUrlToken": "s3cret", "incomingWebhook": "yes", "nope": "x"}
    actual = {"webhookUrl": "https://other/", "webhookUrlToken": "changed", "incomingWebhook": "yes"}
    drift = compare_settings(expected, actual)
    assert drift == (
        Drift("webhookUrl", "https://bot/hook", "https://other/"),
        Drift("webhookUrlToken", secret=True),
        Drift("nope", "x", missing=True),
    )
    text = drift_text(drift, "en")
    assert text == ('webhookUrl: expected "https://bot/hook", actual "https://other/"; '
                    "webhookUrlToken: differs from the expected value (secret, not shown); "
                    "nope: not returned by getSettings")  # fmt: skip
    assert "s3cret" not in repr(drift) and "changed" not in repr(drift)


@pytest.mark.parametrize(("raw", "named"), [
    ("{not json", "is not valid JSON"), ("[1]", "must be a JSON object"), ({"": "x"}, "has an empty key"),
    ({"webhookUrl": None}, "key 'webhookUrl' must be text, a number or true/false, got null"),
    ({"stateWebhook": ["yes"]}, "key 'stateWebhook' must be text, a number or true/false, got list"),
])  # fmt: skip
def test_bad_expected_settings_are_refused_by_name(raw, named):
    with pytest.raises(ConfigError, match="Connection c1: extra expected_settings") as err:
        expected_settings("c1", raw)
    assert named in str(err.value)


def test_a_secret_expected_value_is_never_echoed_by_an_error():
    with pytest.raises(ConfigError) as err:
        expected_settings("c1", '{"webhookUrlToken": {"s3cret-value": 1}}')
    assert "s3cret" not in str(err.value)


def test_also_read_refuses_an_unknown_read_by_name():
    assert parse_reads(["queue", "socket"]) == {Read.QUEUE, Read.SOCKET}
    with pytest.raises(ValueError, match=r"unknown read\(s\) \['sockets'\]"):
        parse_reads(["sockets"])


def test_reads_are_due_by_their_own_periods():
    wanted = frozenset(Read)
    due = due_reads(wanted, T0, T0 - timedelta(minutes=5), T0 - timedelta(minutes=30),
                    queue_minutes=5, settings_minutes=60)  # fmt: skip
    assert due == {Read.SOCKET, Read.QUEUE}
    due = due_reads(wanted, T0, T0 - timedelta(minutes=2), T0 - timedelta(minutes=60),
                    queue_minutes=5, settings_minutes=60)  # fmt: skip
    assert due == {Read.SOCKET, Read.SETTINGS}
    assert due_reads(wanted, T0, None, None, queue_minutes=5, settings_minutes=60) == wanted


def run(readings):
    """Fold readings of successive checks, 5 minutes apart: the signs of each."""
    out, watch = [], Watch()
    for n, reading in enumerate(readings):
        watch, signs = fold(watch, reading, T0 + timedelta(minutes=5 * n), LIMITS)
        out.append({s.kind: s.holds for s in signs})
    return out, watch


def test_socket_offline_holds_from_the_third_check_in_a_row():
    off, on = Reading(socket="offline"), Reading(socket="online")
    signs, watch = run([off, off, on, off, off, off])
    assert [s[AlertKind.SOCKET_OFFLINE] for s in signs] == [False, False, False, False, False, True]
    assert (watch.socket_streak, watch.socket_since) == (3, T0 + timedelta(minutes=15))


@pytest.mark.parametrize(("lengths", "holds"), [
    ([60, 60, 60], [False, False, True]),
    ([60, 61, 62, 63], [False, False, True, True]),
    ([60, 59, 58, 57], [False, False, False, False]),  # going down: the messages move
    ([60, 60, 49, 60, 60], [False, False, False, False, False]),
    ([10, 60, 70, 80], [False, False, False, True]),
])  # fmt: skip
def test_queue_stuck_needs_the_threshold_for_checks_in_a_row_without_going_down(lengths, holds):
    signs, _ = run([Reading(queue=n) for n in lengths])
    assert [s[AlertKind.OUTGOING_QUEUE_STUCK] for s in signs] == holds


def test_a_read_not_made_gives_no_sign_and_keeps_the_streak():
    signs, watch = run([Reading(socket="offline"), None, Reading(), Reading(socket="offline")])
    assert signs == [{AlertKind.SOCKET_OFFLINE: False}, {}, {}, {AlertKind.SOCKET_OFFLINE: False}]
    assert watch.socket_streak == 2


def test_texts_give_the_count_and_how_long_in_both_languages():
    _, watch = run([Reading(queue=70)] * 2)
    watch, [sign] = fold(watch, Reading(queue=75), T0 + timedelta(minutes=10), LIMITS)
    assert sign_text(sign, T0 + timedelta(minutes=10), "fr") == "75 message(s) en attente depuis 10 min (3 contrôle(s) sans baisse)"
    assert sign_text(sign, T0 + timedelta(minutes=10), "en") == "75 message(s) waiting for 10 min (3 check(s) without going down)"

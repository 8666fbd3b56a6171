"""'Authorized but broken': what a check reads beyond the state, and when it is a problem.

``getStateInstance`` says ``authorized`` while the bot may still be down for its customers: its
webhook settings changed (``getSettings``), its outgoing queue does not move
(``showMessagesQueue``), or its socket to WhatsApp stays offline (``getStatusInstance``). A check
of an authorized instance reads these (:class:`Reading`); :func:`fold` turns the readings of
successive checks into streaks and says, per problem, whether it holds now. Pure functions: the
hook reads, the alert step opens and resolves the incidents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from greenapi.domain.codec import Record
from greenapi.domain.incidents import format_duration
from greenapi.domain.partner import Expiry
from greenapi.domain.rules import AlertKind

# getSettings keys whose values are secrets: never shown, logged or stored.
SECRET_SETTINGS = frozenset({"webhookUrlToken", "proxyInstance"})


class Read(StrEnum):
    """What a check may read beyond the state (the operator's ``also_read``)."""

    SOCKET = "socket"  # getStatusInstance
    QUEUE = "queue"  # showMessagesQueue
    SETTINGS = "settings"  # getSettings, compared with the connection's expected_settings


ALL_READS = frozenset(Read)

SETTINGS_MATCH, SETTINGS_DRIFT = "match", "drift"


def parse_reads(value: Any) -> frozenset[Read]:
    """``also_read`` as a set; an unknown name is refused by name."""
    names = [value] if isinstance(value, str) else list(value or ())
    unknown = [n for n in names if n not in {r.value for r in Read}]
    if unknown:
        raise ValueError(f"also_read: unknown read(s) {unknown!r}; choose among {sorted(r.value for r in Read)}")
    return frozenset(Read(n) for n in names)


@dataclass(frozen=True)
class Drift(Record):
    """One expected setting that differs. A secret's values are never kept."""

    key: str
    expected: Any = None
    actual: Any = None
    secret: bool = False
    missing: bool = False  # getSettings did not return the key


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def same_setting(expected: Any, actual: Any) -> bool:
    """A number matches its text (500 and "500"), a bool only a bool, text only the same text."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected is actual
    if expected == actual:
        return True
    left, right = _number(expected), _number(actual)
    if left is not None and right is not None:
        return left == right
    return str(expected) == ("" if actual is None else str(actual))


def compare_settings(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> tuple[Drift, ...]:
    """The expected keys whose actual value differs (in the expected keys' order)."""
    drifts = []
    for key, want in expected.items():
        secret = key in SECRET_SETTINGS
        if key not in actual:
            drifts.append(Drift(key, None if secret else want, secret=secret, missing=True))
        elif not same_setting(want, actual[key]):
            drifts.append(Drift(key, secret=True) if secret else Drift(key, want, actual[key]))
    return tuple(drifts)


@dataclass(frozen=True)
class Reading(Record):
    """What one check read beyond the state; None where it did not read (or the read failed).

    JSON: ``{"socket": "online"|"offline"|null, "queue": int|null, "settings": "match"|"drift"|null,
    "drift": [Drift], "errors": {read: why}, "expiry": Expiry|null}``. A queue is carried as its
    length only: no message body leaves the worker. Settings drifts never hold a secret's value.
    ``expiry``: what the partner account says of the instance's paid period (read at every check
    of a partner account's instance, whatever its state).
    """

    socket: str | None = None
    queue: int | None = None
    settings: str | None = None
    drift: tuple[Drift, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)
    expiry: Expiry | None = None

    def follow_up(self, limits: Thresholds) -> bool:
        """Whether the alert step must see this check: a socket offline, a queue at the threshold, a
        drift, an instance expired or about to."""
        return (self.socket == "offline" or (self.queue or 0) >= limits.queue_alert_threshold
                or self.settings == SETTINGS_DRIFT or (self.expiry is not None and self.expiry.follow_up))  # fmt: skip


def due_reads(wanted: frozenset[Read], now: datetime, queue_read_at: datetime | None,
              settings_read_at: datetime | None, *, queue_minutes: float, settings_minutes: float) -> frozenset[Read]:
    """The reads due now: the socket every check; the queue and the settings when their period has
    passed since their last read. A minute of slack keeps a 5-minute period from slipping a check
    when one run starts a few seconds early."""
    slack = timedelta(minutes=1)
    due = {Read.SOCKET} & wanted
    if Read.QUEUE in wanted and (queue_read_at is None or now - queue_read_at >= timedelta(minutes=queue_minutes) - slack):
        due.add(Read.QUEUE)
    if Read.SETTINGS in wanted and (
        settings_read_at is None or now - settings_read_at >= timedelta(minutes=settings_minutes) - slack
    ):
        due.add(Read.SETTINGS)
    return frozenset(due)


@dataclass(frozen=True)
class Watch:
    """An instance's running streaks (its row of ``green_api_instance_status``)."""

    queue_streak: int = 0  # checks in a row with a queue at the threshold or above, not going down
    queue_since: datetime | None = None  # real time of that streak's first check
    queue_length: int | None = None  # the last length read
    socket_streak: int = 0  # checks in a row with the socket offline
    socket_since: datetime | None = None


@dataclass(frozen=True)
class Thresholds:
    """When the readings of an authorized instance become a problem."""
    queue_alert_threshold: int = 50
    queue_alert_checks: int = 3
    offline_alert_checks: int = 3


@dataclass(frozen=True)
class Sign:
    """One problem as this check shows it: holding (opens or keeps its incident) or not (resolves it)."""

    kind: AlertKind
    holds: bool
    since: datetime | None = None  # real time of the first check of the streak
    checks: int = 0
    queue: int | None = None
    drift: tuple[Drift, ...] = ()
    expires_at: datetime | None = None


def fold(watch: Watch, reading: Reading | None, checked_at: datetime, limits: Thresholds) -> tuple[Watch, list[Sign]]:
    """This check's reading folded into the streaks, and the signs it gives. A read not made (or
    failed) gives no sign and leaves its streak as it was."""
    signs: list[Sign] = []
    if reading is None:
        return watch, signs
    if reading.expiry is not None:
        until = datetime.fromisoformat(reading.expiry.expires_at) if reading.expiry.expires_at else None
        signs.append(Sign(AlertKind.INSTANCE_EXPIRED, reading.expiry.expired, checked_at, 1, expires_at=until))
        signs.append(Sign(AlertKind.INSTANCE_EXPIRING, reading.expiry.expiring, checked_at, 1, expires_at=until))
    if reading.settings is not None:
        signs.append(Sign(AlertKind.SETTINGS_DRIFT, reading.settings == SETTINGS_DRIFT, checked_at, 1,
                          drift=reading.drift))  # fmt: skip
    if reading.queue is not None:
        length = reading.queue
        stuck = length >= limits.queue_alert_threshold
        down = watch.queue_length is not None and length < watch.queue_length
        if stuck and not down:
            streak = watch.queue_streak + 1
            since = watch.queue_since if watch.queue_streak and watch.queue_since else checked_at
        else:  # short, or going down: the messages move
            streak, since = 0, None
        watch = replace(watch, queue_streak=streak, queue_since=since, queue_length=length)
        signs.append(Sign(AlertKind.OUTGOING_QUEUE_STUCK, streak >= limits.queue_alert_checks, since or checked_at,
                          streak, queue=length))  # fmt: skip
    if reading.socket is not None:
        offline = reading.socket == "offline"
        streak = watch.socket_streak + 1 if offline else 0
        since = (watch.socket_since if watch.socket_streak and watch.socket_since else checked_at) if offline else None
        watch = replace(watch, socket_streak=streak, socket_since=since)
        signs.append(Sign(AlertKind.SOCKET_OFFLINE, streak >= limits.offline_alert_checks, since or checked_at, streak))
    return watch, signs


_WORDS = {
    "fr": {"expected": "attendu", "actual": "actuel", "secret": "différent de la valeur attendue (secret, non affiché)",
           "missing": "absent de la réponse de getSettings", "ok": "réglages conformes",
           "queue": "{n} message(s) en attente depuis {d} ({c} contrôle(s) sans baisse)",
           "queue_ok": "{n} message(s) en attente", "socket": "socket hors ligne depuis {d} ({c} contrôle(s) de suite)",
           "socket_ok": "socket en ligne", "expiring": "abonnement jusqu'au {t} ({d})",
           "expired": "abonnement expiré (fin le {t})", "expiry_ok": "abonnement valable jusqu'au {t}"},
    "en": {"expected": "expected", "actual": "actual", "secret": "differs from the expected value (secret, not shown)",
           "missing": "not returned by getSettings", "ok": "settings as expected",
           "queue": "{n} message(s) waiting for {d} ({c} check(s) without going down)",
           "queue_ok": "{n} message(s) waiting", "socket": "socket offline for {d} ({c} check(s) in a row)",
           "socket_ok": "socket online", "expiring": "paid until {t} ({d})",
           "expired": "subscription expired (ended {t})", "expiry_ok": "paid until {t}"},
}  # fmt: skip


def _shown(value: Any) -> str:
    return '""' if value in (None, "") else f'"{value}"'


def drift_text(drift: tuple[Drift, ...], language: str = "fr") -> str:
    """Each differing key with its expected and actual values; a secret is named, never shown."""
    words = _WORDS[language]
    parts = []
    for d in drift:
        if d.missing:
            parts.append(f"{d.key}: {words['missing']}")
        elif d.secret:
            parts.append(f"{d.key}: {words['secret']}")
        else:
            parts.append(f"{d.key}: {words['expected']} {_shown(d.expected)}, {words['actual']} {_shown(d.actual)}")
    return "; ".join(parts) or words["ok"]


def sign_text(sign: Sign, checked_at: datetime, language: str = "fr", timezone: str = "UTC") -> str:
    """What an incident of this sign says (its ``last_error``), in the messages' language; times
    in ``timezone``, with its name."""
    words = _WORDS[language]
    if sign.kind in (AlertKind.INSTANCE_EXPIRING, AlertKind.INSTANCE_EXPIRED):
        until = sign.expires_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z") if sign.expires_at else "?"
        if not sign.holds:
            return words["expiry_ok"].format(t=until)
        if sign.kind is AlertKind.INSTANCE_EXPIRED:
            return words["expired"].format(t=until)
        left = format_duration(sign.expires_at - checked_at, language) if sign.expires_at else "?"
        return words["expiring"].format(t=until, d=left if sign.expires_at and sign.expires_at > checked_at else "-")
    lasted = format_duration(checked_at - sign.since, language) if sign.since else format_duration(timedelta(0))
    if sign.kind is AlertKind.SETTINGS_DRIFT:
        return drift_text(sign.drift, language)
    if sign.kind is AlertKind.OUTGOING_QUEUE_STUCK:
        key = "queue" if sign.holds else "queue_ok"
        return words[key].format(n=sign.queue, d=lasted, c=sign.checks)
    return words["socket" if sign.holds else "socket_ok"].format(d=lasted, c=sign.checks)

"""Validation of the package's configuration: every error names the bad key and value."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

INSTANCES_VARIABLE = "green_api_instances"
SETTINGS_VARIABLE = "green_api_settings"
DEFAULT_INSTANCES = ("green_api_default",)
ALERTS_CONN_ID = "green_api_alerts"
PACKAGE_DAG_IDS = ("green_api_health_check", "green_api_scheduled_reboot", "green_api_reboot", "green_api_maintenance")

_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
_INSTANCE_ID = re.compile(r"^[0-9]{1,20}$")
_CHAT_ID = re.compile(r"^([0-9]{7,15}@c\.us|[0-9]{6,}(-[0-9]+)?@g\.us)$")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Variable ``green_api_settings``: every key optional, each with its default."""

    message_timezone: str = "Europe/Paris"  # time shown in messages
    language: str = "fr"  # messages in French (the seed's) or English ("en")
    max_concurrency: int = 256  # instances called at once in one task (see make bench)
    instances_per_check_task: int = 250  # the check is split into mapped tasks of at most this many
    # incidents
    failure_threshold: int = 1  # consecutive failing checks that open an incident
    success_threshold: int = 1  # consecutive healthy checks that resolve it
    reminder_minutes: float = 60  # while open, a reminder this often
    escalation_minutes: float = 15  # the next priority level is alerted after this long, and so on
    settle_minutes: float = 10  # after the scheduled reboot, failing checks open no incident for this long
    # delivery
    alert_senders: tuple[str, ...] = ()  # Green API connections tried after green_api_alerts
    send_retries: int = 3  # attempts per sender and contact (429, 5xx, timeouts, connection errors)
    send_backoff_seconds: float = 1.0  # first wait between attempts, doubled each time
    smtp_conn_id: str = "smtp_default"  # e-mail fallback when this connection exists
    fallback_chat_ids: tuple[str, ...] = ()  # who is told when the contacts cannot be used (database down)
    max_contacts: int = 50  # more active contacts than this is a mistake (an imported customer list?)
    # automatic reboots
    recheck_timeout_seconds: float = 5  # the quick re-check that confirms a failure before rebooting
    reboot_cooldown_minutes: float = 30  # between automatic reboots of one instance
    reboot_daily_cap: int = 3  # automatic reboots per instance per 24 h; past it, a reboot_loop alert
    starting_reboot_minutes: float = 5  # "starting" for longer than this -> reboot (vendor advice)
    reboot_on_yellow_card: bool = False  # yellowCard: alert only, unless this is true
    reboot_verify_minutes: float = 5.0  # after a reboot: how long to wait for "authorized"
    reboot_poll_seconds: int = 15  # how often to look while waiting (the API allows 1 request/s)
    # retention
    health_log_retention_days: int = 30  # green_api_health_logs rows older than this are deleted
    airflow_retention_days: int = 30  # runs, task instances, XComs and logs of these DAGs, likewise
    cleanup_batch_size: int = 5000  # rows deleted per transaction


def _number(key: str, value: Any, low: float, high: float, *, integer: bool = False, strict_low: bool = False) -> None:
    kinds = int if integer else int | float
    bad = isinstance(value, bool) or not isinstance(value, kinds)
    if not bad:
        bad = value <= low if strict_low else value < low
        bad = bad or value > high
    if bad:
        what = "an integer" if integer else "a number"
        lower = f"above {low:g}" if strict_low else f"from {low:g}"
        raise ConfigError(f"{key} must be {what} {lower} to {high:g}, got {value!r}")


_LIMITS: dict[str, tuple[float, float, bool, bool]] = {  # key: (low, high, integer, strict low)
    "max_concurrency": (1, 1000, True, False),
    "instances_per_check_task": (1, 10000, True, False),
    "max_contacts": (1, 1000, True, False),
    "failure_threshold": (1, 100, True, False),
    "success_threshold": (1, 100, True, False),
    "reminder_minutes": (0, 10080, False, True),
    "escalation_minutes": (0, 10080, False, True),
    "settle_minutes": (0, 240, False, False),
    "send_retries": (1, 10, True, False),
    "send_backoff_seconds": (0, 60, False, False),
    "recheck_timeout_seconds": (0, 60, False, True),
    "reboot_cooldown_minutes": (0, 1440, False, False),
    "reboot_daily_cap": (0, 100, True, False),
    "starting_reboot_minutes": (0, 1440, False, True),
    "reboot_verify_minutes": (0, 120, False, True),
    "reboot_poll_seconds": (1, 600, True, False),
    "health_log_retention_days": (1, 3650, True, False),
    "airflow_retention_days": (1, 3650, True, False),
    "cleanup_batch_size": (1, 1_000_000, True, False),
}


def _conn_ids(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and _CONN_ID.match(v) for v in value):
        raise ConfigError(f"{key} must be a list of connection ids, got {value!r}")
    return tuple(value)


def parse_settings(raw: str | dict[str, Any] | None) -> Settings:
    """Variable ``green_api_settings``: unknown keys and bad values are refused by name."""
    if raw is None or raw == "":
        return Settings()
    value = _load_json(SETTINGS_VARIABLE, raw)
    if not isinstance(value, dict):
        raise ConfigError(f"Variable {SETTINGS_VARIABLE} must be a JSON object, got {value!r}")
    known = set(Settings.__dataclass_fields__)
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(
            f"Variable {SETTINGS_VARIABLE} has unknown key(s) {unknown}; known keys: {sorted(known)}"
        )
    for key, (low, high, integer, strict) in _LIMITS.items():
        if key in value:
            _number(f"{SETTINGS_VARIABLE}.{key}", value[key], low, high, integer=integer, strict_low=strict)
    fields = dict(value)
    for key in ("alert_senders", "fallback_chat_ids"):
        if key in fields:
            if key == "alert_senders":
                fields[key] = _conn_ids(f"{SETTINGS_VARIABLE}.{key}", fields[key])
            elif not isinstance(fields[key], list) or not all(isinstance(v, str) and _CHAT_ID.match(v) for v in fields[key]):
                raise ConfigError(
                    f"{SETTINGS_VARIABLE}.{key} must be a list of chat ids like '33612345678@c.us', got {fields[key]!r}"
                )
            else:
                fields[key] = tuple(fields[key])
    settings = Settings(**fields)
    check_timezone(f"{SETTINGS_VARIABLE}.message_timezone", settings.message_timezone)
    if settings.language not in ("fr", "en"):
        raise ConfigError(f"{SETTINGS_VARIABLE}.language must be 'fr' or 'en', got {settings.language!r}")
    if not isinstance(settings.reboot_on_yellow_card, bool):
        raise ConfigError(
            f"{SETTINGS_VARIABLE}.reboot_on_yellow_card must be true or false, got {settings.reboot_on_yellow_card!r}"
        )
    if not isinstance(settings.smtp_conn_id, str) or not _CONN_ID.match(settings.smtp_conn_id):
        raise ConfigError(f"{SETTINGS_VARIABLE}.smtp_conn_id must be a connection id, got {settings.smtp_conn_id!r}")
    return settings


@dataclass(frozen=True)
class InstanceConfig:
    """One Green API instance as read from an Airflow connection (token kept out of repr).

    ``dashboard_url``: the link put in alerts, from the connection's extra; None when unset, and
    the tasks then link to the dashboard in the Airflow UI.
    """

    conn_id: str
    api_url: str
    instance_id: str
    dashboard_url: str | None
    state_timeout: float = 10.0
    reboot_timeout: float = 30.0
    send_timeout: float = 20.0


def _load_json(name: str, raw: str | Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Variable {name} is not valid JSON ({exc.msg} at char {exc.pos}): {raw!r}") from None


def parse_instances(raw: str | list[Any] | None) -> list[str]:
    """The connection ids of Variable ``green_api_instances`` (a JSON list of strings)."""
    if raw is None or raw == "":
        return list(DEFAULT_INSTANCES)
    value = _load_json(INSTANCES_VARIABLE, raw)
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"Variable {INSTANCES_VARIABLE} must be a non-empty JSON list of connection ids, got {value!r}"
        )
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str) or not _CONN_ID.match(item):
            raise ConfigError(f"Variable {INSTANCES_VARIABLE} has an invalid connection id: {item!r}")
        if item in seen:
            raise ConfigError(f"Variable {INSTANCES_VARIABLE} lists connection id {item!r} twice")
        seen.add(item)
    return list(value)


def plan_shards(instances_raw: Any, settings_raw: Any) -> list[list[str]]:
    """The configured connection ids, split into the check's mapped tasks (order kept).

    Each mapped task holds at most ``instances_per_check_task`` ids, and the shards differ by one
    at most. Airflow masks each token a task process loads, at a cost that grows with the square
    of the tokens that process already holds; small shards keep it negligible (see make bench).
    Raises ConfigError for an invalid Variable: nothing can be checked.
    """
    conn_ids = parse_instances(instances_raw)
    size = parse_settings(settings_raw).instances_per_check_task
    count = -(-len(conn_ids) // size)
    return [conn_ids[i * len(conn_ids) // count:(i + 1) * len(conn_ids) // count] for i in range(count)]


def check_timezone(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be an IANA timezone name such as 'Europe/Paris', got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key} is not a known IANA timezone: {value!r}") from None
    return value


def _extra(extra: dict[str, Any], key: str) -> Any:
    # Forms of older Airflow versions stored custom fields as ``extra__<conn_type>__<key>``.
    value = extra.get(key)
    return extra.get(f"extra__green_api__{key}") if value in (None, "") else value


def _timeout(conn_id: str, extra: dict[str, Any], key: str, default: float) -> float:
    value = _extra(extra, key)
    if value is None or value == "":
        return default
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 600:
        raise ConfigError(f"Connection {conn_id}: extra {key} must be a number of seconds in (0, 600], got {value!r}")
    return float(value)


def _dashboard_url(conn_id: str, extra: dict[str, Any]) -> str | None:
    value = _extra(extra, "dashboard_url")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parts = urlsplit(value.strip()) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"Connection {conn_id}: extra dashboard_url must be an http(s) address such as "
            f"'https://airflow.example.org/green-api/', got {value!r}"
        )
    return str(value).strip()


def instance_config(
    conn_id: str, host: str | None, login: str | None, password: str | None, extra: dict[str, Any]
) -> InstanceConfig:
    """Check a Green API connection's fields; the error names the field, never the token."""
    url = (host or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"Connection {conn_id}: host must be the instance's apiUrl such as "
            f"'https://7105.api.greenapi.com', got {host!r}"
        )
    instance_id = (login or "").strip()
    if not _INSTANCE_ID.match(instance_id):
        raise ConfigError(f"Connection {conn_id}: login must be the numeric idInstance, got {login!r}")
    if not password or not password.strip():
        raise ConfigError(f"Connection {conn_id}: password (apiTokenInstance) is empty")
    if any(c in password for c in "/?#% \t\r\n"):
        raise ConfigError(f"Connection {conn_id}: password (apiTokenInstance) contains characters a token never has")
    return InstanceConfig(
        conn_id=conn_id,
        api_url=url,
        instance_id=instance_id,
        dashboard_url=_dashboard_url(conn_id, extra),
        state_timeout=_timeout(conn_id, extra, "state_timeout", 10.0),
        reboot_timeout=_timeout(conn_id, extra, "reboot_timeout", 30.0),
        send_timeout=_timeout(conn_id, extra, "send_timeout", 20.0),
    )


def too_many_contacts(count: int, settings: Settings) -> str | None:
    """Why a contact list must not be messaged (nobody from it is), or None when it may."""
    if count <= settings.max_contacts:
        return None
    return (
        f"system_support_contacts has {count} active contacts, more than {SETTINGS_VARIABLE}.max_contacts "
        f"({settings.max_contacts}): nobody was messaged from it; deactivate contacts or raise max_contacts"
    )

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


class ConfigError(ValueError):
    """A configuration value is invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Options of Variable ``green_api_settings`` (every key optional)."""

    message_timezone: str = "Europe/Paris"
    max_concurrency: int = 32
    reboot_verify_minutes: float = 5.0  # after a scheduled/manual reboot: how long to wait for "authorized"
    reboot_poll_seconds: int = 15  # how often to look while waiting (the API allows 1 request/s)
    health_log_retention_days: int = 30  # green_api_health_logs rows older than this are deleted
    airflow_retention_days: int = 30  # runs, task instances, XComs and logs of these DAGs, likewise
    cleanup_batch_size: int = 5000  # rows deleted per transaction


@dataclass(frozen=True)
class InstanceConfig:
    """One Green API instance as read from an Airflow connection (token kept out of repr)."""

    conn_id: str
    api_url: str
    instance_id: str
    dashboard_url: str
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


def check_timezone(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be an IANA timezone name such as 'Europe/Paris', got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key} is not a known IANA timezone: {value!r}") from None
    return value


def _positive_int(key: str, value: Any, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise ConfigError(f"{key} must be an integer from 1 to {upper}, got {value!r}")
    return value


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
    settings = Settings(**value)
    check_timezone(f"{SETTINGS_VARIABLE}.message_timezone", settings.message_timezone)
    _positive_int(f"{SETTINGS_VARIABLE}.max_concurrency", settings.max_concurrency, 1000)
    _positive_int(f"{SETTINGS_VARIABLE}.reboot_poll_seconds", settings.reboot_poll_seconds, 600)
    _positive_int(f"{SETTINGS_VARIABLE}.health_log_retention_days", settings.health_log_retention_days, 3650)
    _positive_int(f"{SETTINGS_VARIABLE}.airflow_retention_days", settings.airflow_retention_days, 3650)
    _positive_int(f"{SETTINGS_VARIABLE}.cleanup_batch_size", settings.cleanup_batch_size, 1_000_000)
    minutes = settings.reboot_verify_minutes
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not 0 < minutes <= 120:
        raise ConfigError(
            f"{SETTINGS_VARIABLE}.reboot_verify_minutes must be a number of minutes in (0, 120], got {minutes!r}"
        )
    return settings


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
    dashboard = _extra(extra, "dashboard_url") or url
    return InstanceConfig(
        conn_id=conn_id,
        api_url=url,
        instance_id=instance_id,
        dashboard_url=str(dashboard),
        state_timeout=_timeout(conn_id, extra, "state_timeout", 10.0),
        reboot_timeout=_timeout(conn_id, extra, "reboot_timeout", 30.0),
        send_timeout=_timeout(conn_id, extra, "send_timeout", 20.0),
    )

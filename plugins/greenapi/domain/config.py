"""Validation of the package's configuration: every error names the bad key and value."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from greenapi.domain.partner import (
    DEFAULT_INSTANCE_API_URL,
    DEFAULT_PARTNER_ZONE,
    DEFAULT_TYPE,
    PartnerSource,
)

DB_CONN_ID = "green_api_db"  # the health database (PostgreSQL)
# The Green API connection type. It used to be ``green_api``; Airflow warns at every read of a
# connection whose type holds "_" (an URI scheme may not, RFC 3986) and turns "-" into "_", hence
# one word. Connections of the former name keep working and are migrated at start.
CONN_TYPE = "greenapi"
LEGACY_CONN_TYPE = "green_api"
INSTANCES_VARIABLE = "green_api_instances"
SETTINGS_VARIABLE = "green_api_settings"
DEFAULT_INSTANCES = ("green_api_default",)
ALERTS_CONN_ID = "green_api_alerts"
PACKAGE_DAG_IDS = ("green_api_health_check", "green_api_scheduled_reboot", "green_api_reboot", "green_api_maintenance")

_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
_INSTANCE_ID = re.compile(r"^[0-9]{1,20}$")
_CHAT_ID = re.compile(r"^([0-9]{7,15}@c\.us|[0-9]{6,}(-[0-9]+)?@g\.us)$")
_TIMEZONE = "an IANA timezone name such as 'Europe/Paris'"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names it."""


class FieldError(ConfigError):
    """A connection's field is invalid: ``field`` names it as the connection has it (``host``,
    ``login``, ``password``, ``extra <key>``), ``problem`` says what is wrong with it, never
    showing a token (an instances file names its own column with them: greenapi.instances)."""

    def __init__(self, conn_id: str, field: str, problem: str, label: str | None = None) -> None:
        super().__init__(f"Connection {conn_id}: {label or field} {problem}")
        self.field, self.problem = field, problem


@dataclass(frozen=True)
class _Expected:
    """What a key's value must be, as its error message says it (numbers say it with their bounds)."""

    text: str


def _timezone(value: Any) -> Any:
    return check_timezone(f"{SETTINGS_VARIABLE}.message_timezone", value)


_ConnId = Annotated[str, StringConstraints(strict=True, pattern=_CONN_ID.pattern)]
_ConnIds = Annotated[tuple[_ConnId, ...], _Expected("a list of connection ids")]
_ChatIds = Annotated[
    tuple[Annotated[str, StringConstraints(strict=True, pattern=_CHAT_ID.pattern)], ...],
    _Expected("a list of chat ids like '33612345678@c.us'"),
]


class Settings(BaseModel):
    """The Variable green_api_settings: a JSON object, every key optional, each with its default.

    An unknown key or a bad value is refused, and the error names it.
    """

    # Strict: a bool is not a number, nor a number a bool, nor a string either (JSON has them all).
    # The lists are the exception (strict=False): JSON gives lists, the settings keep tuples.
    model_config = ConfigDict(
        title=SETTINGS_VARIABLE,
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    message_timezone: Annotated[
        str, BeforeValidator(_timezone), _Expected(_TIMEZONE)
    ] = Field("Europe/Paris", description=(
        "IANA time zone of the times in messages (`dd/mm/yyyy HH:MM:SS CET`: each names its zone). The dashboard uses it only until "
        "the browser has told it the Airflow UI's zone."
    ))
    language: Annotated[Literal["fr", "en"], _Expected("'fr' or 'en'")] = Field("fr", description=(
        'Messages in French (`"fr"`, the seed system\'s) or English (`"en"`).'
    ))
    max_concurrency: int = Field(256, ge=1, le=1000, description=(
        "Instances called at once in one task (threads). With `make bench`, 1,000 instances take 29.9 s "
        "at 32 and 12.5 s at 256."
    ))
    instances_per_check_task: int = Field(250, ge=1, le=10000, description=(
        "The check is split into mapped tasks of at most this many instances: Airflow masks each token a "
        "task loads, at a cost that grows with the square of the tokens in one task unless the deployment "
        "sets greenapi.masking.expand_bundle (docs/deployment.md, Many instances)."
    ))
    # incidents
    failure_threshold: int = Field(1, ge=1, le=100, description=(
        "Consecutive failing checks that open an incident."
    ))
    success_threshold: int = Field(1, ge=1, le=100, description=(
        "Consecutive healthy checks that resolve it."
    ))
    reminder_minutes: float = Field(60, gt=0, le=10080, description=(
        "While an incident is open, a reminder this often."
    ))
    escalation_minutes: float = Field(15, gt=0, le=10080, description=(
        "After this long, the next priority level is alerted too, and so on."
    ))
    settle_minutes: float = Field(10, ge=0, le=240, description=(
        "After the daily reboot, failing checks are logged but open nothing for this long."
    ))
    # delivery
    alert_senders: _ConnIds = Field((), strict=False, description=(
        "Green API connection ids tried after `green_api_alerts`."
    ))
    send_retries: int = Field(3, ge=1, le=10, description=(
        "Attempts per sender and contact on 429, 5xx, timeouts and connection errors."
    ))
    send_backoff_seconds: float = Field(1.0, ge=0, le=60, description=(
        "First wait between attempts, doubled each time."
    ))
    smtp_conn_id: Annotated[_ConnId, _Expected("a connection id")] = Field("smtp_default", description=(
        "The Airflow connection of the e-mail fallback, used when it exists."
    ))
    fallback_chat_ids: _ChatIds = Field((), strict=False, description=(
        "Who is told when the contacts table cannot be used: the failure notices, and the alerts while the "
        "health database is down. **Set it**: without it, a database outage silences the alerts."
    ))
    max_contacts: int = Field(50, ge=1, le=1000, description=(
        "More active contacts than this is a mistake (an imported customer list?) and is refused: nobody "
        "from the table is messaged, and the fallback chats are told."
    ))
    # automatic reboots
    recheck_timeout_seconds: float = Field(5, gt=0, le=60, description=(
        "The quick re-check that confirms a failure before an automatic reboot."
    ))
    reboot_cooldown_minutes: float = Field(30, ge=0, le=1440, description=(
        "Minimum time between automatic reboots of one instance."
    ))
    reboot_daily_cap: int = Field(3, ge=0, le=100, description=(
        "Automatic reboots per instance per 24 h. Past it: no more reboots, and a `reboot_loop` alert."
    ))
    starting_reboot_minutes: float = Field(5, gt=0, le=1440, description=(
        "An instance `starting` for longer than this is rebooted (the vendor's advice)."
    ))
    reboot_on_yellow_card: Annotated[bool, _Expected("true or false")] = Field(False, description=(
        "`yellowCard` only alerts, unless this is true."
    ))
    reboot_verify_minutes: float = Field(5.0, gt=0, le=120, description=(
        "After any reboot, how long to wait for `authorized`."
    ))
    reboot_poll_seconds: int = Field(15, ge=1, le=600, description=(
        "How often to look meanwhile (within the API's limit of 1 request per second)."
    ))
    max_reboots_per_run: int = Field(20, ge=0, le=10000, description=(
        "Automatic reboots one health-check run makes at most, whatever the cause; past it, the others are "
        "skipped with that reason, alerted, and left to later runs."
    ))
    # outages and grouping (docs/alerting.md)
    outage_min_instances: int = Field(10, ge=2, le=100000, description=(
        "Failing checks of one run that share an API host and a symptom (no answer, or the same bad state) "
        "form a platform outage when they are at least this many..."
    ))
    outage_fraction: float = Field(0.5, gt=0, le=1, description=(
        "... and at least this part of that host's checked instances. The outage is one `platform_outage` "
        "incident; its members are not rebooted and open no incident of their own while it lasts."
    ))
    group_alerts_over: int = Field(5, ge=1, le=1000, description=(
        "When one run would send a contact more messages than this of one kind (openings, escalations, "
        "reminders, resolutions), they go as one message that lists them."
    ))
    # authorized but broken (docs/alerting.md)
    settings_check_minutes: float = Field(60, gt=0, le=10080, description=(
        "How often `getSettings` is compared with a connection's `expected_settings` extra; a differing key "
        "opens a `settings_drift` incident."
    ))
    queue_check_minutes: float = Field(5, gt=0, le=1440, description=(
        "How often the outgoing queue (`showMessagesQueue`) of an authorized instance is read."
    ))
    queue_alert_threshold: int = Field(50, ge=1, le=500, description=(
        "Messages waiting in the outgoing queue that count as stuck (the API lists at most 500)."
    ))
    queue_alert_checks: int = Field(3, ge=1, le=100, description=(
        "Consecutive queue reads at the threshold or above, without the count going down, that open an "
        "`outgoing_queue_stuck` incident."
    ))
    reboot_on_stuck_queue: Annotated[bool, _Expected("true or false")] = Field(False, description=(
        "A stuck outgoing queue only alerts, unless this is true: then it is also rebooted automatically "
        "(within the cooldown and the daily cap)."
    ))
    offline_alert_checks: int = Field(3, ge=1, le=100, description=(
        "Consecutive checks with the socket `offline` (`getStatusInstance`) while `authorized` that open a "
        "`socket_offline` incident."
    ))
    expiry_warning_days: float = Field(3, ge=0, le=365, description=(
        "An instance of a partner account whose `expirationDate` is this close (days) raises one "
        "`instance_expiring` warning; `isExpired` opens an `instance_expired` incident. Neither reboots."
    ))
    # retention
    health_log_retention_days: int = Field(30, ge=1, le=3650, description=(
        "Days of `green_api_health_logs` older than this are dropped (a day goes once its last row is this old)."
    ))
    airflow_retention_days: int = Field(30, ge=1, le=3650, description=(
        "Runs, task instances, XComs and task logs of these DAGs older than this are deleted."
    ))
    cleanup_batch_size: int = Field(5000, ge=1, le=1_000_000, description=(
        "Rows deleted per transaction by `airflow db clean` (the retention job of Airflow's own records)."
    ))


def _expected(key: str) -> str:
    """What ``key`` must be: its ``_Expected`` text, or its type and bounds."""
    field = Settings.model_fields[key]
    said = [item.text for item in field.metadata if isinstance(item, _Expected)]
    if said:
        return said[0]
    low = next(item for item in field.metadata if isinstance(item, Ge | Gt))
    high = next(item for item in field.metadata if isinstance(item, Le))
    what = "an integer" if field.annotation is int else "a number"
    lower = f"above {low.gt:g}" if isinstance(low, Gt) else f"from {low.ge:g}"
    return f"{what} {lower} to {high.le:g}"


def _config_error(error: ValidationError, value: dict[str, Any]) -> ConfigError:
    """pydantic's errors in the words of this package: unknown keys all at once, else the first bad key."""
    errors = error.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        known = sorted(Settings.model_fields)
        return ConfigError(f"Variable {SETTINGS_VARIABLE} has unknown key(s) {unknown}; known keys: {known}")
    first = errors[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):  # raised by a validator (the time zone), already in words
        return cause
    key = str(first["loc"][0])
    return ConfigError(f"{SETTINGS_VARIABLE}.{key} must be {_expected(key)}, got {value[key]!r}")


def parse_settings(raw: str | dict[str, Any] | None) -> Settings:
    """Variable ``green_api_settings``: unknown keys and bad values are refused by name."""
    if raw is None or raw == "":
        return Settings()
    value = _load_json(SETTINGS_VARIABLE, raw)
    if not isinstance(value, dict):
        raise ConfigError(f"Variable {SETTINGS_VARIABLE} must be a JSON object, got {value!r}")
    try:
        return Settings.model_validate(value)
    except ValidationError as error:
        raise _config_error(error, value) from None


def settings_schema() -> str:
    """The JSON Schema of ``green_api_settings``, as docs/configuration.md shows it."""
    return json.dumps(Settings.model_json_schema(), indent=2, ensure_ascii=False)


def settings_table() -> str:
    """The Markdown table of the settings in docs/configuration.md: key, default, values, meaning."""
    rows = ["| Key | Default | Must be | Meaning |", "|---|---|---|---|"]
    for key, field in Settings.model_fields.items():
        rows.append(f"| `{key}` | `{json.dumps(field.default)}` | {_expected(key)} | {field.description} |")
    return "\n".join(rows)


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
    # getSettings keys and values the instance must keep (may hold a secret: never in repr)
    expected_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    name: str | None = None  # the connection's description (a partner instance's name): how people call it
    # A partner account's instance (domain.partner): its paid period's end, and whether it ended
    expires_at: datetime | None = None
    expired: bool = False


def is_conn_id(value: Any) -> bool:
    """Whether ``value`` can be a connection id of ``green_api_instances``."""
    return isinstance(value, str) and bool(_CONN_ID.match(value))


def _load_json(name: str, raw: str | Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Variable {name} is not valid JSON ({exc.msg} at char {exc.pos}): {raw!r}") from None


@dataclass(frozen=True)
class InstanceList:
    """Variable ``green_api_instances``: connection ids, and partner accounts whose every live
    instance is checked (``{"partner": "<connection id>", "type": "whatsapp"}`` entries)."""

    conn_ids: list[str]
    partners: list[PartnerSource] = dataclasses.field(default_factory=list)


def _partner_entry(item: dict[str, Any], listed_in: str) -> PartnerSource:
    where = f"{listed_in}: partner entry {json.dumps(item)}"
    unknown = sorted(set(item) - {"partner", "type"})
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {unknown}: a partner entry takes \"partner\" and \"type\"")
    conn_id, kind = item.get("partner"), item.get("type", DEFAULT_TYPE)
    if not isinstance(conn_id, str) or not _CONN_ID.match(conn_id):
        raise ConfigError(f"{where}: \"partner\" must be the id of a Green API partner connection, got {conn_id!r}")
    if not isinstance(kind, str) or not re.fullmatch(r"[a-z]{1,30}", kind):
        raise ConfigError(f"{where}: \"type\" must be an instance type such as \"whatsapp\", got {kind!r}")
    return PartnerSource(conn_id, kind)


def parse_instance_list(raw: str | list[Any] | None, listed_in: str = f"Variable {INSTANCES_VARIABLE}") -> InstanceList:
    """Variable ``green_api_instances`` (or what ``listed_in`` names): a JSON list of connection
    ids and partner entries."""
    if raw is None or raw == "":
        return InstanceList(list(DEFAULT_INSTANCES))
    value = _load_json(INSTANCES_VARIABLE, raw)
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"{listed_in} must be a non-empty JSON list of connection ids, got {value!r}"
        )
    conn_ids: list[str] = []
    partners: list[PartnerSource] = []
    for item in value:
        if isinstance(item, dict):
            source = _partner_entry(item, listed_in)
            if source.conn_id in {p.conn_id for p in partners}:
                raise ConfigError(f"{listed_in} lists partner connection {source.conn_id!r} twice")
            partners.append(source)
            continue
        if not isinstance(item, str) or not _CONN_ID.match(item):
            raise ConfigError(f"{listed_in} has an invalid connection id: {item!r}")
        if item in conn_ids:
            raise ConfigError(f"{listed_in} lists connection id {item!r} twice")
        conn_ids.append(item)
    return InstanceList(conn_ids, partners)


def parse_instances(raw: str | list[Any] | None) -> list[str]:
    """The connection ids of Variable ``green_api_instances`` (its partner entries aside)."""
    return parse_instance_list(raw).conn_ids


def plan_shards(instances_raw: Any, settings_raw: Any) -> list[list[str]]:
    """The configured connection ids, split into the check's mapped tasks (order kept).

    Each mapped task holds at most ``instances_per_check_task`` ids, and the shards differ by one
    at most. Airflow masks each token a task process loads, at a cost that grows with the square
    of the tokens that process already holds, unless the deployment lets a task register them in
    one update (greenapi.masking); small shards keep it low either way (see make bench).
    Raises ConfigError for an invalid Variable: nothing can be checked.
    """
    conn_ids = parse_instances(instances_raw)
    size = parse_settings(settings_raw).instances_per_check_task
    count = -(-len(conn_ids) // size)
    return [shard_of(conn_ids, i, count) for i in range(count)]


class ShardArgs(TypedDict):
    """The arguments of one mapped check task of the health check: its part of the instance list."""

    shard: int  # this task's part, from 0
    shards: int  # how many parts the plan made
    instances_digest: str  # the fingerprint of the list the plan split (instances_digest)
    max_concurrency: int
    listed_in: str  # where the connection ids come from, named in the problem of an unusable one
    # The idInstance of partner accounts' instances that also have a connection in the list (checked
    # once, under it): the plan reads the connections, so that no task has to again.
    listed_both_ways: list[str]
    problems: list[str]  # the plan's (partner accounts it could not list): the first task carries them on
    # The partner connections the plan could not list: no task checks their instances in this run,
    # so that the run's checks are the plan's (one listing decides, not whichever task lists last).
    unlisted: list[str]
    # A run the watch started: only these connection ids are checked (None: the whole list).
    only: list[str] | None


def shard_args(conn_ids: list[str], settings: Settings, listed_both_ways: Iterable[str] = (),
               problems: Sequence[str] = (), unlisted: Sequence[str] = (),
               only: Iterable[str] | None = None) -> list[ShardArgs]:  # fmt: skip
    """The check tasks of a run over ``conn_ids``: ``instances_per_check_task`` at most each (one
    at least when the plan has problems to carry on)."""
    count = -(-len(conn_ids) // settings.instances_per_check_task) or (1 if problems else 0)
    digest = instances_digest(conn_ids)
    both = sorted(listed_both_ways)
    return [ShardArgs(shard=n, shards=count, instances_digest=digest, max_concurrency=settings.max_concurrency,
                      listed_in=f"Variable {INSTANCES_VARIABLE}", listed_both_ways=both,
                      problems=list(problems) if n == 0 else [], unlisted=list(unlisted),
                      only=None if only is None else sorted(only)) for n in range(count)]  # fmt: skip


def shard_of(conn_ids: list[str], shard: int, shards: int) -> list[str]:
    """Part ``shard`` (from 0) of ``shards`` near-equal, ordered parts of ``conn_ids`` (as plan_shards cuts them)."""
    return conn_ids[shard * len(conn_ids) // shards:(shard + 1) * len(conn_ids) // shards]


def instances_digest(conn_ids: list[str]) -> str:
    """A short fingerprint of the instance list: a check task sees whether it changed since the plan."""
    return hashlib.sha256("\n".join(conn_ids).encode()).hexdigest()[:16]


def check_timezone(key: str, value: Any) -> str:
    """``value`` if it is an IANA time zone, else a ConfigError naming ``key``."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be {_TIMEZONE}, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key} is not a known IANA timezone: {value!r}") from None
    return value


def _extra(extra: dict[str, Any], key: str) -> Any:
    # Forms of older Airflow versions stored custom fields as ``extra__<conn_type>__<key>``.
    value = extra.get(key)
    if value in (None, ""):
        value = extra.get(f"extra__greenapi__{key}")
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
        raise FieldError(conn_id, f"extra {key}", f"must be a number of seconds in (0, 600], got {value!r}")
    return float(value)


def _dashboard_url(conn_id: str, extra: dict[str, Any]) -> str | None:
    value = _extra(extra, "dashboard_url")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parts = urlsplit(value.strip()) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise FieldError(conn_id, "extra dashboard_url", "must be an http(s) address such as "
                         f"'https://airflow.example.org/green-api/', got {value!r}")  # fmt: skip
    return str(value).strip()


def expected_settings(conn_id: str, value: Any) -> dict[str, Any]:
    """The connection extra ``expected_settings``: a JSON object of getSettings keys and the
    values they must keep (text, numbers, true/false). The error names the key, never a secret's value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    field = "extra expected_settings"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise FieldError(conn_id, field, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(value, dict):
        raise FieldError(conn_id, field, "must be a JSON object of getSettings keys and values, such as "
                         f'{{"incomingWebhook": "yes"}}, got {type(value).__name__}')  # fmt: skip
    for key, want in value.items():
        if not isinstance(key, str) or not key.strip():
            raise FieldError(conn_id, field, "has an empty key")
        if want is None or isinstance(want, dict | list) or (isinstance(want, float) and not math.isfinite(want)):
            raise FieldError(conn_id, field, f"key {key!r} must be text, a number or true/false, got "
                             f"{'null' if want is None else type(want).__name__}")  # fmt: skip
    return dict(value)


def instance_config(
    conn_id: str, host: str | None, login: str | None, password: str | None, extra: dict[str, Any],
    description: str | None = None,
) -> InstanceConfig:
    """Check a Green API connection's fields; the error names the field, never the token."""
    url = _url(conn_id, "host", host, "https://7105.api.greenapi.com", "the instance's apiUrl")
    instance_id = (login or "").strip()
    if not _INSTANCE_ID.match(instance_id):
        raise FieldError(conn_id, "login", f"must be the numeric idInstance, got {login!r}")
    _token(conn_id, password, "apiTokenInstance")
    return InstanceConfig(
        conn_id=conn_id,
        api_url=url,
        instance_id=instance_id,
        dashboard_url=_dashboard_url(conn_id, extra),
        state_timeout=_timeout(conn_id, extra, "state_timeout", 10.0),
        reboot_timeout=_timeout(conn_id, extra, "reboot_timeout", 30.0),
        send_timeout=_timeout(conn_id, extra, "send_timeout", 20.0),
        expected_settings=expected_settings(conn_id, _extra(extra, "expected_settings")),
        # The description shows in Admin > Connections, but a task under the scheduler gets no
        # description through Airflow's execution API: the extra "name" reaches it.
        name=(description or str(_extra(extra, "name") or "")).strip()[:200] or None,
    )


@dataclass(frozen=True)
class PartnerConfig:
    """A Green API partner account as read from an Airflow connection (token kept out of repr).

    ``instance``: what every instance of the account is called with (its API URL, timeouts,
    dashboard link, expected settings); each instance's id, name and token come from ``getInstances``.
    """

    conn_id: str
    url: str  # partnerApiUrl
    zone: str  # what the account's timestamps without a zone are in
    timeout: float  # getInstances' timeout (s)
    instance: InstanceConfig


def _url(conn_id: str, field_name: str, value: Any, example: str, what: str = "an address") -> str:
    """An http(s) address without query or fragment (no trailing slash), else a ConfigError naming the field."""
    url = (value or "").strip().rstrip("/") if isinstance(value, str | None) else ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise FieldError(conn_id, field_name, f"must be {what} such as {example!r}, got {value!r}")
    return url


def _token(conn_id: str, password: str | None, what: str) -> None:
    """A token is there and could be one; the error never shows it."""
    label = f"password ({what})"
    if not password or not password.strip():
        raise FieldError(conn_id, "password", "is empty", label)
    if any(c in password for c in "/?#% \t\r\n"):
        raise FieldError(conn_id, "password", "contains characters a token never has", label)


def partner_config(conn_id: str, host: str | None, password: str | None, extra: dict[str, Any]) -> PartnerConfig:
    """Check a Green API partner connection's fields; the error names the field, never the token."""
    url = _url(conn_id, "host", host, "https://api.green-api.com (the partnerApiUrl)")
    _token(conn_id, password, "partnerToken")
    api_url = _extra(extra, "api_url")
    api_url = _url(conn_id, "extra api_url", api_url, DEFAULT_INSTANCE_API_URL) if api_url else DEFAULT_INSTANCE_API_URL
    zone = _extra(extra, "time_zone") or DEFAULT_PARTNER_ZONE
    template = InstanceConfig(
        conn_id=conn_id,
        api_url=api_url,
        instance_id="",
        dashboard_url=_dashboard_url(conn_id, extra),
        state_timeout=_timeout(conn_id, extra, "state_timeout", 10.0),
        reboot_timeout=_timeout(conn_id, extra, "reboot_timeout", 30.0),
        send_timeout=_timeout(conn_id, extra, "send_timeout", 20.0),
        expected_settings=expected_settings(conn_id, _extra(extra, "expected_settings")),
    )
    return PartnerConfig(conn_id, url, check_timezone(f"Connection {conn_id}: extra time_zone", zone),
                         _timeout(conn_id, extra, "partner_timeout", 30.0), template)  # fmt: skip


def too_many_contacts(count: int, settings: Settings) -> str | None:
    """Why a contact list must not be messaged (nobody from it is), or None when it may."""
    if count <= settings.max_contacts:
        return None
    return (
        f"system_support_contacts has {count} active contacts, more than {SETTINGS_VARIABLE}.max_contacts "
        f"({settings.max_contacts}): nobody was messaged from it; deactivate contacts or raise max_contacts"
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=f"Variable {SETTINGS_VARIABLE} as docs/configuration.md shows it.")
    shown = parser.add_mutually_exclusive_group(required=True)
    shown.add_argument("--schema", action="store_true", help="its JSON Schema")
    shown.add_argument("--table", action="store_true", help="the Markdown table of its keys")
    print(settings_schema() if parser.parse_args().schema else settings_table())

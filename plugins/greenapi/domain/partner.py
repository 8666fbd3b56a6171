"""A Green API partner account: its instances, as ``getInstances`` lists them, and what the
monitor makes of them (which to check, under which key, which expire soon).

Pure functions over plain data. An instance of a partner account has no Airflow connection: it is
checked under the key ``<partner connection id>/<idInstance>`` (a ``/`` never appears in a
connection id), and its token lives only in the memory of the process that listed it
(:class:`PartnerInstance` keeps it out of ``repr`` and out of every record that leaves a task).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from greenapi.domain.codec import Record

KEY_SEPARATOR = "/"
DEFAULT_TYPE = "whatsapp"
#: What Green API's partner timestamps are in when the connection does not say (its billing runs
#: at 00:00 UTC+3; the documented timestamps carry no zone).
DEFAULT_PARTNER_ZONE = "Europe/Moscow"
#: The API URL of a partner account's instances when the connection does not say.
DEFAULT_INSTANCE_API_URL = "https://api.green-api.com"
_NOT_DELETED = "0001-01-01"
_INSTANCE_ID = re.compile(r"[0-9]{1,20}")


class PartnerListingError(ValueError):
    """A ``getInstances`` answer that cannot be read; the message names the bad field, never a token."""


@dataclass(frozen=True)
class PartnerSource:
    """One partner entry of Variable ``green_api_instances``: every live instance of type
    ``type_instance`` of the account behind connection ``conn_id``."""

    conn_id: str
    type_instance: str = DEFAULT_TYPE


@dataclass(frozen=True)
class PartnerInstance:
    """One instance of a partner account. ``token`` (apiTokenInstance) is a secret: not in repr,
    never in a record that leaves the task (:meth:`public`)."""

    instance_id: str
    name: str | None
    type_instance: str
    deleted: bool
    time_deleted: datetime | None
    expires_at: datetime | None
    expired: bool
    tariff: str | None = None
    token: str = dataclasses.field(default="", repr=False, compare=False)

    def public(self) -> PartnerRecord:
        """What may be stored and shown: everything but the token."""
        return PartnerRecord(self.instance_id, self.name, self.type_instance, self.deleted,
                             self.time_deleted.isoformat() if self.time_deleted else None,
                             self.expires_at.isoformat() if self.expires_at else None, self.expired, self.tariff)  # fmt: skip


@dataclass(frozen=True)
class PartnerRecord(Record):
    """A partner instance without its token (a row of ``green_api_partner_instances``).

    JSON: ``{"instance_id", "name", "type_instance", "deleted", "time_deleted" (ISO 8601 or null),
    "expires_at" (ISO 8601 or null), "expired", "tariff"}``.
    """

    instance_id: str
    name: str | None
    type_instance: str
    deleted: bool
    time_deleted: str | None
    expires_at: str | None
    expired: bool
    tariff: str | None = None


def _where(index: int, item: Any) -> str:
    ident = item.get("idInstance") if isinstance(item, dict) else None
    return f"getInstances item {index}" + (f" (idInstance {ident})" if ident is not None else "")


def _time(where: str, key: str, value: Any, zone: ZoneInfo) -> datetime | None:
    if value in (None, "") or (isinstance(value, str) and value.startswith(_NOT_DELETED)):
        return None
    if not isinstance(value, str):
        raise PartnerListingError(f"{where}: {key} must be a date and time, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PartnerListingError(f"{where}: {key} is not a date and time: {value[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _flag(where: str, key: str, value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PartnerListingError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def parse_listing(payload: Any, zone: str = DEFAULT_PARTNER_ZONE) -> list[PartnerInstance]:
    """``getInstances``' JSON as instances; timestamps without a zone are read in ``zone``.

    Raises PartnerListingError naming the first bad item and field (never its token).
    """
    if not isinstance(payload, list):
        raise PartnerListingError(f"getInstances must answer a JSON array of instances, got {type(payload).__name__}")
    tz = ZoneInfo(zone)
    found: list[PartnerInstance] = []
    seen: set[str] = set()
    for index, item in enumerate(payload):
        where = _where(index, item)
        if not isinstance(item, dict):
            raise PartnerListingError(f"{where} must be a JSON object, got {type(item).__name__}")
        ident = item.get("idInstance")
        instance_id = str(ident) if isinstance(ident, int | str) and not isinstance(ident, bool) else ""
        if not _INSTANCE_ID.fullmatch(instance_id):
            raise PartnerListingError(f"{where}: idInstance must be a number, got {ident!r}")
        if instance_id in seen:
            raise PartnerListingError(f"{where}: idInstance {instance_id} is listed twice")
        seen.add(instance_id)
        deleted = _flag(where, "deleted", item.get("deleted"))
        token = item.get("apiTokenInstance")
        if not deleted and (not isinstance(token, str) or not token.strip()):
            raise PartnerListingError(f"{where}: apiTokenInstance is missing")
        name = item.get("name")
        tariff = item.get("tariff")
        found.append(PartnerInstance(
            instance_id=instance_id,
            name=name.strip()[:200] or None if isinstance(name, str) else None,
            type_instance=str(item.get("typeInstance") or DEFAULT_TYPE),
            deleted=deleted,
            time_deleted=_time(where, "timeDeleted", item.get("timeDeleted"), tz) if deleted else None,
            expires_at=_time(where, "expirationDate", item.get("expirationDate"), tz),
            expired=_flag(where, "isExpired", item.get("isExpired")),
            tariff=str(tariff) if tariff not in (None, "") else None,
            token=token.strip() if isinstance(token, str) else "",
        ))  # fmt: skip
    return found


def partner_key(conn_id: str, instance_id: str) -> str:
    """The key a partner account's instance is checked, logged and alerted under."""
    return f"{conn_id}{KEY_SEPARATOR}{instance_id}"


def split_key(key: str) -> tuple[str, str] | None:
    """``(partner connection id, idInstance)`` of a partner key; None for a connection id."""
    conn_id, sep, instance_id = key.partition(KEY_SEPARATOR)
    return (conn_id, instance_id) if sep and conn_id and instance_id else None


def live(instances: list[PartnerInstance], type_instance: str) -> list[PartnerInstance]:
    """The instances to check: not deleted, of the source's type, by id."""
    return sorted((i for i in instances if not i.deleted and i.type_instance == type_instance),
                  key=lambda i: (len(i.instance_id), i.instance_id))  # fmt: skip


def expand(
    conn_ids: list[str], sources: list[PartnerSource], listings: dict[str, list[PartnerInstance]],
    listed_both_ways: frozenset[str] = frozenset(),
) -> list[str]:  # fmt: skip
    """Every key to check: the connection ids, then each listed account's live instances, except
    those whose idInstance is in ``listed_both_ways`` (they have a connection of their own: checked
    once, under it). A source whose account was not listed adds nothing."""
    keys = list(conn_ids)
    seen = set(keys)
    for source in sources:
        for instance in live(listings.get(source.conn_id, []), source.type_instance):
            key = partner_key(source.conn_id, instance.instance_id)
            if instance.instance_id not in listed_both_ways and key not in seen:
                seen.add(key)
                keys.append(key)
    return keys


@dataclass(frozen=True)
class Expiry(Record):
    """What a partner account says of an instance's paid period, as one check saw it.

    JSON: ``{"expires_at" (ISO 8601 or null), "expired": bool, "expiring": bool}``: ``expiring``
    when it ends within the warning days and has not ended yet.
    """

    expires_at: str | None
    expired: bool
    expiring: bool

    @property
    def follow_up(self) -> bool:
        """Whether the alert step must see this check (a warning or an incident may open)."""
        return self.expired or self.expiring


def expiry_of(expires_at: datetime | None, expired: bool, now: datetime, warning_days: float) -> Expiry:
    """The expiry reading of a check made at ``now`` (a date already past that the account does not
    flag as expired yet is still a warning)."""
    expiring = not expired and expires_at is not None and expires_at <= now + timedelta(days=warning_days)
    return Expiry(expires_at.isoformat() if expires_at else None, expired, expiring)

"""What an import or a removal changes, decided from the file and from what Airflow has before
anything is written: connections to write (only those that differ) or delete, and Variable
``green_api_instances`` merged (every entry already there kept, in its order, partner entries too).

No Airflow here: the stores (``stores``) read and write, the CLI (``__main__``) prints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from greenapi.domain.config import DEFAULT_INSTANCES, INSTANCES_VARIABLE, ConfigError, parse_instance_list
from greenapi.instances.source import InstanceRow, InstancesError

#: The extra that fingerprints what Airflow's REST API never shows (the token, secret extras):
#: through the API, a changed token is told from an unchanged one by it.
DIGEST_EXTRA = "instances_file_digest"
HIDDEN = "***"  # what Airflow's REST API shows in place of a secret


@dataclass(frozen=True)
class ConnFields:
    """An Airflow connection as this tool writes or reads it (the token out of repr).

    Read through the REST API, ``password`` and secret-looking extras are ``***``. ``readable``
    False: the metadata database holds it under another Fernet key (another checkout's), so that
    it can only be replaced.
    """

    conn_id: str
    conn_type: str
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    description: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    readable: bool = True


@dataclass(frozen=True)
class Plan:
    """What to write, and what to say about it (never a token)."""

    writes: tuple[ConnFields, ...] = ()  # connections created, or replaced as a whole
    deletes: tuple[str, ...] = ()
    variable: str | None = None  # green_api_instances' new value; None: unchanged
    counts: Mapping[str, int] = field(default_factory=dict)  # added, updated, unchanged, removed, listed, ...
    report: tuple[str, ...] = ()


def digest(conn_id: str, token: str, extra: Mapping[str, Any]) -> str:
    """A fingerprint of a row's secrets: 64 bits of SHA-256, which give nothing of a 50-character token."""
    payload = json.dumps([conn_id, token, extra], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def connection_of(row: InstanceRow, conn_type: str) -> ConnFields:
    """The connection an instance of the file becomes."""
    # The name also as an extra: a task under the scheduler gets no connection description.
    named = {**row.extra, "name": row.name} if row.name else dict(row.extra)
    extra = {**named, DIGEST_EXTRA: digest(row.conn_id, row.token, named)}
    return ConnFields(row.conn_id, conn_type, row.api_url, row.instance_id, row.token, row.name, extra)


def _same_value(want: Any, have: Any) -> bool:
    if have == HIDDEN:  # hidden by the REST API: the digest says whether it changed
        return True
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        return want.keys() == have.keys() and all(_same_value(want[k], have[k]) for k in want)
    return bool(want == have)


def same(want: ConnFields, have: ConnFields) -> bool:
    """Whether ``have`` already is ``want`` (as far as its reader shows it)."""
    if not have.readable:
        return False
    fields = ("conn_type", "host", "login", "description")
    if any((getattr(want, f) or None) != (getattr(have, f) or None) for f in fields):
        return False
    if have.password != HIDDEN and (want.password or None) != (have.password or None):
        return False
    return _same_value(dict(want.extra), dict(have.extra))


def _entry_key(entry: Any) -> tuple[str, str]:
    return ("partner", str(entry.get("partner"))) if isinstance(entry, dict) else ("conn", str(entry))


def _entries(raw: str | None, base: Sequence[Any]) -> list[Any]:
    """The Variable's entries as they are (ConfigError when it is unusable); ``base`` when it is absent."""
    if raw is None or not raw.strip():
        return list(base)
    parse_instance_list(raw)  # refused by name when unusable: nothing is merged into a broken list
    return list(json.loads(raw))


def merge_list(raw: str | None, additions: Iterable[Any], base: Sequence[Any] = ()) -> tuple[list[Any], list[Any]]:
    """Variable green_api_instances with the ``additions`` it lacks appended: every entry already
    there stays, in its order (a partner entry is there when its connection is). ``base``: the
    list when the Variable is absent. Returns the new list and the entries added; ConfigError when
    the Variable, or the merged list, is unusable."""
    entries = _entries(raw, base)
    present = {_entry_key(e) for e in entries}
    added = []
    for entry in additions:
        if _entry_key(entry) not in present:
            present.add(_entry_key(entry))
            added.append(entry)
    merged = entries + added
    if merged:  # nothing to list (an empty file, no Variable) is no list to check
        parse_instance_list(json.dumps(merged), "the merged instance list")
    return merged, added


def _variable(entries: list[Any], added: int, removed: int) -> tuple[str | None, str]:
    """The Variable's new value (None: unchanged), and what to say about it."""
    if not added and not removed:
        return None, f"Variable {INSTANCES_VARIABLE}: unchanged ({len(entries)} entries)"
    changes = [f"{n} connection id(s) {what}" for n, what in ((added, "added"), (removed, "taken out")) if n]
    said = f"Variable {INSTANCES_VARIABLE}: {', '.join(changes)} ({len(entries)} entries)"
    return json.dumps(entries, ensure_ascii=False), said


def _counted(counts: Mapping[str, int], order: Sequence[str]) -> str:
    said = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    return ", ".join(said) or "nothing"


def plan_add(rows: Sequence[InstanceRow], conn_type: str, current: Mapping[str, ConnFields], variable: str | None,
             source: str) -> Plan:  # fmt: skip
    """Import the file's ``rows``: each connection created or replaced when it differs, its id
    added to the list. ``current``: every connection Airflow has; ``variable``: green_api_instances
    (None when absent: the list is then what the DAGs check without it, green_api_default when that
    connection exists). A row that would take another kind of connection's id, or an instance that
    another connection already monitors, is refused by line: nothing is written."""
    by_instance = {c.login: c.conn_id for c in current.values() if c.conn_type == conn_type and c.login}
    writes, counts = [], {"added": 0, "updated": 0, "unchanged": 0}
    for row in rows:
        have = current.get(row.conn_id)
        if have is not None and have.conn_type != conn_type:
            raise InstancesError(f"{row.at('conn_id')}: {row.conn_id} is a connection of type {have.conn_type}, "
                                 "not a Green API instance: give the row another conn_id")  # fmt: skip
        other = by_instance.get(row.instance_id)
        if other is not None and other != row.conn_id:
            raise InstancesError(f"{row.at('id')}: instance {row.instance_id} is connection {other} already: give "
                                 f"the row conn_id {other} to update it, or remove {other} first")  # fmt: skip
        want = connection_of(row, conn_type)
        if have is None:
            counts["added"] += 1
        elif same(want, have):
            counts["unchanged"] += 1
            continue
        else:
            counts["updated"] += 1
        writes.append(want)
    base = [c for c in DEFAULT_INSTANCES if c in current]
    try:
        entries, added = merge_list(variable, [row.conn_id for row in rows], base)
    except ConfigError as exc:
        raise InstancesError(f"{exc}: fix or delete it (Admin > Variables), then import again") from None
    new_value, said = _variable(entries, len(added), 0)
    counts["listed"] = len(added)
    first = f"{source}: {len(rows)} instance(s): {_counted(counts, ('added', 'updated', 'unchanged'))}"
    return Plan(tuple(writes), (), new_value, counts, (first, said))


def plan_remove(names: Sequence[str], conn_type: str, current: Mapping[str, ConnFields],
                variable: str | None) -> Plan:  # fmt: skip
    """Take instances out: each name is a connection id, or an idInstance (every Green API
    connection of it). Their connections are deleted and their ids taken out of the list; a name
    found nowhere is said, and a connection of another type is refused (nothing is removed)."""
    targets: list[str] = []
    missing: list[str] = []
    try:
        entries = _entries(variable, [])
    except ConfigError as exc:
        raise InstancesError(f"{exc}: fix or delete it (Admin > Variables), then remove again") from None
    listed = {e for e in entries if isinstance(e, str)}
    for name in names:
        have = current.get(name)
        if have is not None and have.conn_type != conn_type:
            raise InstancesError(f"{name} is a connection of type {have.conn_type}, not a Green API instance: "
                                 "nothing removed")  # fmt: skip
        found = [name] if have is not None or name in listed else sorted(
            c.conn_id for c in current.values() if c.conn_type == conn_type and c.login == name)  # fmt: skip
        if not found:
            missing.append(name)
        targets.extend(f for f in found if f not in targets)
    kept = [e for e in entries if not (isinstance(e, str) and e in targets)]
    if entries and not kept:
        raise InstancesError(f"that would leave Variable {INSTANCES_VARIABLE} empty, and the health check needs an "
                             "instance: nothing removed")  # fmt: skip
    new_value, said = _variable(kept, 0, len(entries) - len(kept))
    counts = {"removed": len(targets), "not found": len(missing)}
    report = [f"{len(targets)} removed" + (f": {', '.join(targets)}" if targets else "")]
    if missing:
        report.append(f"{len(missing)} not found (no such connection id, listed id or idInstance): {', '.join(missing)}")
    deletes = tuple(t for t in targets if t in current)
    return Plan((), deletes, new_value, counts, (*report, said))


def listing(current: Mapping[str, ConnFields], variable: str | None, conn_type: str) -> list[str]:
    """The instances as a table: those of the list in its order (partner accounts as one line),
    then the Green API connections the list leaves out. idInstance, connection id, name, API host;
    never a token."""
    try:
        entries = _entries(variable, [c for c in DEFAULT_INSTANCES if c in current])
    except ConfigError as exc:
        raise InstancesError(str(exc)) from None
    rows = [("id", "conn_id", "name", "api host", "checked")]
    for entry in entries:
        if isinstance(entry, dict):
            partner = current.get(entry["partner"])
            host = urlsplit(partner.host or "").netloc if partner else "(no such connection)"
            rows.append(("partner", entry["partner"], f"every {entry.get('type', 'whatsapp')} instance", host, "yes"))
            continue
        conn = current.get(entry)
        if conn is None:
            rows.append(("?", entry, "(no such connection)", "-", "yes"))
        else:
            rows.append((conn.login or "?", entry, conn.description or "-", urlsplit(conn.host or "").netloc or "-", "yes"))
    listed = {e for e in entries if isinstance(e, str)}
    for conn in sorted(current.values(), key=lambda c: c.conn_id):
        if conn.conn_type == conn_type and conn.conn_id not in listed:
            rows.append((conn.login or "?", conn.conn_id, conn.description or "-",
                         urlsplit(conn.host or "").netloc or "-", "no"))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]

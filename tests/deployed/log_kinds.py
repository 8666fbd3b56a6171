"""What `make run` prints, sorted by kind: the warnings a newcomer sees, and SQL text at info level.

A warning's kind is its message with numbers, ids and paths taken out (and, for Python's warnings,
its category), so that each cause counts once however often it repeats. The kinds that Airflow or
a library prints and that this project cannot avoid are ``KNOWN``: docs/operations.md lists each
with its cause. Warnings of this package's own about instances (a failing check) are what it is
for: they are not counted here.
"""

from __future__ import annotations

import json
import re
from collections import Counter

# kind -> the cause, as docs/operations.md gives it
KNOWN = {
    "Using `httpx` with `starlette.testclient` is deprecated; install `httpx2` instead.":
        "Airflow's in-process API client (starlette's TestClient) with the httpx it pins",
    "SimpleAuthManager is active but the deployment shape looks like production":
        "make run uses Airflow's simple login on PostgreSQL; the compose deployment says so in docs/deployment.md",
    "Starting call to 'airflow.sdk.api.client.Client.request', this is the Nst time calling it.":
        "a task's call to the API server failed or timed out and is tried again (a busy machine)",
}  # fmt: skip

_LINE = re.compile(r"\[(?P<level>warning|error|critical) *\] (?P<message>.*?)(?: +\[(?P<logger>[\w.]+)\]|$)")
_PY_WARNING = re.compile(r"(?P<category>\w+Warning): (?P<message>.*)")
_SQL = re.compile(r"Running statement|\b(SELECT\s.+\sFROM|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b", re.IGNORECASE)


def warning_kind(line: str) -> str | None:
    """The kind of warning ``line`` prints (a line of `make run`'s output, or of a task's JSON log),
    or None (not a warning, or one of this package's own)."""
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if record.get("level") not in ("warning", "error", "critical") or "greenapi" in str(record.get("logger")):
            return None
        return _normal(str(record.get("event")))
    found = _LINE.search(line)
    if found is None:
        raw = _PY_WARNING.search(line)
        return None if raw is None else _normal(f"{raw['category']}: {raw['message']}")
    if "greenapi" in (found["logger"] or ""):
        return None
    return _normal(found["message"])


def _numbers(text: str) -> str:
    """``text`` with each number (and ordinal: 1st, 2nd) as N."""
    return re.sub(r"\d+(\.\d+)?(st|nd|rd|th)?\b", lambda m: "Nst" if m[2] else "N", text)


def _normal(message: str) -> str:
    message = _numbers(re.sub(r"/\S+", "<path>", message))
    for known in KNOWN:
        if message.startswith(_numbers(known)):
            return known
    return message[:120]


def warning_kinds(text: str) -> Counter[str]:
    """Each kind of warning in ``text`` and how many lines print it."""
    return Counter(kind for line in text.splitlines() if (kind := warning_kind(line)) is not None)


def sql_at_info(text: str) -> list[str]:
    """The lines of ``text`` that print SQL at info level."""
    return [line for line in text.splitlines()
            if ("[info" in line or '"level":"info"' in line) and _SQL.search(line)]  # fmt: skip

"""What a task log says about a batch of checks: one line per instance with a problem, one summary."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from greenapi.domain.records import CheckBatch
from greenapi.domain.rules import Status, Verdict, classify_check

MAX_IDS = 5  # instance ids listed per outcome in the summary; the problem lines name every one


@dataclass(frozen=True)
class Checked:
    """One check as its task logs it: the instance and what the check means."""
    instance_id: str
    conn_id: str
    verdict: Verdict


def outcome(verdict: Verdict) -> str:
    """A check's outcome in a word: healthy, the WhatsApp state, or what went wrong."""
    if verdict.status is Status.HEALTHY:
        return "healthy"
    return verdict.state or verdict.status.value


def problem_lines(checks: Iterable[Checked]) -> list[str]:
    """One line per instance that is not healthy, naming it, its outcome and the error."""
    return [
        f"{c.instance_id} ({c.conn_id}): {outcome(c.verdict)}: {c.verdict.error or '-'}"
        for c in checks
        if c.verdict.status is not Status.HEALTHY
    ]


def summary_line(checks: Iterable[Checked]) -> str:
    """'3 instances: 2 healthy, 1 notAuthorized (1101000002)'."""
    groups: dict[str, list[str]] = {}
    for c in checks:
        groups.setdefault(outcome(c.verdict), []).append(c.instance_id)
    total = sum(len(ids) for ids in groups.values())
    parts = []
    for name, ids in sorted(groups.items(), key=lambda item: (item[0] != "healthy", -len(item[1]), item[0])):
        if name == "healthy":
            parts.append(f"{len(ids)} healthy")
            continue
        shown = ", ".join(ids[:MAX_IDS]) + (f", … {len(ids) - MAX_IDS} more" if len(ids) > MAX_IDS else "")
        parts.append(f"{len(ids)} {name} ({shown})")
    return f"{total} instance{'s' if total != 1 else ''}: " + (", ".join(parts) if parts else "none checked")


def checked(batch: CheckBatch) -> list[Checked]:
    """Each check of ``batch`` with its verdict."""
    return [Checked(c.instance_id, c.conn_id, classify_check(c.result)) for c in batch.checks]


def batch_lines(items: list[Checked], problems: Iterable[str]) -> list[tuple[int, str]]:
    """What a check task logs, with each line's level: a warning per instance with a problem, an
    error per instance that could not be checked, then the summary."""
    return ([(logging.WARNING, line) for line in problem_lines(items)]
            + [(logging.ERROR, problem) for problem in problems]
            + [(logging.INFO, summary_line(items))])  # fmt: skip

"""Correlated failures: many instances of one API host failing the same way in one run.

The Green API serves instances from numbered hosts (``7103.api.greenapi.com``). When a large part
of one host's instances fail alike at once, the cause is the host or the monitor's own network,
not each instance: the run sees one **outage** instead of N lone failures. Its members are not
rebooted (a reboot cannot help and adds load to a struggling host), and no run makes more than
``max_reboots_per_run`` automatic reboots whatever the cause (:func:`hold_reboots`).

Pure functions over the run's checks; ``tasks/health_check.py`` calls them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

from greenapi.domain.codec import Record
from greenapi.domain.incidents import Incident, Severity
from greenapi.domain.records import CheckBatch, InstanceCheck
from greenapi.domain.results import ApiResult, ResultKind
from greenapi.domain.rules import HEALTHY_STATE, AlertKind, classify_check

NO_ANSWER = "no answer"  # the symptom of a timeout, a connection error or an HTTP 5xx
OUTAGE_PREFIX = "outage:"  # the start of an outage's key, the instance id of its incident


def api_host(api_url: str) -> str:
    """The API host an instance is served from (``7103.api.greenapi.com``; with its port when
    the URL has one)."""
    return urlsplit(api_url).netloc or api_url


def symptom(result: ApiResult) -> str | None:
    """The class of a failing check that an outage groups by: ``no answer`` (timeout, connection
    error, HTTP 5xx) or ``state <name>`` (the same bad state). None for a healthy check and for
    what is each instance's own (a refused token, a malformed answer, a 429)."""
    if result.kind in (ResultKind.TIMEOUT, ResultKind.CONNECTION_ERROR):
        return NO_ANSWER
    if result.kind is ResultKind.HTTP_ERROR and (result.http_status or 0) >= 500:
        return NO_ANSWER
    state = classify_check(result).state
    return f"state {state}" if state is not None and state != HEALTHY_STATE else None


def outage_key(host: str, symptom_: str) -> str:
    """The key of the outage of ``host`` with ``symptom_``: the instance id its incident is kept under."""
    return f"{OUTAGE_PREFIX}{host}:{symptom_.replace(' ', '_')}"


def is_outage_key(instance_id: str) -> bool:
    """Whether an incident's instance id is an outage's key rather than an instance."""
    return instance_id.startswith(OUTAGE_PREFIX)


@dataclass(frozen=True)
class Outage(Record):
    """The failing checks of one run that share an API host and a symptom, when they are many.

    JSON: ``{"host", "symptom", "instance_ids": [str] (the members, in check order), "checked":
    int (the host's instances checked in the run)}``.
    """

    host: str
    symptom: str
    instance_ids: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def key(self) -> str:
        """The outage's key (:func:`outage_key`)."""
        return outage_key(self.host, self.symptom)

    @property
    def count(self) -> int:
        """How many instances it holds."""
        return len(self.instance_ids)

    def describe(self) -> str:
        """``platform outage on host 7103.api.greenapi.com (no answer), 150 of 200 instances``."""
        return (
            f"platform outage on host {self.host} ({self.symptom}), {self.count} of {self.checked} instances"
        )

    def sample(self, shown: int = 5) -> str:
        """The first instance ids, and how many more (``1101, 1102 and 148 more``)."""
        return listed(self.instance_ids, shown)


def listed(ids: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` of ``ids``, and how many more."""
    head = ", ".join(ids[:shown])
    return f"{head} and {len(ids) - shown} more" if len(ids) > shown else head


def hosts_checked(checks: Iterable[InstanceCheck]) -> dict[str, int]:
    """How many of ``checks`` each API host served (checks with no known host are not counted)."""
    return dict(Counter(c.api_host for c in checks if c.api_host))


def find_outages(checks: Iterable[InstanceCheck], hosts: dict[str, int], *, min_instances: int,
                 fraction: float) -> list[Outage]:  # fmt: skip
    """The outages among a run's failing checks: those that share a host and a symptom, when they
    are at least ``min_instances`` and at least ``fraction`` of the host's checked instances
    (``hosts``: every instance checked per host, the healthy included). Largest first."""
    groups: dict[tuple[str, str], list[str]] = {}
    for check in checks:
        found = symptom(check.result)
        if found is not None and check.api_host:
            groups.setdefault((check.api_host, found), []).append(check.instance_id)
    outages = []
    for (host, found), ids in groups.items():
        checked = max(hosts.get(host, 0), len(ids))
        if len(ids) >= min_instances and len(ids) >= fraction * checked:
            outages.append(Outage(host, found, ids, checked))
    return sorted(outages, key=lambda o: (-o.count, o.host, o.symptom))


def nothing_answered(batch: CheckBatch) -> bool:
    """Whether no instance of the run answered at all (each check a timeout, a connection error or
    a 5xx, none settled healthy): with the alert senders silent too, the monitor itself may be cut
    off from the network."""
    return batch.settled == 0 and bool(batch.checks) and all(symptom(c.result) == NO_ANSWER for c in batch.checks)


CUT_OFF_NOTE = {
    "fr": "📡 *LE MONITEUR LUI-MÊME EST PEUT-ÊTRE COUPÉ DU RÉSEAU*\nAucune instance n'a répondu, ni aucun "
          "expéditeur WhatsApp: ce message passe par e-mail.\n\n",
    "en": "📡 *THE MONITOR ITSELF MAY BE CUT OFF FROM THE NETWORK*\nNo instance answered, and no WhatsApp "
          "sender either: this message comes by e-mail.\n\n",
}  # fmt: skip
CUT_OFF_PROBLEM = ("no instance answered and the alert senders did not answer either: the monitor itself may be "
                   "cut off from the network")  # fmt: skip


def budget_reason(limit: int) -> str:
    """Why an automatic reboot past the run's budget was not made."""
    return f"not rebooted: max_reboots_per_run ({limit}) reached in this run"


def hold_reboots(reasons: dict[str, str], checks: Sequence[InstanceCheck], outages: Sequence[Outage],
                 max_reboots: int) -> tuple[dict[str, str], dict[str, str]]:  # fmt: skip
    """The reboots a run makes, and those it holds back and why (both by connection id): an
    outage's members are not rebooted ("not rebooted: platform outage on host X, 150 of 200
    instances"), and past ``max_reboots`` the others wait for a later run. The first in check
    order are made."""
    member_of = {i: o for o in outages for i in o.instance_ids}
    instance_of = {c.conn_id: c.instance_id for c in checks}
    made: dict[str, str] = {}
    held: dict[str, str] = {}
    for conn_id, reason in reasons.items():
        outage = member_of.get(instance_of.get(conn_id, ""))
        if outage is not None:
            held[conn_id] = f"not rebooted: {outage.describe()}"
        elif len(made) >= max_reboots:
            held[conn_id] = budget_reason(max_reboots)
        else:
            made[conn_id] = reason
    return made, held


def member_outages(outages: Iterable[Outage]) -> dict[str, str]:
    """Each member instance's outage key, by instance id."""
    return {i: o.key for o in outages for i in o.instance_ids}


# ---- the outage's incident (kind platform_outage), followed by the alert step


def parse_outage_key(key: str) -> tuple[str, str]:
    """The host and the symptom of an outage's key (:func:`outage_key`)."""
    host, _, slug = key.removeprefix(OUTAGE_PREFIX).rpartition(":")
    return host, slug.replace("_", " ")


def plan_outages(outages: Sequence[Outage], live: Iterable[Incident], now: datetime, checked_at: datetime,
                 started: dict[str, datetime] | None = None) -> list[Incident]:  # fmt: skip
    """The outage incidents this run changes: each outage of the run opens its incident, or
    follows the one open (its members and count as now); an open one that the run no longer sees
    is resolved. ``now``: the run's logical time; ``checked_at``: when its checks were made (the
    resolution's real time); ``started``: when each outage's first failing check was made, by key.
    A run seen already (its alert step run again) changes nothing: each run counts once."""
    current = {o.key: o for o in outages}
    open_ = {i.instance_id: i for i in live if i.open and i.kind is AlertKind.PLATFORM_OUTAGE}
    changed = []
    for key, outage in current.items():
        known = open_.get(key)
        if known is not None and known.last_seen_at is not None and known.last_seen_at >= now:
            continue  # this run counted already
        if known is not None:
            changed.append(replace(known, checks=known.checks + 1, last_state=outage.symptom, last_seen_at=now,
                                   last_error=outage.describe(), members=tuple(outage.instance_ids)))  # fmt: skip
        else:
            changed.append(Incident(instance_id=key, kind=AlertKind.PLATFORM_OUTAGE, opened_at=now,
                                    severity=Severity.CRITICAL, first_failed_at=(started or {}).get(key, checked_at),
                                    last_state=outage.symptom, last_error=outage.describe(), checks=1,
                                    members=tuple(outage.instance_ids), last_seen_at=now))  # fmt: skip
    for key, incident in open_.items():
        if key not in current and not (incident.last_seen_at is not None and incident.last_seen_at > now):
            changed.append(replace(incident, resolved_at=now, recovered_at=max(checked_at, incident.started)))
    return changed


def inhibited(outages: Iterable[Outage]) -> set[str]:
    """The instances that open no incident of their own this run: the members of its outages."""
    return {i for o in outages for i in o.instance_ids}


@dataclass(frozen=True)
class OutageReport:
    """What an outage's message says beyond its incident: how many are affected, the first ids,
    and at its resolution, how many recovered and which still fail."""

    affected: str
    recovered: int | None = None
    still_failing: tuple[str, ...] = ()


_WORDS = {
    "fr": {"of": "sur", "more": "et {n} autres", "recovered": "Rétablies: {n} sur {total}",
           "still": "Toujours en échec (incident propre ouvert): {n}{ids}", "none": "aucune"},
    "en": {"of": "of", "more": "and {n} more", "recovered": "Recovered: {n} of {total}",
           "still": "Still failing (own incident opened): {n}{ids}", "none": "none"},
}  # fmt: skip


def report_outage(
    incident: Incident, failing_now: set[str], checked: int | None, language: str
) -> OutageReport:
    """The figures of an outage's message (:class:`OutageReport`) in ``language``. ``failing_now``:
    the instances failing in this run; ``checked``: the host's instances checked in the run that
    saw it (None at the resolution: taken from the incident)."""
    words = _WORDS[language]
    members = list(incident.members or ())
    shown = members[:5]
    more = f" {words['more'].format(n=len(members) - len(shown))}" if len(members) > len(shown) else ""
    total = f" {words['of']} {checked}" if checked else ""
    affected = f"{len(members)}{total} ({', '.join(shown)}{more})"
    if incident.open:
        return OutageReport(affected)
    still = tuple(m for m in members if m in failing_now)
    return OutageReport(affected, len(members) - len(still), still)


def resolution_lines(report: OutageReport, language: str) -> str:
    """The lines an outage's resolution adds: how many recovered, and which still fail."""
    words = _WORDS[language]
    if report.recovered is None:
        return ""
    total = report.recovered + len(report.still_failing)
    ids = f" ({listed(report.still_failing, 10)})" if report.still_failing else ""
    still = words["still"].format(n=len(report.still_failing), ids=ids)
    return f"\n{words['recovered'].format(n=report.recovered, total=total)}\n{still}"

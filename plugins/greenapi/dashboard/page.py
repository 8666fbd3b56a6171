"""The dashboard page from plain data: what it shows is prepared here, how it looks is
``templates/page.html``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from markupsafe import Markup

from greenapi.dashboard import charts
from greenapi.dashboard.queries import FLEET_PAGE_SIZE, FLEET_STATUSES, PAGE_SIZE, STATUSES, FleetFilter
from greenapi.dashboard.templating import ENV, ms
from greenapi.domain.config import Settings
from greenapi.domain.outages import parse_outage_key
from greenapi.domain.rules import AlertKind

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

# queue_alert_threshold's default in green_api_settings (the app passes the configured one).
DEFAULT_QUEUE_THRESHOLD: int = Settings.model_fields["queue_alert_threshold"].default
HEALTH_DAG, REBOOT_DAG, SCHEDULED_DAG = "green_api_health_check", "green_api_reboot", "green_api_scheduled_reboot"
# The Airflow UI's time zone, as the page's script reports it to the server (templates/zone_script.html).
ZONE_COOKIE = "green_api_tz"

# What each status means to a person: the badges' tooltips and the legend under the instances.
STATUS_MEANINGS = {
    "healthy": "authorized",
    "rebooted": "needed a reboot, back authorized after it",
    "unhealthy": "answers, but not authorized or not usable",
    "rate_limited": "the API refused: too many requests",
    "critical_failure": "no answer, or the reboot failed",
    "deleted": "deleted from its partner account: no longer checked",
    None: "configured, never checked",
}
REBOOT_OUTCOMES = {True: "succeeded", False: "failed", None: "outcome unknown"}  # by reboot_success

# The same for every request, so rendered once. Markup: our own template's output, inserted unescaped.
STYLE = Markup(ENV.get_template("page.css").render(chart_width=charts.WIDTH, chart_height=charts.HEIGHT,
                                                   queue_height=charts.QUEUE_HEIGHT))
ZONE_SCRIPT = Markup(ENV.get_template("zone_script.html").render(zone_cookie=ZONE_COOKIE))
PAGE = ENV.get_template("page.html")


def _query(**params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "", 1) or (k == "page" and v != 1 and v)}
    return "?" + urlencode(kept) if kept else "./"


def tiles(by_status: dict[str, int], never: int, incidents: list[dict[str, Any]], stats: dict[str, Any]) -> list[dict[str, str]]:
    """The summary tiles at the top of the page: instances up, uptime, checks, reboots, alerts, incidents."""
    rebooted = by_status.get("rebooted", 0)
    up_now = by_status.get("healthy", 0) + rebooted
    total = int(stats.get("total_checks") or 0)
    rate = f"{100 * int(stats['healthy_count']) / total:.2f} %" if total else "—"
    values = [
        ("up-now", f"{up_now:,} / {sum(by_status.values()) + never:,}",
         "instances up now" + (f", {rebooted} of them after a reboot" if rebooted else "")),
        ("open-incidents", str(len(incidents)), "open incidents"),
        ("success-7d", rate, "success rate, 7 d"),
        ("mean-7d", ms(stats.get("avg_response_ms")), "mean response, 7 d"),
        ("checks-7d", f"{total:,}", "checks, 7 d"),
        ("reboots-7d", f"{int(stats.get('total_reboots') or 0):,}", "reboots, 7 d"),
        ("alerts-7d", f"{int(stats.get('total_alerts') or 0):,}", "alerts, 7 d"),
    ]
    return [{"key": key, "value": value, "label": label} for key, value, label in values]


def marks(check: dict[str, Any]) -> str:
    """What a check did besides checking, in its summary line."""
    done = []
    if check.get("reboot_triggered"):
        done.append("reboot")
    if check.get("deliveries"):
        done.append(f"{len(check['deliveries'])} alert delivery(ies)")
    if check.get("incident_id"):
        done.append(f"incident #{check['incident_id']}")
    return ", ".join(done)


def pager_links(status: str | None, instance: str | None, page: int, pages: int) -> list[dict[str, str]]:
    """The links to the other pages of the checks list (newest, newer, older, oldest)."""
    targets = (("« newest", 1), ("‹ newer", page - 1), ("older ›", page + 1), ("oldest »", pages))
    return [{"label": label, "href": _query(status=status, instance=instance, page=target)}
            for label, target in targets if 1 <= target <= pages and target != page]


def fleet_query(flt: FleetFilter, **changes: Any) -> str:
    """The page's address with the fleet list filtered as ``flt`` with ``changes`` (q, fleet_status,
    host, fleet_page), at the list."""
    params = {"q": flt.q, "fleet_status": flt.status, "host": flt.host, "fleet_page": 1} | changes
    return _query(**{k: v for k, v in params.items() if not (k == "fleet_page" and v == 1)}) + "#instances"


def fleet_pager(flt: FleetFilter, total: int) -> dict[str, Any]:
    """Where the fleet list is (instances shown, page of pages) and the links to the other pages."""
    page = flt.offset // FLEET_PAGE_SIZE + 1
    pages = max(1, -(-total // FLEET_PAGE_SIZE))
    first = flt.offset + 1 if total else 0
    targets = (("« first", 1), ("‹ previous", page - 1), ("next ›", page + 1), ("last »", pages))
    return {"first": first, "last": min(flt.offset + FLEET_PAGE_SIZE, total), "total": total, "page": page,
            "pages": pages, "links": [{"label": label, "href": fleet_query(flt, fleet_page=target)}
                                      for label, target in targets if 1 <= target <= pages and target != page]}


def host_counts(counts: dict[str, dict[str, int]], limit: int = 20) -> list[dict[str, Any]]:
    """The API hosts with most instances first (at most ``limit``), each with those not healthy."""
    hosts = sorted(counts.get("host", {}).items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"host": host, "count": count, "problems": counts.get("host_problem", {}).get(host, 0)}
            for host, count in hosts]  # fmt: skip


def chart_url(window: str, instance: str | None) -> str:
    """A chart is its own request (the browser fetches them while it shows the page)."""
    return f"charts/{window}.svg" + (f"?{urlencode({'instance': instance})}" if instance else "")


def reading_problems(instance: dict[str, Any], queue_threshold: int) -> dict[str, str]:
    """What the last readings of an instance show wrong, by column: the page flags those cells."""
    problems = {}
    if instance.get("socket_status") == "offline":
        problems["socket"] = "the socket is offline while WhatsApp is authorized"
    queue = instance.get("queue_length")
    if queue is not None and queue >= queue_threshold:
        problems["queue"] = f"{queue} messages waiting: at or above the alert threshold ({queue_threshold})"
    if instance.get("settings_status") == "drift":
        problems["settings"] = "the settings differ from the connection's expected_settings"
    return problems


def outages(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The open platform outages among ``incidents``, each with its host, symptom and member count
    (``domain.outages``), for the page's banner and /api/incidents."""
    shown = []
    for incident in incidents:
        if incident["kind"] == AlertKind.PLATFORM_OUTAGE.value:
            host, found = parse_outage_key(incident["instance_id"])
            shown.append({**incident, "host": host, "symptom": found, "count": len(incident.get("members") or ())})
    return shown


def render(data: dict[str, Any], zone: ZoneInfo) -> str:
    """The page; ``data["zone_source"]`` says why times are in ``zone``, ``data["settings_error"]`` (if
    any) what is wrong with Variable green_api_settings."""
    open_incidents: dict[str, list[dict[str, Any]]] = {}
    for incident in data["incidents"]:
        open_incidents.setdefault(incident["instance_id"], []).append(incident)
    banners = outages(data["incidents"])
    in_outage = {member: outage for outage in banners for member in outage.get("members") or ()}
    status, instance, checks = data.get("status"), data.get("instance"), data["checks"]
    queue_threshold = data.get("queue_threshold", DEFAULT_QUEUE_THRESHOLD)
    fleet_flt, never, counts = data.get("fleet_filter") or FleetFilter(), data.get("never", []), data["counts"]
    total = data["fleet"]["total"]
    return PAGE.render(
        data, zone=zone, style=STYLE, zone_script=ZONE_SCRIPT, settings_error=data.get("settings_error"),
        status=status, instance=instance, health_dag=HEALTH_DAG, reboot_dag=REBOOT_DAG,
        status_meanings=STATUS_MEANINGS, reboot_outcomes=REBOOT_OUTCOMES, statuses=STATUSES, page_size=PAGE_SIZE,
        fleet_counted=FLEET_STATUSES[:-1],
        tiles=tiles(counts.get("status", {}), len(never), data["incidents"], data["stats"]),
        open_incidents=open_incidents, counts=counts, fleet_statuses=FLEET_STATUSES, fleet=fleet_flt, never=never,
        fleet_pager=fleet_pager(fleet_flt, total), hosts=host_counts(counts),
        status_links={s: fleet_query(fleet_flt, fleet_status=s) for s in FLEET_STATUSES},
        host_links={h: fleet_query(fleet_flt, host=h) for h in counts.get("host", {})},
        problem_count=sum(n for s, n in counts.get("status", {}).items() if s != "healthy"),
        outages=banners, in_outage=in_outage,
        charts=[{"window": window, "url": chart_url(window, instance)} for window in ("24h", "30d")],
        queue_chart_url=chart_url("queue", instance), queue_threshold=queue_threshold,
        problems={i["instance_id"]: reading_problems(i, queue_threshold) for i in data["instances"]},
        marks={c["id"]: marks(c) for c in checks["checks"]},
        pager_links=pager_links(status, instance, checks["page"], checks["pages"]),
    )

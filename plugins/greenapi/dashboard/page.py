"""The dashboard page as HTML, from plain data. No script: filters and pages are links and forms,
check details are ``<details>`` elements, charts are inline SVG."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from greenapi.dashboard import charts
from greenapi.dashboard.queries import PAGE_SIZE, STATUSES
from greenapi.domain.incidents import format_duration

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

HEALTH_DAG, REBOOT_DAG, SCHEDULED_DAG = "green_api_health_check", "green_api_reboot", "green_api_scheduled_reboot"
# The Airflow UI's time zone, as the page's script reports it to the server (see ZONE_SCRIPT).
ZONE_COOKIE = "green_api_tz"

# What each status means to a person: the badges' tooltips and the legend under the instances.
STATUS_MEANINGS = {
    "healthy": "authorized",
    "rebooted": "needed a reboot, back authorized after it",
    "unhealthy": "answers, but not authorized or not usable",
    "rate_limited": "the API refused: too many requests",
    "critical_failure": "no answer, or the reboot failed",
    None: "configured, never checked",
}

STYLE = """
:root { color-scheme: light dark; --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --reboot:#bc4c00;
        --muted:#6e7781; --line:#d0d7de; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 16px 20px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 22px 0 8px; }
a { color: #0969da; } .muted { color: var(--muted); } .nowrap { white-space: nowrap; }
.actions a { margin-right: 14px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 120px; }
.tile b { display: block; font-size: 20px; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
th { font-weight: 600; font-size: 12px; color: var(--muted); } td.num, th.num { text-align: right; }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
.healthy { background: var(--ok); } .rebooted { background: var(--reboot); } .rebooted::before { content: "↻ "; }
.unhealthy, .rate_limited { background: var(--warn); } .critical_failure { background: var(--bad); }
.never { background: var(--muted); }
.statuses { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 6px 0 0; font-size: 12px; }
.incident { color: var(--bad); }
object.chart { width: 100%; max-width: 960px; display: block; margin-bottom: 8px; }
.legend span { margin-right: 14px; font-size: 12px; }
form.filters { margin: 8px 0; } form.filters > * { margin-right: 8px; }
details { border-bottom: 1px solid var(--line); padding: 3px 0; } summary { cursor: pointer; }
.cols > span { display: inline-block; margin-right: 12px; vertical-align: top; }
.cols > span:nth-child(1) { width: 190px; } .cols > span:nth-child(2) { width: 110px; }
.cols > span:nth-child(3) { width: 130px; } .cols > span:nth-child(4) { width: 120px; }
.cols > span:nth-child(5) { width: 70px; text-align: right; }
.check-head { font-weight: 600; font-size: 12px; color: var(--muted); padding: 3px 0 3px 16px;
              border-bottom: 1px solid var(--line); } .detail { margin: 6px 0 8px 18px; }
.pager a, .pager b { margin-right: 8px; }
""" + f"object.chart {{ aspect-ratio: {charts.WIDTH} / {charts.HEIGHT}; }}\n"


def _t(value: Any) -> str:
    return escape("" if value is None else str(value))


def _local(at: datetime | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return "—" if at is None else at.astimezone(zone).strftime(fmt)


def _stamp(at: datetime | None, zone: ZoneInfo) -> str:
    """A time standing alone in a sentence: it names its zone (CEST, +04, ...)."""
    return _local(at, zone, "%Y-%m-%d %H:%M:%S %Z")


def _zoned(header: str, zone: ZoneInfo) -> str:
    """A column header of times, naming their zone."""
    return f'{header} <span class="zone">({escape(zone.key)})</span>'


def _ago(at: datetime | None, now: datetime) -> str:
    return "" if at is None else f"{format_duration(now - at, 'en')} ago"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value):.2f} %"


def _ms(value: Any) -> str:
    return "—" if value is None else f"{int(value)} ms"


def _badge(status: str | None) -> str:
    name = status or "never"
    label = "no check yet" if status is None else status
    meaning = STATUS_MEANINGS.get(status, "")
    return f'<span class="badge {escape(name)}" title="{escape(meaning)}">{escape(label)}</span>'


def status_legend() -> str:
    return '<p class="statuses muted" id="status-legend">' + "".join(
        f"<span>{_badge(status)} {escape(meaning)}</span>" for status, meaning in STATUS_MEANINGS.items()
    ) + "</p>"


def _query(**params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "", 1) or (k == "page" and v != 1 and v)}
    return "?" + urlencode(kept) if kept else "./"


def instances_table(instances: list[dict[str, Any]], incidents: list[dict[str, Any]], now: datetime, zone: ZoneInfo) -> str:
    by_instance: dict[str, list[dict[str, Any]]] = {}
    for incident in incidents:
        by_instance.setdefault(incident["instance_id"], []).append(incident)
    rows = []
    for i in instances:
        open_ = by_instance.get(i["instance_id"], [])
        incident_cell = "<br>".join(
            f'<span class="incident">{_t(n["kind"])} ({_t(n["severity"])}), open for '
            f'<span data-field="open_for">{format_duration(timedelta(seconds=int(n["open_seconds"])), "en")}</span></span>'
            for n in open_
        ) or '<span class="muted">none</span>'
        rows.append(
            f'<tr data-instance="{_t(i["instance_id"])}">'
            f'<td><b>{_t(i["instance_id"])}</b><br><span class="muted">{_t(i.get("connection_id"))}</span></td>'
            f'<td data-field="status">{_badge(i.get("status"))}</td>'
            f'<td data-field="state">{_t(i.get("state_instance")) or "—"}</td>'
            f'<td class="nowrap" data-field="last_check">{_local(i.get("checked_at"), zone)}'
            f'<br><span class="muted">{_ago(i.get("checked_at"), now)}</span></td>'
            f'<td class="num" data-field="last_response">{_ms(i.get("response_time_ms"))}</td>'
            f'<td data-field="incidents">{incident_cell}</td>'
            f'<td class="num" data-field="uptime_24h">{_pct(i.get("uptime_24h"))}</td>'
            f'<td class="num" data-field="uptime_7d">{_pct(i.get("uptime_7d"))}</td>'
            f'<td class="num" data-field="uptime_30d">{_pct(i.get("uptime_30d"))}</td>'
            f'<td class="num" data-field="mean_24h">{_ms(i.get("mean_ms_24h"))}</td>'
            f'<td class="num" data-field="p95_24h">{_ms(i.get("p95_ms_24h"))}</td>'
            "</tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="11" class="muted">No instance has been checked yet. The health check runs '
                    "every 5 minutes once <code>green_api_health_check</code> is unpaused.</td></tr>")
    return (
        '<table id="instances"><thead><tr><th>Instance</th><th>Status</th><th>WhatsApp state</th>'
        f'<th>{_zoned("Last check", zone)}</th>'
        '<th class="num">Response</th><th>Open incidents</th><th class="num">Uptime 24 h</th>'
        '<th class="num">7 d</th><th class="num">30 d</th><th class="num">Mean 24 h</th>'
        '<th class="num">p95 24 h</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>" + status_legend()
    )


def _delivery(d: dict[str, Any], zone: ZoneInfo) -> str:
    outcome = "delivered" if d["ok"] else f"failed: {_t(d.get('error'))}"
    return (
        f"<li>{_stamp(d['attempted_at'], zone)}: {_t(d['message_kind'])} to {_t(d['recipient'])} "
        f"by {_t(d['channel'])} via {_t(d.get('sender'))} (attempt {_t(d['attempt'])}): {outcome}</li>"
    )


def check_details(c: dict[str, Any], zone: ZoneInfo) -> str:
    lines = [f"<div>Error: {_t(c.get('error_message')) or '—'}</div>"]
    if c.get("reboot_triggered"):
        outcome = {True: "succeeded", False: "failed", None: "outcome unknown"}[c.get("reboot_success")]
        lines.append(f"<div>Reboot requested: {outcome}</div>")
    else:
        lines.append("<div>No reboot</div>")
    incident = c.get("incident")
    if incident:
        ended = "still open"
        if incident["resolved_at"]:
            down = format_duration(timedelta(seconds=int(incident["down_seconds"])), "en")
            ended = f"resolved {_stamp(incident['resolved_at'], zone)} (down {down})"
        lines.append(
            f"<div>Incident #{_t(incident['id'])}: {_t(incident['kind'])} ({_t(incident['severity'])}), "
            f"opened {_stamp(incident['opened_at'], zone)}, {ended}; {_t(incident['reboots'])} reboot(s), "
            f"{_t(incident['levels_notified'])} contact level(s) alerted</div>"
        )
    if c.get("in_maintenance_window"):
        lines.append("<div>Inside the settle window after the scheduled reboot: no incident opened</div>")
    deliveries = c.get("deliveries") or []
    if deliveries:
        lines.append("<div>Alert deliveries:</div><ul>" + "".join(_delivery(d, zone) for d in deliveries) + "</ul>")
    else:
        lines.append("<div>No alert sent by this check</div>")
    lines.append(f'<div class="muted">{_t(c.get("trigger_type"))} · run {_t(c.get("dag_id"))} / {_t(c.get("run_id"))}</div>')
    return '<div class="detail">' + "".join(lines) + "</div>"


def checks_section(result: dict[str, Any], status: str | None, instance: str | None,
                   instance_ids: list[str], zone: ZoneInfo) -> str:
    status_options = '<option value="">all statuses</option>' + "".join(
        f'<option value="{s}"{" selected" if s == status else ""}>{s}</option>' for s in STATUSES
    )
    instance_options = '<option value="">all instances</option>' + "".join(
        f'<option value="{_t(i)}"{" selected" if i == instance else ""}>{_t(i)}</option>' for i in instance_ids
    )
    form = (
        '<form class="filters" method="get" action="./#checks">'
        f'<select name="status" id="status-filter" aria-label="status">{status_options}</select>'
        f'<select name="instance" id="instance-filter" aria-label="instance">{instance_options}</select>'
        '<button type="submit" id="apply-filters">Filter</button>'
        + ('<a href="./#checks">clear</a>' if status or instance else "")
        + "</form>"
    )
    items = []
    for c in result["checks"]:
        marks = []
        if c.get("reboot_triggered"):
            marks.append("reboot")
        if c.get("deliveries"):
            marks.append(f"{len(c['deliveries'])} alert delivery(ies)")
        if c.get("incident_id"):
            marks.append(f"incident #{c['incident_id']}")
        items.append(
            f'<details class="check" data-id="{_t(c["id"])}" data-status="{_t(c["status"])}">'
            f'<summary class="cols"><span class="nowrap">{_local(c["checked_at"], zone)}</span>'
            f'<span>{_t(c["instance_id"])}</span><span>{_badge(c["status"])}</span>'
            f'<span>{_t(c.get("state_instance")) or "—"}</span><span>{_ms(c.get("response_time_ms"))}</span>'
            f'<span class="muted">{escape(", ".join(marks))}</span></summary>'
            f"{check_details(c, zone)}</details>"
        )
    if not items:
        items.append('<p class="muted" id="no-checks">No check matches.</p>')
    page, pages = result["page"], result["pages"]
    pager = [f'<span class="muted" id="checks-total">{result["total"]:,} check(s)</span> · ']
    for label, target in (("« newest", 1), ("‹ newer", page - 1), ("older ›", page + 1), ("oldest »", pages)):
        if 1 <= target <= pages and target != page:
            pager.append(f'<a href="{_query(status=status, instance=instance, page=target)}#checks">{label}</a>')
    pager.append(f"<b>page {page} of {pages}</b>")
    head = "".join(f"<span>{h}</span>" for h in (
        _zoned("Checked", zone), "Instance", "Status", "WhatsApp state", "Response", "Reboot, alerts, incident"))
    return (
        f'<h2 id="checks">Last checks <span class="muted">({PAGE_SIZE} a page)</span></h2>{form}'
        f'<div class="pager">{"".join(pager)}</div><div class="cols check-head" id="checks-head">{head}</div>'
        f'<div id="check-list">{"".join(items)}</div>'
        f'<div class="pager">{"".join(pager[1:])}</div>'
    )


def schedule_section(schedule: dict[str, Any], links: dict[str, str]) -> str:
    if schedule.get("error"):
        body = f'<p class="incident">The reboot schedule is invalid: {_t(schedule["error"])}</p>'
    elif not schedule["enabled"]:
        body = f"<p>Daily reboot <b>disabled</b> (configured time {_t(schedule['time'])} {_t(schedule['timezone'])}).</p>"
    else:
        body = (
            f'<p>Daily reboot at <b id="schedule-time">{_t(schedule["time"])}</b> '
            f'(<span id="schedule-timezone">{_t(schedule["timezone"])}</span>). Next run: '
            f'<b id="next-local">{_t(schedule["next_run_local"])}</b> local, '
            f'<span id="next-utc">{_t(schedule["next_run_utc"])}</span> UTC'
            + (" — <b>the DAG is paused</b>" if schedule.get("paused") else "")
            + ".</p>"
        )
    last = schedule.get("last")
    if last:
        body += (f'<p class="muted">Last scheduled reboot: {_t(last["at_local"])}, {_t(last["rebooted"])} of '
                 f"{_t(last['instances'])} instance(s) back authorized.</p>")
    return (
        f'<h2>Reboot schedule</h2>{body}<p class="actions">'
        f'<a target="_top" href="{escape(links["schedule"])}">change it (Variable green_api_reboot_schedule)</a>'
        f'<a target="_top" href="{escape(links["scheduled_dag"])}">scheduled reboot runs</a></p>'
    )


def tiles(instances: list[dict[str, Any]], incidents: list[dict[str, Any]], stats: dict[str, Any]) -> str:
    rebooted = sum(1 for i in instances if i.get("status") == "rebooted")
    up_now = sum(1 for i in instances if i.get("status") == "healthy") + rebooted
    total = int(stats.get("total_checks") or 0)
    rate = f"{100 * int(stats['healthy_count']) / total:.2f} %" if total else "—"
    values = [
        ("up-now", f"{up_now} / {len(instances)}",
         "instances up now" + (f", {rebooted} of them after a reboot" if rebooted else "")),
        ("open-incidents", str(len(incidents)), "open incidents"),
        ("success-7d", rate, "success rate, 7 d"),
        ("mean-7d", _ms(stats.get("avg_response_ms")), "mean response, 7 d"),
        ("checks-7d", f"{total:,}", "checks, 7 d"),
        ("reboots-7d", f"{int(stats.get('total_reboots') or 0):,}", "reboots, 7 d"),
        ("alerts-7d", f"{int(stats.get('total_alerts') or 0):,}", "alerts, 7 d"),
    ]
    return '<div class="tiles">' + "".join(
        f'<div class="tile" id="tile-{key}"><b>{escape(value)}</b><span class="muted">{escape(label)}</span></div>'
        for key, value, label in values
    ) + "</div>"


def _chart_object(window: str, instance: str | None) -> str:
    """A chart is its own request (the browser fetches both while it shows the page)."""
    url = f"charts/{window}.svg" + (f"?{urlencode({'instance': instance})}" if instance else "")
    return (f'<object class="chart" id="chart-{window}" type="image/svg+xml" data="{escape(url)}">'
            f"chart of the last {window}</object>")


# Times follow the Airflow UI's time zone: the UI keeps the user's choice in this origin's
# localStorage ("timezone", JSON), else uses the browser's. The page is drawn on the server, so the
# script tells it through a cookie and reloads, once per zone (sessionStorage stops a loop when the
# server cannot use the zone); without script, times stay in the zone the page names.
ZONE_SCRIPT = f"""<script>(function () {{
  var ui = null;
  try {{ ui = JSON.parse(localStorage.getItem("timezone")); }} catch (e) {{}}
  ui = ui || Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!ui || ui === document.documentElement.dataset.zone || sessionStorage.getItem("{ZONE_COOKIE}") === ui) return;
  sessionStorage.setItem("{ZONE_COOKIE}", ui);
  document.cookie = "{ZONE_COOKIE}=" + encodeURIComponent(ui) + "; path=" + location.pathname.replace(/[^/]*$/, "")
    + "; max-age=31536000; samesite=lax";
  location.reload();
}})();</script>"""


def render(data: dict[str, Any], zone: ZoneInfo) -> str:
    """The page; ``data["zone_source"]`` says why times are in ``zone``."""
    links = data["links"]
    charts_for = f" — instance {_t(data['instance'])}" if data.get("instance") else " — all instances"
    return f"""<!doctype html>
<html lang="en" data-zone="{_t(zone.key)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Green API health</title><style>{STYLE}</style>{ZONE_SCRIPT}</head>
<body>
<h1>Green API health</h1>
<div class="muted">As of {_local(data["now"], zone)} · times in <b id="display-zone">{_t(zone.key)}</b>
(<span id="zone-source">{_t(data["zone_source"])}</span>) · refreshes every minute ·
<a href="api/docs" target="_blank">JSON API</a> · <a href="{escape(links["airflow"])}">Airflow</a></div>
<p class="actions">
<a id="check-now" target="_top" href="{escape(links["check_now"])}">Check now (trigger {HEALTH_DAG})</a>
<a id="force-reboot" target="_top" href="{escape(links["force_reboot"])}">Force reboot (trigger {REBOOT_DAG})</a>
</p>
{tiles(data["instances"], data["incidents"], data["stats"])}
<h2>Instances</h2>
{instances_table(data["instances"], data["incidents"], data["now"], zone)}
<h2>Response time and failures{charts_for}</h2>
<div class="legend"><span style="color:#0969da">— mean response time</span><span style="color:#cf222e">▮ failing checks</span>
<span style="color:#bc4c00">┆ reboot</span><span style="color:#8250df">▼ alert delivered</span></div>
{_chart_object("24h", data.get("instance"))}
{_chart_object("30d", data.get("instance"))}
{schedule_section(data["schedule"], links)}
{checks_section(data["checks"], data.get("status"), data.get("instance"), data["instance_ids"], zone)}
<script>setTimeout(function () {{ if (!document.querySelector("details[open]")) location.reload(); }}, 60000);</script>
</body></html>"""

"""The page and the charts from plain data: no Airflow, no database."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta
from html import escape, unescape
from zoneinfo import ZoneInfo

import pytest

from greenapi.dashboard import charts, page

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
HOSTILE = '<script>alert("x")</script>'


@pytest.mark.parametrize(("value", "top"), [(0, 1), (0.4, 1), (1, 1), (3, 5), (180, 200), (450, 500), (1200, 2000)])
def test_axis_tops_are_round_numbers(value, top):
    assert charts._nice_max(value) == top


def _svg(buckets, reboots=(), alerts=(), since=NOW - timedelta(hours=24)):
    return charts.timeline(title="t", frame=charts.Frame(since, NOW), buckets=buckets,
                           bucket=timedelta(minutes=5), reboots=list(reboots), alerts=list(alerts),
                           mark_bucket=timedelta(minutes=15), zone=PARIS)


def test_empty_chart_is_valid_svg():
    root = ET.fromstring(_svg([]))
    assert root.tag.endswith("svg") and not root.findall(".//{http://www.w3.org/2000/svg}polyline")


def test_chart_draws_points_bars_and_marks_in_place():
    at = NOW - timedelta(hours=12)
    buckets = [{"at": at, "mean_ms": 400, "failing": 0}, {"at": at + timedelta(minutes=5), "mean_ms": 200, "failing": 2}]
    reboots = [{"at": at, "count": 2, "ok": 1, "instances": ["1101000001", HOSTILE]}]
    alerts = [{"at": at, "count": 1, "kinds": ["opening"], "instances": ["1101000001"]}]
    svg = _svg(buckets, reboots, alerts)
    ET.fromstring(svg)  # well-formed, hostile text escaped
    assert HOSTILE not in svg and "&lt;script&gt;" in svg
    [line] = re.findall(r'<polyline points="([^"]+)"', svg)
    (x1, y1), (x2, y2) = [tuple(map(float, p.split(","))) for p in line.split()]
    assert x1 < x2 and y1 < y2  # 400 ms is drawn higher than 200 ms
    assert abs(x1 - (charts.LEFT + (charts.WIDTH - charts.LEFT - charts.RIGHT) * (12 * 60 + 2.5) / (24 * 60))) < 0.1
    assert "2 failing" in svg and "2 reboot(s), 1 succeeded" in svg and "1 alert(s) delivered, opening" in svg


def test_the_legend_has_a_row_of_its_own_above_the_marks():  # not on the last alert's triangle
    last = {"at": NOW - timedelta(minutes=1), "count": 1, "ok": 1, "kinds": ["opening"], "instances": ["1"]}
    svg = _svg([], [last], [last])
    legend = ET.fromstring(svg).find("{http://www.w3.org/2000/svg}text[@class='legend end']")
    assert "".join(legend.itertext()) == "— mean response time▮ failing checks┆ reboot▼ alert delivered"
    [triangle] = re.findall(r'<path d="M[\d.]+,([\d.]+) ', svg)
    [reboot] = re.findall(r'<line x1="[\d.]+" y1="([\d.]+)" [^>]*class="reboot"', svg)
    assert float(legend.get("y")) + 4 < min(float(triangle), float(reboot))  # 11 px type: its descent < 4


@pytest.mark.parametrize(("title", "squeezed"), [
    ("Last 24 hours, 5 min buckets, times in Europe/Paris", False),
    ("Outgoing queue: Last 1 hour (all the data so far; the full window is 24 hours), 5 min buckets, times in"
     " America/Argentina/Buenos_Aires — 1101000001", True),
])
def test_a_long_title_is_squeezed_into_the_chart_not_cut(title, squeezed):
    for svg in (charts.timeline(title=title, frame=charts.Frame(NOW - timedelta(hours=24), NOW), buckets=[],
                                bucket=timedelta(minutes=5), reboots=[], alerts=[], mark_bucket=timedelta(minutes=15),
                                zone=PARIS), _queue_svg([], title=title)):
        text = ET.fromstring(svg).find("{http://www.w3.org/2000/svg}text[@class='chart-title']")
        assert text.text == title
        assert text.get("textLength") == (f"{charts.WIDTH - charts.LEFT - charts.RIGHT}" if squeezed else None)


def test_gaps_in_response_times_break_the_line():
    at = NOW - timedelta(hours=1)
    buckets = [{"at": at + timedelta(minutes=5 * n), "mean_ms": None if n == 2 else 100, "failing": 0}
               for n in range(5)]
    assert len(re.findall("<polyline", _svg(buckets))) == 2


def test_the_current_bucket_ends_at_the_right_edge():  # an hour that started 10 minutes ago, on a day's axis
    frame = charts.Frame(NOW - timedelta(hours=24), NOW)
    svg = charts.timeline(title="t", frame=frame, buckets=[{"at": NOW - timedelta(minutes=10), "mean_ms": 1,
                                                            "failing": 3}], bucket=timedelta(hours=1), reboots=[],
                          alerts=[], mark_bucket=timedelta(hours=6), zone=PARIS)
    [(x, width)] = [tuple(map(float, m)) for m in re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)]
    assert x + width == pytest.approx(charts.WIDTH - charts.RIGHT, abs=0.1)


def test_a_lone_bucket_is_drawn_as_a_dot():  # the first hour of a fresh install on the 30-day chart
    svg = _svg([{"at": NOW - timedelta(minutes=30), "mean_ms": 200, "failing": 0}])
    assert "<polyline" not in svg and len(re.findall(r'<circle [^>]*class="dot"', svg)) == 1


def test_time_axis_is_in_the_display_zone_across_a_dst_change():
    # 29 March 2026: Paris goes from +01:00 to +02:00 at 02:00 local.
    labels = re.findall(r'class="label mid">([0-9:]+)<', _svg([]))
    assert labels == ["15:00", "18:00", "21:00", "00:00", "03:00", "06:00", "09:00", "12:00"]


def test_page_escapes_everything_that_comes_from_the_database():
    hostile_check = {
        "id": 1, "checked_at": NOW, "instance_id": HOSTILE, "connection_id": HOSTILE, "status": "unhealthy",
        "state_instance": HOSTILE, "response_time_ms": None, "error_message": HOSTILE, "reboot_triggered": False,
        "trigger_type": "automatic", "dag_id": "d", "run_id": HOSTILE, "incident_id": None, "incident": None,
        "deliveries": [{"attempted_at": NOW, "message_kind": "opening", "recipient": HOSTILE, "channel": "whatsapp",
                        "sender": HOSTILE, "attempt": 1, "ok": False, "error": HOSTILE}],
    }
    data = {
        "now": NOW, "instances": [{**hostile_check, "checked_at": NOW, "socket_status": HOSTILE, "socket_read_at": NOW,
                                   "settings_status": HOSTILE, "settings_read_at": NOW}],
        "status": None, "instance": None,
        "incidents": [{"instance_id": HOSTILE, "kind": HOSTILE, "severity": "critical", "open_seconds": 60}],
        "stats": {"total_checks": 1, "healthy_count": 0, "avg_response_ms": None},
        "checks": {"page": 1, "pages": 1, "total": 1, "checks": [hostile_check]},
        "schedule": {"error": HOSTILE}, "links": {"airflow": "../", "check_now": "a", "force_reboot": "b",
                                                   "schedule": "c", "scheduled_dag": "d"},
        "counts": {"status": {"unhealthy": 1}}, "fleet": {"total": 1}, "zone_source": "the zone's source",
    }
    html = page.render(data, PARIS)
    assert HOSTILE not in html and html.count("&lt;script&gt;") >= 10
    # The page's own scripts (the time zone, the refresh), and nothing else.
    assert html.count("<script>") == 2 and page.ZONE_SCRIPT in html and "<script>setTimeout" in html


@pytest.mark.parametrize("hostile", [HOSTILE, "it's <b>bold</b> & \"quoted\"", "&lt;already escaped&gt;"])
def test_templates_escape_text_once(hostile):
    """The page and the charts are autoescaped templates: text from the database or a Variable shows as
    the same text (escaped once, not as markup and not twice)."""
    html = _page([_instance(hostile, "unhealthy")], settings_error=f"green_api_settings: {hostile}")
    [shown] = re.findall(r'<body>\s*<p class="incident">(.*?)</p>', html)
    assert "<" not in shown and unescape(shown) == f"green_api_settings: {hostile}"
    [cell] = re.findall(r"<td><b>(.*?)</b>", html)
    assert unescape(cell) == hostile

    frame = charts.Frame(NOW - timedelta(hours=24), NOW)
    title = charts.title(frame, timedelta(hours=24), timedelta(minutes=5), PARIS, hostile)
    svg = charts.timeline(title=title, frame=frame, buckets=[], bucket=timedelta(minutes=5), reboots=[],
                          alerts=[{"at": NOW, "count": 1, "kinds": [hostile], "instances": [hostile]}],
                          mark_bucket=timedelta(minutes=15), zone=PARIS)
    root = ET.fromstring(svg)  # well-formed XML whatever the text
    svg_ns = "{http://www.w3.org/2000/svg}"
    assert root.get("aria-label") == root.findtext(f"{svg_ns}title") == title and title.endswith(f"— {hostile}")
    assert root.find(f"{svg_ns}path/{svg_ns}title").text.endswith(f"1 alert(s) delivered, {hostile} ({hostile})")


# --- what a person reads -----------------------------------------------------------------------


def _css_rule(selector: str) -> str:
    """The declarations the page's style gives ``selector`` (alone or in a list of selectors)."""
    rules = re.findall(r"([^{}]+)\{([^}]*)\}", page.STYLE)
    [body] = [body for selectors, body in rules if selector in (s.strip() for s in selectors.split(","))]
    return body.strip()


def _page(instances, checks=(), zone=PARIS, source="message_timezone in Variable green_api_settings", **extra):
    instances = list(instances)
    return page.render({
        "now": NOW, "instances": instances, "status": None, "instance": None, "incidents": [],
        "stats": {"total_checks": 0}, "checks": {"page": 1, "pages": 1, "total": len(checks), "checks": list(checks)},
        "counts": {"status": dict(Counter(i["status"] for i in instances))}, "fleet": {"total": len(instances)},
        "schedule": {"error": "x"}, "zone_source": source,
        "links": {"airflow": "../", "check_now": "a", "force_reboot": "b", "schedule": "c", "scheduled_dag": "d"},
        **extra,
    }, zone)


def _instance(instance_id, status):
    return {"instance_id": instance_id, "connection_id": f"conn_{instance_id}", "status": status,
            "checked_at": NOW - timedelta(minutes=3), "state_instance": "authorized"}


def test_a_rebooted_instance_does_not_look_healthy():
    html = _page([_instance("1", "healthy"), _instance("2", "rebooted"), _instance("3", "unhealthy")],
                 never=[{"instance_id": "conn_4", "connection_id": "conn_4", "status": None}])
    badges = dict(re.findall(r'<tr data-instance="(\d)">.*?<span class="badge (\w+)"', html, re.S))
    assert badges == {"1": "healthy", "2": "rebooted", "3": "unhealthy"}
    assert re.search(r'<span data-status="never"><span class="badge never"[^>]*>no check yet</span> 1</span>', html)
    assert re.search(r'id="never-checked">.*<b>conn_4</b>', html, re.S)
    backgrounds = {name: _css_rule(f".{name}") for name in ("healthy", "rebooted", "unhealthy", "never")}
    assert len(set(backgrounds.values())) == 4, backgrounds  # a colour of its own, not healthy's green
    assert '<div class="tile" id="tile-up-now"><b>2 / 4</b><span class="muted">instances up now, 1 of them after a reboot'\
        in html
    legend = re.search(r'<p class="statuses muted" id="status-legend">(.*?)</p>', html).group(1)
    assert ">rebooted</span> needed a reboot, back authorized after it" in legend
    assert ">healthy</span> authorized" in legend


@pytest.mark.parametrize(("zone", "source"), [(PARIS, "message_timezone in Variable green_api_settings"),
                                               (ZoneInfo("Asia/Tokyo"), "the time zone of your Airflow UI")])
def test_every_time_names_its_zone(zone, source):
    check = {"id": 7, "checked_at": NOW, "instance_id": "1", "connection_id": "c", "status": "healthy",
             "state_instance": "authorized", "response_time_ms": 90, "reboot_triggered": False,
             "trigger_type": "automatic", "dag_id": "d", "run_id": "r", "incident_id": 3,
             "incident": {"id": 3, "kind": "k", "severity": "s", "opened_at": NOW, "resolved_at": NOW, "reboots": 0,
                          "levels_notified": 1, "down_seconds": 0},
             "deliveries": [{"attempted_at": NOW, "message_kind": "opening", "recipient": "r", "channel": "whatsapp",
                             "sender": "s", "attempt": 1, "ok": True}]}
    html = _page([_instance("1", "healthy")], [check], zone, source)
    local = NOW.astimezone(zone)
    assert f'<html lang="en" data-zone="{zone.key}">' in html
    assert f'times in <b id="display-zone">{zone.key}</b>\n(<span id="zone-source">{escape(source)}</span>)' in html
    assert f'<th>Last check <span class="zone">({zone.key})</span></th>' in html
    assert f'<span>Checked <span class="zone">({zone.key})</span></span>' in html
    assert f'<summary class="cols"><span class="nowrap">{local:%Y-%m-%d %H:%M:%S}</span>' in html
    # Times inside sentences carry the zone's abbreviation.
    stamp = f"{local:%Y-%m-%d %H:%M:%S %Z}"
    assert f"opened {stamp}, resolved {stamp}" in html and f"<li>{stamp}: opening to r" in html


@pytest.mark.parametrize(("first", "minimum", "since"), [
    (None, timedelta(hours=1), NOW - timedelta(hours=24)),  # nothing yet: the whole window
    (NOW - timedelta(days=3), timedelta(hours=1), NOW - timedelta(hours=24)),  # data fills the window
    (NOW - timedelta(hours=23, minutes=57), timedelta(hours=1), NOW - timedelta(hours=24)),  # nearly: all of it
    (NOW - timedelta(hours=5), timedelta(hours=1), NOW - timedelta(hours=5)),  # a fresh install: the data's span
    (NOW - timedelta(minutes=20), timedelta(hours=1), NOW - timedelta(hours=1)),  # at least the minimum
])
def test_a_chart_shows_its_window_or_the_span_of_the_data(first, minimum, since):
    assert charts.Frame.fitted(timedelta(hours=24), NOW, first, minimum) == charts.Frame(since, NOW)


def test_recent_data_of_a_fresh_install_is_spread_over_the_chart():
    buckets = [{"at": NOW - timedelta(minutes=m), "mean_ms": 200 + m, "failing": int(m == 15)} for m in (35, 25, 15, 5)]
    frame = charts.Frame.fitted(timedelta(hours=24), NOW, buckets[0]["at"], timedelta(hours=1))
    svg = charts.timeline(title=charts.title(frame, timedelta(hours=24), timedelta(minutes=5), PARIS), frame=frame,
                          buckets=buckets, bucket=timedelta(minutes=5), reboots=[], alerts=[],
                          mark_bucket=timedelta(minutes=15), zone=PARIS)
    assert "Last 1 hour (all the data so far; the full window is 24 hours), 5 min buckets, times in Europe/Paris" in svg
    xs = [float(p.split(",")[0]) for p in re.search(r'<polyline points="([^"]+)"', svg).group(1).split()]
    width = charts.WIDTH - charts.LEFT - charts.RIGHT
    assert xs[-1] - xs[0] >= 0.49 * width  # 30 minutes of data over half the chart, not a few pixels
    [bar] = re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
    assert float(bar[1]) > 50  # a 5-minute bar is wide enough to see and hover
    labels = re.findall(r'class="label mid">([0-9:]+)<', svg)
    assert labels == ["13:00", "13:10", "13:20", "13:30", "13:40", "13:50", "14:00"]  # 12:00 UTC is 14:00 CEST


def test_a_full_window_is_titled_as_such():
    frame = charts.Frame.fitted(timedelta(days=30), NOW, NOW - timedelta(days=31), timedelta(days=1))
    assert charts.title(frame, timedelta(days=30), timedelta(hours=1), PARIS, "1101000001") == (
        "Last 30 days, hourly buckets, times in Europe/Paris — 1101000001")


# --- the readings of an authorized instance, and the outgoing queue ----------------------------------


def _queue_svg(buckets, threshold=50, title="q"):
    return charts.queue_chart(title=title, frame=charts.Frame(NOW - timedelta(hours=24), NOW), buckets=buckets,
                              bucket=timedelta(minutes=5), threshold=threshold, zone=PARIS)


def test_the_queue_chart_scales_to_the_threshold_and_marks_the_buckets_above_it():
    at = NOW - timedelta(hours=2)
    svg = _queue_svg([{"at": at + timedelta(minutes=5 * n), "max_queue": q} for n, q in enumerate((0, 10, 50, 120))])
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and f'viewBox="0 0 {charts.WIDTH} {charts.QUEUE_HEIGHT}"' in svg
    [line] = re.findall(r'<polyline points="([^"]+)"', svg)
    ys = [float(p.split(",")[1]) for p in line.split()]
    low, high = charts.QUEUE_PANEL
    assert ys[0] == pytest.approx(high) and ys == sorted(ys, reverse=True)  # 0 on the axis, 120 highest
    assert ys[3] == pytest.approx(high - (high - low) * 120 / 200)  # the axis' top: 200
    [threshold_y] = re.findall(r'<line x1="[\d.]+" y1="([\d.]+)" x2="[\d.]+" y2="[\d.]+" class="threshold">', svg)
    assert float(threshold_y) == pytest.approx(high - (high - low) * 50 / 200, abs=0.1)
    marks = re.findall(r'<circle [^>]*class="high"><title>([^<]+)</title>', svg)
    assert marks == ["29/03 12:10: 50 messages waiting", "29/03 12:15: 120 messages waiting"]  # Paris time


def test_a_small_queue_is_drawn_against_the_threshold_and_gaps_break_the_line():
    at = NOW - timedelta(hours=2)
    buckets = [{"at": at + timedelta(minutes=5 * n), "max_queue": 2} for n in (0, 1, 2, 6, 7, 10)]
    svg = _queue_svg(buckets, threshold=30)
    assert len(re.findall("<polyline", svg)) == 2 and len(re.findall(r'class="dot"', svg)) == 1
    assert ">50</text>" in svg and "alert threshold 30" in svg  # the axis reaches the threshold and 'class="high"' not in svg
    assert "<polyline" not in _queue_svg([]) and ET.fromstring(_queue_svg([])) is not None


def _with_readings(instance_id, socket=None, queue=None, settings=None, read=NOW - timedelta(minutes=7)):
    return {**_instance(instance_id, "healthy"), "socket_status": socket, "socket_read_at": socket and read,
            "queue_length": queue, "queue_read_at": None if queue is None else read,
            "settings_status": settings, "settings_read_at": settings and read}


def _cells(html, instance_id):
    row = re.search(rf'<tr data-instance="{instance_id}">.*?</tr>', html, re.S).group(0)
    return {field: re.sub(r"<[^>]+>", " ", cell).split()
            for field, cell in re.findall(r'<td [^>]*data-field="(socket|queue|settings)">(.*?)</td>', row, re.S)}


def test_readings_show_with_their_age_and_problems_are_flagged():
    html = _page([_with_readings("1", "online", 0, "match"), _with_readings("2", "offline", 50, "drift"),
                  _with_readings("3", "online", 49), _with_readings("4"), _instance("5", None)])
    assert _cells(html, "1") == {"socket": ["online", "7", "min", "ago"], "queue": ["0", "7", "min", "ago"],
                                 "settings": ["match", "7", "min", "ago"]}
    assert _cells(html, "2") == {"socket": ["⚠", "offline", "7", "min", "ago"], "queue": ["⚠", "50", "7", "min", "ago"],
                                 "settings": ["⚠", "drift", "7", "min", "ago"]}
    assert _cells(html, "3")["queue"] == ["49", "7", "min", "ago"] and _cells(html, "3")["settings"] == ["—"]
    assert _cells(html, "4") == _cells(html, "5") == {"socket": ["—"], "queue": ["—"], "settings": ["—"]}
    by_last_check = _page([_with_readings("6", "online", 4, read=NOW - timedelta(minutes=3))])
    assert _cells(by_last_check, "6") == {"socket": ["online"], "queue": ["4"], "settings": ["—"]}  # its age is beside
    row2 = re.search(r'<tr data-instance="2">.*?</tr>', html, re.S).group(0)
    assert row2.count('<span class="incident" title="') == 3 and "read 2026-03-29 13:53:00 CEST" in row2
    assert '<span class="incident"' not in re.search(r'<tr data-instance="3">.*?</tr>', html, re.S).group(0)
    assert page.reading_problems(_with_readings("3", queue=49), 40) == {
        "queue": "49 messages waiting: at or above the alert threshold (40)"}
    assert "alert threshold (50)" in html and 'data="charts/queue.svg"' in html

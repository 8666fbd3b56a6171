"""The page and the charts from plain data: no Airflow, no database."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
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


def test_gaps_in_response_times_break_the_line():
    at = NOW - timedelta(hours=1)
    buckets = [{"at": at + timedelta(minutes=5 * n), "mean_ms": None if n == 2 else 100, "failing": 0}
               for n in range(5)]
    assert len(re.findall("<polyline", _svg(buckets))) == 2


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
        "now": NOW, "instances": [{**hostile_check, "checked_at": NOW}], "status": None, "instance": None,
        "incidents": [{"instance_id": HOSTILE, "kind": HOSTILE, "severity": "critical", "open_seconds": 60}],
        "stats": {"total_checks": 1, "healthy_count": 0, "avg_response_ms": None},
        "checks": {"page": 1, "pages": 1, "total": 1, "checks": [hostile_check]},
        "schedule": {"error": HOSTILE}, "links": {"check_now": "a", "force_reboot": "b", "schedule": "c",
                                                   "scheduled_dag": "d"},
        "instance_ids": [HOSTILE],
    }
    html = page.render(data, PARIS)
    assert HOSTILE not in html and html.count("&lt;script&gt;") >= 10
    assert "<script>setTimeout" in html  # the page's own refresh, and nothing else

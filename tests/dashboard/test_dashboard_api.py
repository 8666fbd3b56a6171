"""The dashboard's page and JSON endpoints on Airflow's API server, with PostgreSQL data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urljoin
from zoneinfo import ZoneInfo

import pytest

from greenapi.dashboard import dashboard_link
from tests.dashboard.conftest import log_check

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}  # as Chromium asks
ENDPOINTS = [
    "/green-api/",
    "/green-api/api/instances",
    "/green-api/api/summary",
    "/green-api/api/incidents",
    "/green-api/api/series?window=24h",
    "/green-api/api/series?window=30d",
    "/green-api/charts/24h.svg",
    "/green-api/api/queue",
    "/green-api/charts/queue.svg",
    "/green-api/api/checks",
    "/green-api/api/checks/1",
    "/green-api/api/schedule",
    "/green-api/api/docs",
    "/green-api/api/openapi.json",
]


def p95(values: list[int]) -> int:
    """PostgreSQL's percentile_cont(0.95), rounded."""
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


# --- access -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_anonymous_gets_401_and_no_data(api, db, path):
    log_check(db, "1101000001", 3, "unhealthy", error="SECRET-LOOKING-ERROR")
    response = api.get(path)
    assert response.status_code == 401 and response.json() == {"detail": "Not authenticated"}
    assert "1101000001" not in response.text and "SECRET-LOOKING-ERROR" not in response.text


@pytest.mark.parametrize("path", ENDPOINTS[1:])
def test_a_browser_gets_401_json_from_the_api_routes(api, db, path):
    response = api.get(path, headers=BROWSER, follow_redirects=False)
    assert response.status_code == 401 and response.json() == {"detail": "Not authenticated"}


@pytest.mark.parametrize("cookies", [{}, {"_token": "not-a-jwt"}], ids=["no session", "a token Airflow did not sign"])
def test_a_browser_without_a_session_is_sent_to_the_login_page_and_back(api, db, cookies):
    log_check(db, "1101000001", 3, "unhealthy", error="SECRET-LOOKING-ERROR")
    api.cookies.clear()
    response = api.get("/green-api/?status=unhealthy", headers=BROWSER, cookies=cookies, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/auth/login?" + urlencode({"next": "/green-api/?status=unhealthy"})
    assert "1101000001" not in response.text and "SECRET-LOOKING-ERROR" not in response.text
    login = api.get(response.headers["location"])
    assert login.status_code == 200 and "<title>Airflow</title>" in login.text  # the auth manager's login page


def test_a_browser_with_a_session_but_no_permission_gets_403_not_a_login_loop(api, db):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    no_role = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="intruder", role=None))
    response = api.get("/green-api/", headers=BROWSER, cookies={"_token": no_role}, follow_redirects=False)
    assert response.status_code == 403 and response.json() == {"detail": "Forbidden"}


@pytest.mark.parametrize("path", ["/green-api/", "/green-api/api/checks"])
def test_forged_or_wrong_tokens_get_403(api, db, path):
    assert api.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403
    assert api.get(path, cookies={"_token": "not-a-jwt"}).status_code == 403


def test_user_without_dag_read_permission_gets_403(api, db):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    # A valid, signed token for a user the auth manager gives no role (so no permission).
    no_role = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="intruder", role=None))
    response = api.get("/green-api/api/instances", headers={"Authorization": f"Bearer {no_role}"})
    assert response.status_code == 403


def test_ui_session_cookie_is_accepted(api, token, db):
    # The page opens inside Airflow's UI, whose browser session carries the token as a cookie.
    response = api.get("/green-api/", cookies={"_token": token})
    assert response.status_code == 200
    assert "<h1>Green API health</h1>" in response.text


def test_the_navigation_entry_links_to_the_dashboard_itself(api, get):
    plugins = get("/api/v2/plugins").json()["plugins"]
    [ours] = [p for p in plugins if p["name"] == "green_api"]
    [view] = ours["external_views"]
    # In the Browse menu, without url_route: Airflow's UI links to href instead of framing it under /plugin/.
    assert (view["name"], view["category"], view.get("url_route"), view["destination"]) == (
        "Green API", "browse", None, "nav")
    assert ours["fastapi_apps"][0]["url_prefix"] == "/green-api"
    # The UI resolves href against its <base href>: the address is the dashboard's, the one alerts link to.
    [base] = re.findall(r'<base href="([^"]*)"', api.get("/", headers=BROWSER).text)
    assert urljoin("http://airflow.example" + base, view["href"]) == dashboard_link("http://airflow.example")


# --- empty database -----------------------------------------------------------------------------


def test_empty_database(get, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_INSTANCES", '["green_api_default"]')
    instances = get("/green-api/api/instances").json()
    assert instances["instances"] == []
    assert instances["never_checked"] == [
        {"instance_id": "green_api_default", "connection_id": "green_api_default", "status": None}]
    summary = get("/green-api/api/summary").json()
    assert summary["stats_7d"]["total_checks"] == 0 and summary["open_incidents"] == []
    checks = get("/green-api/api/checks").json()
    assert (checks["total"], checks["pages"], checks["checks"]) == (0, 1, [])
    series = get("/green-api/api/series?window=30d").json()
    assert series["buckets"] == [] and series["reboots"] == [] and series["alerts"] == []
    page = get("/green-api/")
    assert page.status_code == 200
    assert "no check yet" in page.text and "No check matches." in page.text
    assert get("/green-api/charts/30d.svg").text.startswith("<svg")


# --- instances, uptime, latency -----------------------------------------------------------------


def test_instances_show_last_check_uptime_mean_p95_and_open_incidents(get, db):
    times = [120, 180, 240, 300, 360, 420, 480, 540, 600, 2000]
    for n, ms in enumerate(times):  # one every 10 minutes over the last 100 minutes
        log_check(db, "1101000001", 10 * (n + 1), "healthy" if n != 4 else "unhealthy", response_ms=ms)
    log_check(db, "1101000001", 3 * 24 * 60, "unhealthy", response_ms=900)  # 3 days ago: 7 d and 30 d only
    # An instance that never answered: every check timed out, no state, no response time.
    incident = db.execute(
        "INSERT INTO green_api_incidents (instance_id, kind, severity, opened_at, checks)"
        " VALUES ('1101000002', 'complete_failure', 'critical', now() - interval '95 minutes', 3) RETURNING id"
    ).fetchone()[0]
    for minutes in (95, 50, 5):
        log_check(db, "1101000002", minutes, "unhealthy", state=None, response_ms=None,
                  error="Timeout after 10s", incident_id=incident)

    body = get("/green-api/api/instances").json()
    by_id = {i["instance_id"]: i for i in body["instances"]}
    first, never = by_id["1101000001"], by_id["1101000002"]
    assert (first["status"], first["state_instance"], first["response_time_ms"]) == ("healthy", "authorized", 120)
    assert first["uptime_24h"] == 90.0
    assert first["uptime_7d"] == first["uptime_30d"] == round(100 * 9 / 11, 2)
    assert first["mean_ms_24h"] == round(sum(times) / len(times))
    assert first["p95_ms_24h"] == p95(times)
    assert first["open_incidents"] == []
    assert (never["status"], never["state_instance"], never["response_time_ms"]) == ("unhealthy", None, None)
    assert never["uptime_24h"] == 0.0 and never["mean_ms_24h"] is None and never["p95_ms_24h"] is None
    [open_incident] = never["open_incidents"]
    assert open_incident["kind"] == "complete_failure"
    assert 95 * 60 <= open_incident["open_seconds"] < 97 * 60

    page = get("/green-api/").text
    row = re.search(r'<tr data-instance="1101000002">.*?</tr>', page, re.S).group(0)
    assert "complete_failure (critical), open for" in row and "1 h 35 min" in row
    assert 'data-field="uptime_24h">0.00 %' in row and 'data-field="p95_24h">—' in row


def test_maintenance_window_checks_do_not_count_against_uptime(get, db):
    log_check(db, "1101000003", 30, "healthy")
    log_check(db, "1101000003", 25, "unhealthy", in_window=True)
    log_check(db, "1101000003", 20, "rebooted", trigger_type="scheduled")
    [row] = get("/green-api/api/instances").json()["instances"]
    assert row["uptime_24h"] == 100.0


# --- charts ------------------------------------------------------------------------------------


def test_series_count_failures_and_mark_reboots_and_alerts(get, db):
    log_check(db, "1101000001", 40, "healthy", response_ms=100)
    log_check(db, "1101000001", 30, "unhealthy", reboot=True, notified=True, state="notAuthorized")
    db.execute(
        "INSERT INTO green_api_alert_deliveries (instance_id, run_id, message_kind, recipient, channel, ok,"
        " attempted_at) VALUES ('1101000001', 'r', 'opening', '33600000001@c.us', 'whatsapp', true,"
        " now() - interval '29 minutes'), ('1101000001', 'r', 'opening', '33600000002@c.us', 'whatsapp', false,"
        " now() - interval '29 minutes')"
    )
    for window in ("24h", "30d"):
        series = get(f"/green-api/api/series?window={window}").json()
        assert sum(b["failing"] for b in series["buckets"]) == 1
        assert sum(b["checks"] for b in series["buckets"]) == 2
        assert [(r["count"], r["ok"], r["instances"]) for r in series["reboots"]] == [(1, 1, ["1101000001"])]
        assert [(a["count"], a["kinds"]) for a in series["alerts"]] == [(1, ["opening"])]  # delivered ones only
    svg = get("/green-api/charts/24h.svg").text
    assert svg.count('class="fail"') == 1 and svg.count('class="reboot"') == 1 and svg.count('class="alert"') == 1
    assert "1 reboot(s), 1 succeeded (1101000001)" in svg


def test_series_of_one_instance(get, db):
    log_check(db, "1101000001", 30, "unhealthy")
    log_check(db, "1101000002", 30, "healthy")
    for window in ("24h", "30d"):
        buckets = get(f"/green-api/api/series?window={window}&instance=1101000002").json()["buckets"]
        assert sum(b["checks"] for b in buckets) == 1 and sum(b["failing"] for b in buckets) == 0


# --- authorized but broken: socket, queue, settings -------------------------------------------------

READINGS = ("socket_status", "socket_read_at", "queue_length", "queue_read_at", "settings_status", "settings_read_at")


def _readings(instance: dict) -> tuple:
    return tuple(instance[field] for field in READINGS)


def _at(db, check_id: int) -> str:
    return db.execute("SELECT checked_at FROM green_api_health_logs WHERE id = %s", (check_id,)).fetchone()[0].isoformat()


def test_instances_show_their_last_socket_queue_and_settings_readings(get, db):
    # 1101000001: read while authorized, then notAuthorized (nothing read): its last readings stay shown.
    settings = log_check(db, "1101000001", 60, queue=3, socket="online", settings="match")
    broken = log_check(db, "1101000001", 30, queue=72, socket="offline")
    log_check(db, "1101000001", 5, "unhealthy", state="notAuthorized")
    # 1101000002: never read (never authorized).
    log_check(db, "1101000002", 5, "unhealthy", state="notAuthorized")
    # 1101000003: an empty queue, settings drifting 8 days ago (older than 7 days: not shown), then not read.
    log_check(db, "1101000003", 8 * 24 * 60, settings="drift")
    fine = log_check(db, "1101000003", 10, queue=0, socket="online")

    by_id = {i["instance_id"]: i for i in get("/green-api/api/instances").json()["instances"]}
    assert _readings(by_id["1101000001"]) == ("offline", _at(db, broken), 72, _at(db, broken), "match", _at(db, settings))
    assert _readings(by_id["1101000002"]) == (None,) * 6
    assert _readings(by_id["1101000003"]) == ("online", _at(db, fine), 0, _at(db, fine), None, None)

    page = get("/green-api/").text
    assert "<th>Socket</th><th class=\"num\">Queue</th><th>Settings</th>" in page

    def cell(instance: str, field: str) -> str:
        row = re.search(rf'<tr data-instance="{instance}">.*?</tr>', page, re.S).group(0)
        return re.search(rf'<td [^>]*data-field="{field}">(.*?)</td>', row, re.S).group(1)

    # An offline socket and a queue at or above the threshold (50) are flagged as problems are.
    assert cell("1101000001", "socket").startswith('<span class="incident" title="the socket is offline')
    assert ">⚠ offline</span><br><span class=\"muted\">30 min ago</span>" in cell("1101000001", "socket")
    assert '<span class="incident" title="72 messages waiting: at or above the alert threshold (50); read ' in (
        cell("1101000001", "queue"))
    assert ">⚠ 72</span>" in cell("1101000001", "queue")
    assert re.fullmatch(r'<span title="read [^"]+">match</span><br><span class="muted">1 h 00 min ago</span>',
                        cell("1101000001", "settings"))
    assert [cell("1101000002", field) for field in ("socket", "queue", "settings")] == ["—", "—", "—"]
    # Read by the last check: no age of its own (the last check's is beside it).
    assert re.fullmatch(r'<span title="read [^"]+">0</span>', cell("1101000003", "queue"))
    assert ">online</span>" in cell("1101000003", "socket") and cell("1101000003", "settings") == "—"


def test_a_drift_is_flagged_and_the_queue_threshold_follows_the_settings(get, db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", '{"queue_alert_threshold": 80}')
    log_check(db, "1101000001", 5, queue=72, socket="online", settings="drift")
    page = get("/green-api/").text
    row = re.search(r'<tr data-instance="1101000001">.*?</tr>', page, re.S).group(0)
    assert re.search(r'data-field="queue"><span title="read [^"]+">72</span>', row)  # under 80: not flagged
    assert re.search(r'data-field="settings"><span class="incident" title="the settings differ from the '
                     r"connection&#39;s expected_settings; read [^\"]+\">⚠ drift</span>", row)
    assert "alert threshold (80)" in page
    assert get("/green-api/api/queue").json()["threshold"] == 80
    assert "alert threshold 80" in get("/green-api/charts/queue.svg").text


def test_the_queue_chart_draws_the_longest_queue_per_5_minutes(get, db):
    # Buckets of 5 minutes: readings in three buckets in a row, none in the next two, then one more.
    start = datetime.fromtimestamp((datetime.now(UTC).timestamp() - 3600) // 300 * 300, UTC)

    def at(bucket: int) -> datetime:
        return start + timedelta(minutes=5 * bucket + 1)

    for bucket, queue in ((0, 5), (1, 60), (2, 7), (5, 12)):
        log_check(db, "1101000001", 0, queue=queue, socket="online", at=at(bucket))
    log_check(db, "1101000002", 0, queue=20, socket="online", at=at(1))
    log_check(db, "1101000002", 0, "unhealthy", state="notAuthorized", at=at(3))  # no reading: not a bucket

    queue = get("/green-api/api/queue").json()
    assert [(b["at"], b["max_queue"], b["reads"]) for b in queue["buckets"]] == [
        ((start + timedelta(minutes=5 * n)).isoformat(), q, r) for n, q, r in ((0, 5, 1), (1, 60, 2), (2, 7, 1), (5, 12, 1))]
    assert (queue["bucket_minutes"], queue["threshold"]) == (5, 50)

    svg = get("/green-api/charts/queue.svg").text
    [line] = re.findall(r'<polyline points="([^"]+)"', svg)  # the gap breaks the line: 3 points, then a dot
    points = [tuple(map(float, p.split(","))) for p in line.split()]
    assert len(points) == 3 and points[0][0] < points[1][0] < points[2][0]
    assert points[1][1] < points[2][1] < points[0][1]  # 60 is drawn above 7, 7 above 5
    assert len(re.findall(r'<circle [^>]*class="dot"', svg)) == 1
    second = (start + timedelta(minutes=5)).astimezone(ZoneInfo("Europe/Paris"))  # the page's zone by default
    assert re.findall(r"<title>([^<]*messages waiting)</title>", svg) == [  # the threshold, the bucket above it
        "alert threshold: 50 messages waiting", f"{second:%d/%m %H:%M}: 60 messages waiting"]
    assert re.search(r"<title>Outgoing queue: Last [^<]* \(all the data so far; the full window is 24 hours\), "
                     r"5 min buckets, times in Europe/Paris</title>", svg)

    one = get("/green-api/api/queue?instance=1101000002").json()["buckets"]
    assert [(b["max_queue"], b["reads"]) for b in one] == [(20, 1)]
    svg = get("/green-api/charts/queue.svg?instance=1101000002").text
    assert "<polyline" not in svg and svg.count('class="dot"') == 1 and "— 1101000002" in svg

    page = get("/green-api/?instance=1101000002").text
    assert '<object class="chart queue" id="chart-queue" type="image/svg+xml" data="charts/queue.svg?instance=1101000002">'\
        in page
    assert "<h2>Outgoing queue — instance 1101000002</h2>" in page
    assert "<h2>Outgoing queue — the longest of all instances</h2>" in get("/green-api/").text


def test_checks_carry_what_they_read(get, db):
    read = log_check(db, "1101000001", 10, queue=72, socket="offline")
    log_check(db, "1101000001", 5, "unhealthy", state="notAuthorized")
    checks = get("/green-api/api/checks").json()["checks"]
    assert [(c["queue_length"], c["socket_status"], c["settings_status"]) for c in checks] == [
        (None, None, None), (72, "offline", None)]
    assert get(f"/green-api/api/checks/{read}").json()["queue_length"] == 72
    page = get("/green-api/").text
    assert page.count("Read while authorized:") == 1
    assert "Read while authorized: socket offline, outgoing queue 72, settings not read</div>" in page


# --- checks list --------------------------------------------------------------------------------


def test_checks_are_paginated_50_a_page_newest_first(get, db):
    ids = [log_check(db, "1101000001", minutes) for minutes in range(120, 0, -1)]  # oldest first
    first = get("/green-api/api/checks").json()
    assert (first["total"], first["pages"], first["page_size"]) == (120, 3, 50)
    assert [c["id"] for c in first["checks"]] == ids[::-1][:50]
    last = get("/green-api/api/checks?page=3").json()
    assert [c["id"] for c in last["checks"]] == ids[::-1][100:]
    page = get("/green-api/?page=2").text
    assert "page 2 of 3" in page and page.count('<details class="check"') == 50


def test_checks_filter_by_status_and_instance(get, db):
    log_check(db, "1101000001", 30, "healthy")
    bad = log_check(db, "1101000001", 20, "critical_failure", state="blocked")
    log_check(db, "1101000002", 10, "critical_failure", state="blocked")
    one = get("/green-api/api/checks?status=critical_failure&instance=1101000001").json()
    assert (one["total"], [c["id"] for c in one["checks"]]) == (1, [bad])
    assert get("/green-api/api/checks?status=critical_failure").json()["total"] == 2
    page = get("/green-api/?status=critical_failure").text
    assert re.findall(r'<details class="check" data-id="\d+" data-status="([a-z_]+)"', page) == [
        "critical_failure", "critical_failure"]
    assert '<option value="critical_failure" selected>' in page


@pytest.mark.parametrize(("query", "named"), [
    ("status=broken", "status must be one of"),
    ("page=0", "page must be between 1 and 100000"),
    ("instance=" + "9" * 65, "instance must be an instance id"),
])
def test_bad_filters_get_400_naming_them(get, query, named):
    for path in ("/green-api/api/checks", "/green-api/"):
        response = get(f"{path}?{query}")
        assert response.status_code == 400 and named in response.json()["detail"]


def test_bad_window_gets_400(get):
    response = get("/green-api/api/series?window=1y")
    assert response.status_code == 400 and "window must be one of 24h, 30d; got '1y'" in response.json()["detail"]


def test_check_details_give_error_reboot_incident_and_deliveries(get, db):
    incident = db.execute(
        "INSERT INTO green_api_incidents (instance_id, kind, severity, opened_at, checks, reboots, levels_notified)"
        " VALUES ('1101000001', 'instance_not_authorized', 'critical', now() - interval '20 minutes', 1, 1, 1)"
        " RETURNING id"
    ).fetchone()[0]
    check = log_check(db, "1101000001", 20, "unhealthy", state="notAuthorized", error="WhatsApp unlinked",
                      reboot=True, notified=True, incident_id=incident, run_id="scheduled__x")
    db.execute(
        "INSERT INTO green_api_alert_deliveries (incident_id, instance_id, run_id, message_kind, recipient, channel,"
        " sender, attempt, ok, error) VALUES (%s, '1101000001', 'scheduled__x', 'opening', '33600000001@c.us',"
        " 'whatsapp', 'green_api_alerts', 2, true, NULL)", (incident,),
    )
    detail = get(f"/green-api/api/checks/{check}").json()
    assert detail["error_message"] == "WhatsApp unlinked" and detail["reboot_triggered"] is True
    assert detail["incident"]["kind"] == "instance_not_authorized" and detail["incident"]["resolved_at"] is None
    [delivery] = detail["deliveries"]
    assert (delivery["recipient"], delivery["attempt"], delivery["ok"]) == ("33600000001@c.us", 2, True)
    page = get("/green-api/").text
    assert f"Incident #{incident}: instance_not_authorized (critical)" in page
    assert "opening to 33600000001@c.us by whatsapp via green_api_alerts (attempt 2): delivered" in page
    assert get("/green-api/api/checks/999999").status_code == 404


def test_incidents_show_the_real_times_of_their_checks(get, db):
    # Runs of 12:00 and 12:10 (logical); the first failing check was made at 12:03:02, the first
    # healthy one at 12:10:05: the outage lasted 7 min, from 12:03:02 to 12:10:05.
    def utc(minute, second=0):
        return datetime(2026, 1, 15, 12, minute, second, tzinfo=UTC)

    resolved = db.execute(
        "INSERT INTO green_api_incidents (instance_id, kind, opened_at, resolved_at, first_failed_at, recovered_at,"
        " checks) VALUES ('1101000001', 'instance_not_authorized', %s, %s, %s, %s, 1) RETURNING id",
        (utc(0), utc(10), utc(3, 2), utc(10, 5)),
    ).fetchone()[0]
    check = log_check(db, "1101000001", 5, "unhealthy", state="notAuthorized", incident_id=resolved)
    # Still open: its first failing check 98 minutes ago, the run that opened it 95 minutes ago.
    db.execute(
        "INSERT INTO green_api_incidents (instance_id, kind, severity, opened_at, first_failed_at, checks)"
        " VALUES ('1101000002', 'complete_failure', 'critical', now() - interval '95 minutes',"
        " now() - interval '98 minutes', 2)"
    )
    log_check(db, "1101000002", 1, "unhealthy", state=None)
    incident = get(f"/green-api/api/checks/{check}").json()["incident"]
    assert (incident["opened_at"], incident["resolved_at"], incident["down_seconds"]) == (
        "2026-01-15T12:03:02+00:00", "2026-01-15T12:10:05+00:00", 423)
    page = get("/green-api/").text
    assert "opened 2026-01-15 13:03:02 CET, resolved 2026-01-15 13:10:05 CET (down 7 min)" in page  # Paris time
    [open_incident] = {i["instance_id"]: i for i in get("/green-api/api/instances").json()["instances"]}[
        "1101000002"]["open_incidents"]
    assert 98 * 60 <= open_incident["open_seconds"] < 99 * 60
    row = re.search(r'<tr data-instance="1101000002">.*?</tr>', page, re.S).group(0)
    assert "open for <span data-field=\"open_for\">1 h 38 min</span>" in row


# --- schedule -----------------------------------------------------------------------------------


def test_schedule_gives_next_run_in_local_time_and_utc(get, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE",
                       '{"time": "04:30", "timezone": "Asia/Kolkata", "enabled": true}')
    body = get("/green-api/api/schedule").json()
    zone = ZoneInfo("Asia/Kolkata")
    local_now = datetime.now(zone)
    expected = local_now.replace(hour=4, minute=30, second=0, microsecond=0)
    if expected <= local_now:
        expected += timedelta(days=1)  # no DST in India: a plain day later
    assert body["next_run"] == expected.astimezone(UTC).isoformat()
    assert body["next_run_local"] == expected.strftime("%Y-%m-%d %H:%M IST")
    assert body["next_run_utc"] == expected.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert body["links"]["check_now"] == "../dags/green_api_health_check"
    page = get("/green-api/").text
    assert '<b id="schedule-time">04:30</b>' in page and "Asia/Kolkata" in page
    assert 'href="../dags/green_api_reboot"' in page and 'target="_top"' in page


def test_invalid_schedule_is_named_on_the_page(get, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_REBOOT_SCHEDULE", '{"time": "25:00"}')
    assert "must be a 24-hour time HH:MM" in get("/green-api/api/schedule").json()["error"]
    assert "The reboot schedule is invalid" in get("/green-api/").text


# --- time zones ---------------------------------------------------------------------------------


def test_times_are_in_the_messages_zone_and_say_so(get, db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", '{"message_timezone": "America/Sao_Paulo"}')
    log_check(db, "1101000001", 3)
    checked_at = db.execute("SELECT checked_at FROM green_api_health_logs").fetchone()[0]
    page = get("/green-api/").text
    assert 'times in <b id="display-zone">America/Sao_Paulo</b>' in page
    assert "message_timezone in Variable green_api_settings" in page
    local = f"{checked_at.astimezone(ZoneInfo('America/Sao_Paulo')):%Y-%m-%d %H:%M:%S}"
    assert '<th>Last check <span class="zone">(America/Sao_Paulo)</span></th>' in page
    assert f'data-field="last_check">{local}<br>' in page
    assert '<span>Checked <span class="zone">(America/Sao_Paulo)</span></span>' in page
    assert f'<summary class="cols"><span class="nowrap">{local}</span>' in page
    assert "times in America/Sao_Paulo" in get("/green-api/charts/24h.svg").text


def test_times_follow_the_airflow_ui_zone_the_page_reports(get, db):
    log_check(db, "1101000001", 3)
    checked_at = db.execute("SELECT checked_at FROM green_api_health_logs").fetchone()[0]
    reported = {"green_api_tz": "Asia%2FTokyo"}  # what the page's script sets (encodeURIComponent)
    page = get("/green-api/", cookies=reported).text
    assert 'times in <b id="display-zone">Asia/Tokyo</b>' in page and "the time zone of your Airflow UI" in page
    local = f"{checked_at.astimezone(ZoneInfo('Asia/Tokyo')):%Y-%m-%d %H:%M:%S}"
    assert '<th>Last check <span class="zone">(Asia/Tokyo)</span></th>' in page
    assert f'data-field="last_check">{local}<br>' in page
    assert "times in Asia/Tokyo" in get("/green-api/charts/30d.svg", cookies=reported).text


def test_an_invalid_settings_variable_is_said_on_the_page_as_text(get, db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_GREEN_API_SETTINGS", '{"message_timezone": "<script>alert(1)</script>"}')
    page = get("/green-api/").text
    assert "<script>alert(1)</script>" not in page
    assert ('<body>\n<p class="incident">green_api_settings.message_timezone is not a known IANA timezone: '
            "&#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;</p>") in page
    assert 'times in <b id="display-zone">UTC</b>\n(<span id="zone-source">green_api_settings is invalid</span>)' in page


@pytest.mark.parametrize("cookie", ["Mars/Olympus", "..%2F..%2Fetc%2Fpasswd", ""])
def test_a_zone_python_does_not_know_falls_back_to_the_messages_zone(get, db, cookie):
    page = get("/green-api/", cookies={"green_api_tz": cookie}).text
    assert 'times in <b id="display-zone">Europe/Paris</b>' in page


# --- a fresh install ------------------------------------------------------------------------------


def test_charts_of_a_fresh_install_show_the_span_of_the_data(get, db):
    log_check(db, "1101000001", 40, "healthy", response_ms=100)
    log_check(db, "1101000001", 30, "unhealthy", response_ms=300)
    day = get("/green-api/charts/24h.svg").text
    assert "Last 1 hour (all the data so far; the full window is 24 hours), 5 min buckets" in day
    [bar_x] = re.findall(r'<rect x="([\d.]+)"', day)
    assert float(bar_x) < 0.6 * 960  # 30 minutes ago, on a 1-hour axis: left of the middle, not at the edge
    month = get("/green-api/charts/30d.svg").text
    assert "Last 24 hours (all the data so far; the full window is 30 days), hourly buckets" in month


def test_page_is_self_contained(get, db):
    log_check(db, "1101000001", 5)
    page = get("/green-api/?instance=1101000001").text
    assert not re.search(r'(src|href|data)="(https?:)?//', page)  # nothing fetched from elsewhere
    assert "@import" not in page
    charts = re.findall(r'<object class="chart" id="chart-(\w+)" type="image/svg\+xml" data="([^"]+)"', page)
    assert charts == [("24h", "charts/24h.svg?instance=1101000001"), ("30d", "charts/30d.svg?instance=1101000001")]
    svg = get("/green-api/" + charts[1][1])
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.startswith("<svg") and "<style>" in svg.text and "— 1101000001" in svg.text
    assert "http" not in svg.text.replace('xmlns="http://www.w3.org/2000/svg"', "")



def test_json_endpoints_are_documented(get):
    schema = get("/green-api/api/openapi.json").json()
    assert set(schema["paths"]) == {"/", "/api/instances", "/api/summary", "/api/incidents", "/api/series", "/charts/{window}.svg",
                                    "/api/queue", "/charts/queue.svg", "/api/checks", "/api/checks/{check_id}",
                                    "/api/schedule"}
    docs = get("/green-api/api/docs").text
    assert "GET /green-api/api/checks" in docs and "status, instance, page" in docs
    assert "GET /green-api/api/queue" in docs
    for field in READINGS:
        assert f"<code>{field}</code>" in docs


def test_an_open_platform_outage_is_a_banner_its_members_link_to_it_and_api_incidents_lists_it(get, db):
    members = [f"11010000{n:02d}" for n in range(12)]
    outage = db.execute(
        "INSERT INTO green_api_incidents (instance_id, kind, severity, opened_at, first_failed_at, checks, members,"
        " last_state, last_error) VALUES ('outage:7103.api.greenapi.com:no_answer', 'platform_outage', 'critical',"
        " now() - interval '20 minutes', now() - interval '20 minutes', 4, %s, 'no answer',"
        " 'platform outage on host 7103.api.greenapi.com (no answer), 12 of 20 instances') RETURNING id",
        (members,),
    ).fetchone()[0]
    for member in members:
        log_check(
            db, member, 2, "critical_failure", state=None, error="Connection timeout", incident_id=outage
        )
    log_check(db, "1101000099", 2)  # not a member

    body = get("/green-api/api/incidents").json()
    [shown] = body["outages"]
    assert (shown["id"], shown["host"], shown["symptom"], shown["count"]) == (
        outage,
        "7103.api.greenapi.com",
        "no answer",
        12,
    )
    assert shown["members"] == members and body["incidents"] == []
    page = get("/green-api/").text
    banner = re.search(rf'<p class="incident outage" id="outage-{outage}".*?</p>', page, re.S).group(0)
    assert (
        "<b>7103.api.greenapi.com</b> (no answer): <b>12</b> instances, for" in banner and "20 min" in banner
    )
    row = re.search(r'<tr data-instance="1101000003">.*?</tr>', page, re.S).group(0)
    assert (
        f'<a class="incident" href="#outage-{outage}">in the platform outage on 7103.api.greenapi.com</a>'
        in row
    )
    other = re.search(r'<tr data-instance="1101000099">.*?</tr>', page, re.S).group(0)
    assert "platform outage" not in other and '<span class="muted">none</span>' in other

"""A real browser on a real API server: open the dashboard's address without a session (as from an
alert), log in, come back to it in the Airflow UI's time zone; open "Green API" from Airflow's
navigation; compare what the page shows with the database, filter by status, save screenshots.

Headless Chromium is Debian's `chromium` with its `chromedriver` (`make test` installs them).
Screenshots go to `.artifacts/screenshots/` (git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from greenapi.dashboard import dashboard_link
from tests.airflow_services import api_server as serve_api
from tests.dashboard.conftest import log_check

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".artifacts" / "screenshots"
USER, PASSWORD = "support", "pw-support-7Hq2"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`airflow api-server` with the simple auth manager and one viewer account."""
    folder = tmp_path_factory.mktemp("api-server")
    (folder / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(folder / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "browser-test-" + "s" * 64,
    }
    with serve_api(env, folder) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        raise RuntimeError("chromium and chromedriver are missing: `make browser` installs Debian's packages")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="chromium-")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", "--window-size=1440,1800"):
        options.add_argument(arg)
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(condition: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = condition()
            if found:
                return found
        except Exception:  # noqa: BLE001 - the page is still loading: look again
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("the page did not reach the expected state in time")
        time.sleep(0.25)


def _text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def _log_in(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    _wait(lambda: driver.find_element(By.NAME, "username")).send_keys(USER)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def _dashboard_in(driver: Any, zone: str) -> None:
    """Wait for the dashboard, drawn in ``zone`` (the page reloads once to follow the UI's zone)."""
    _wait(lambda: _text(driver, "h1") == "Green API health" and _text(driver, "#display-zone") == zone)


def _chart_title(driver: Any, window: str) -> str:
    return str(_wait(lambda: driver.execute_script(
        f"const d = document.getElementById('chart-{window}').contentDocument;"
        "return d && d.querySelector('svg title') ? d.querySelector('svg title').textContent : null;")))


def test_an_alert_link_without_a_session_goes_through_login_to_a_fresh_dashboard(api_server, browser, db):
    # A fresh install: three instances checked every 5 minutes for the last 35 minutes.
    for minutes in (35, 30, 25, 20, 15, 10, 5):
        log_check(db, "1101000001", minutes, "healthy", response_ms=150 + minutes)
        log_check(db, "1101000003", minutes, "unhealthy" if minutes <= 15 else "healthy", state="notAuthorized"
                  if minutes <= 15 else "authorized", response_ms=300)
    log_check(db, "1101000002", 35, "healthy")
    log_check(db, "1101000002", 30, "critical_failure", state=None, response_ms=None, error="Connection timeout")
    log_check(db, "1101000002", 25, "rebooted", reboot=True)

    browser.get(dashboard_link(api_server))  # the link in an alert, no session yet
    _wait(lambda: "/auth/login?next=%2Fgreen-api%2F" in browser.current_url)
    # The user's time zone, as Airflow's UI keeps it (localStorage "timezone", JSON) on this origin.
    browser.execute_script("localStorage.setItem('timezone', JSON.stringify('Asia/Tokyo'))")
    _log_in(browser)
    _wait(lambda: browser.current_url == dashboard_link(api_server))
    _dashboard_in(browser, "Asia/Tokyo")

    checked_at = db.execute("SELECT max(checked_at) FROM green_api_health_logs WHERE instance_id = '1101000001'"
                            ).fetchone()[0]
    assert _text(browser, "#instances th:nth-child(4)") == "Last check (Asia/Tokyo)"
    assert _text(browser, 'tr[data-instance="1101000001"] td[data-field="last_check"]').startswith(
        f"{checked_at.astimezone(ZoneInfo('Asia/Tokyo')):%Y-%m-%d %H:%M:%S}")
    assert _text(browser, "#checks-head span:first-child") == "Checked (Asia/Tokyo)"

    # Back after a reboot is not healthy's green.
    colour = "return getComputedStyle(document.querySelector('tr[data-instance=\"%s\"] .badge')).backgroundColor;"
    healthy, rebooted = (browser.execute_script(colour % i) for i in ("1101000001", "1101000002"))
    assert (healthy, rebooted) == ("rgb(26, 127, 55)", "rgb(188, 76, 0)")
    # Four instances: the three checked, and the default connection configured but never checked.
    assert _text(browser, "#tile-up-now") == "2 / 4\ninstances up now, 1 of them after a reboot"

    # 35 minutes of data fill a 1-hour axis instead of the last pixels of 24 hours.
    assert _chart_title(browser, "24h").startswith(
        "Last 1 hour (all the data so far; the full window is 24 hours), 5 min buckets, times in Asia/Tokyo")
    assert _chart_title(browser, "30d").startswith("Last 24 hours (all the data so far; the full window is 30 days)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "dashboard-fresh.png"))


def _generate_history(instances: int, days: int) -> str:
    """scripts/generate_history.py's checks every 5 minutes with outages, reboots and alerts; its output."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_history.py"), "--db-url", os.environ["GREEN_API_DB_URL"],
         "--instances", str(instances), "--days", str(days)], capture_output=True, text=True, check=True,
    ).stdout


def test_support_opens_the_dashboard_from_airflows_navigation_and_filters(api_server, browser, db):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    assert "checks: 3,460" in _generate_history(4, 3)  # 4 instances x (3 days x 288 + 1)

    browser.get(api_server + "/")
    _log_in(browser)
    airflow_tab = browser.current_window_handle
    _wait(lambda: browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Browse"]')).click()
    _wait(lambda: browser.find_element(By.CSS_SELECTOR, 'a[role="menuitem"][aria-label="Green API"]')).click()
    # The entry opens the dashboard's own address (a new tab), not /plugin/green-api/green-api/.
    _wait(lambda: len(browser.window_handles) == 2)
    browser.switch_to.window(next(h for h in browser.window_handles if h != airflow_tab))
    _wait(lambda: browser.current_url == dashboard_link(api_server))
    # No zone chosen in Airflow's UI: it shows the browser's, and so does the dashboard.
    _dashboard_in(browser, browser.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone;"))

    # The numbers on the page are the database's.
    columns = ("instance_id", "status", "uptime_24h", "uptime_30d", "p95_ms")
    rows = {r[0]: dict(zip(columns, r, strict=True)) for r in db.execute(
        "SELECT c.instance_id, c.status, u.uptime_24h, u.uptime_30d, l.p95_ms FROM green_api_instance_last_check c"
        " JOIN green_api_instance_uptime u USING (instance_id)"
        " LEFT JOIN green_api_instance_latency_24h l USING (instance_id)"
    ).fetchall()}
    assert len(rows) == 4
    for instance_id, expected in rows.items():
        row = f'tr[data-instance="{instance_id}"]'
        assert _text(browser, f'{row} td[data-field="status"]') == expected["status"]
        assert _text(browser, f'{row} td[data-field="uptime_24h"]') == f"{expected['uptime_24h']:.2f} %"
        assert _text(browser, f'{row} td[data-field="uptime_30d"]') == f"{expected['uptime_30d']:.2f} %"
        assert _text(browser, f'{row} td[data-field="p95_24h"]') == f"{int(expected['p95_ms'])} ms"
    total, unhealthy, open_incidents = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'unhealthy'),"
        " (SELECT count(*) FROM green_api_incidents WHERE resolved_at IS NULL) FROM green_api_health_logs"
    ).fetchone()
    assert _text(browser, "#checks-total") == f"{total:,} check(s)"
    assert _text(browser, "#tile-open-incidents b") == str(open_incidents)
    stats = db.execute("SELECT total_checks FROM green_api_stats_7d").fetchone()
    assert _text(browser, "#tile-checks-7d b") == f"{stats[0]:,}"
    # Both charts loaded as pictures, with as many failing-check bars as the 24 h series has.
    failing_buckets = db.execute(
        "SELECT count(DISTINCT date_bin('5 minutes', checked_at, TIMESTAMPTZ '2000-01-01'))"
        " FROM green_api_health_logs WHERE checked_at >= now() - interval '24 hours'"
        " AND status NOT IN ('healthy', 'rebooted') AND NOT in_maintenance_window"
    ).fetchone()[0]
    bars = _wait(lambda: browser.execute_script(
        "const d = document.getElementById('chart-24h').contentDocument;"
        "return d && d.querySelector('svg') ? d.querySelectorAll('rect.fail').length : null;") is not None
        and browser.execute_script(
        "return document.getElementById('chart-24h').contentDocument.querySelectorAll('rect.fail').length;"))
    assert bars == failing_buckets
    assert browser.execute_script(
        "return !!document.getElementById('chart-30d').contentDocument.querySelector('svg polyline');")
    assert _chart_title(browser, "24h").startswith("Last 24 hours, 5 min buckets, times in ")
    assert _chart_title(browser, "30d").startswith("Last 3 days (all the data so far; the full window is 30 days)")
    assert len(browser.find_elements(By.CSS_SELECTOR, "details.check")) == 50
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "dashboard.png"))

    # Filter by status, as support would, then open one check.
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("unhealthy")
    browser.find_element(By.ID, "apply-filters").click()
    _wait(lambda: _text(browser, "#checks-total") == f"{unhealthy:,} check(s)")
    statuses = {e.get_attribute("data-status") for e in browser.find_elements(By.CSS_SELECTOR, "details.check")}
    assert statuses == {"unhealthy"}
    first = browser.find_element(By.CSS_SELECTOR, "details.check")
    first.find_element(By.TAG_NAME, "summary").click()
    error = db.execute("SELECT error_message FROM green_api_health_logs WHERE id = %s",
                       (int(first.get_attribute("data-id")),)).fetchone()[0]
    assert f"Error: {error}" in first.text
    browser.save_screenshot(str(SHOTS / "dashboard-unhealthy.png"))
    assert (SHOTS / "dashboard.png").stat().st_size > 10_000


def test_support_finds_instances_among_a_thousand(api_server, browser, db):
    """1,000 instances: the page shows counts by status and host, and one page of 50; support
    narrows it by host, by search and by status, and pages on."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.dashboard.test_fleet import log_fleet

    for k in range(12):  # an hour of checks, every 5 minutes
        log_fleet(db, 1000, minutes_ago=5 * k + 1)

    def db_count(where: str = "true", *params: Any) -> int:
        return int(db.execute(f"SELECT count(*) FROM green_api_instance_latest WHERE {where}", params).fetchone()[0])  # noqa: S608

    def shown() -> str:
        return _text(browser, "#fleet-shown")

    browser.get(dashboard_link(api_server))
    _log_in(browser)
    _wait(lambda: _text(browser, "h1") == "Green API health")
    assert _text(browser, "#tile-up-now").startswith(
        f"{db_count('status IN (%s, %s)', 'healthy', 'rebooted'):,} / {db_count() + 1:,}")  # + the default, never checked
    assert shown() == "instances 1–50 of 1,000"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#instances tbody tr[data-instance]")) == 50
    weight = browser.execute_script("return document.documentElement.outerHTML.length;")
    assert weight < 500_000, weight
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "dashboard-fleet-1000.png"))

    # One API host: its instances only.
    browser.find_element(By.CSS_SELECTOR, '#host-counts a[data-host="7101.api.greenapi.com"]').click()
    on_host = db_count("api_host = %s", "7101.api.greenapi.com")
    _wait(lambda: shown() == f"instances 1–50 of {on_host:,}")
    cells = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#instances tbody tr[data-instance] td:first-child")]
    assert cells and all("7101.api.greenapi.com" in c for c in cells)

    # A search by name, then the critical ones among them.
    box = browser.find_element(By.ID, "fleet-search")
    box.clear()
    box.send_keys("shop 7")
    Select(browser.find_element(By.ID, "fleet-host")).select_by_value("")
    browser.find_element(By.ID, "apply-fleet-filters").click()
    named = db_count("instance_name ILIKE %s", "%shop 7%")
    _wait(lambda: shown() == f"instances 1–50 of {named:,}")
    Select(browser.find_element(By.ID, "fleet-status")).select_by_value("critical_failure")
    browser.find_element(By.ID, "apply-fleet-filters").click()
    critical = db_count("instance_name ILIKE %s AND status = 'critical_failure'", "%shop 7%")
    _wait(lambda: shown() == f"instances 1–{critical} of {critical}")
    statuses = {e.text for e in browser.find_elements(By.CSS_SELECTOR, 'td[data-field="status"]')}
    assert statuses == {"critical_failure"}

    # Back to all, and to the next page.
    browser.find_element(By.LINK_TEXT, "clear").click()
    _wait(lambda: shown() == "instances 1–50 of 1,000")
    browser.find_element(By.LINK_TEXT, "next ›").click()
    _wait(lambda: shown() == "instances 51–100 of 1,000")
    assert "page 2 of 20" in _text(browser, "#fleet-pager")


# Where the page puts things in the window: the charts (both, side by side), the elements that must
# keep to one line and have more (their text's boxes spread over more than a line's height), how far
# the page and the instance list reach past the window's width, the 24 h chart's text boxes that
# cross a mark (an alert's triangle, a reboot's line), and the charts' texts cut at their edges.
LAYOUT = """
const oneLine = el => {
  const range = document.createRange(); range.selectNodeContents(el);
  const boxes = Array.from(range.getClientRects()).filter(b => b.width > 0);
  const style = getComputedStyle(el), line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
  return !boxes.length || Math.max(...boxes.map(b => b.bottom)) - Math.min(...boxes.map(b => b.top)) < 1.5 * line;
};
const charts = ['chart-24h', 'chart-30d'].map(id => document.getElementById(id).getBoundingClientRect());
const root = document.documentElement;
const svg = document.getElementById('chart-24h').contentDocument;
const boxes = css => Array.from(svg.querySelectorAll(css)).map(e => [e.textContent, e.getBBox()]);
const crosses = (a, b) => a.x <= b.x + b.width && b.x <= a.x + a.width && a.y <= b.y + b.height && b.y <= a.y + a.height;
const marks = boxes('path.alert, line.reboot');
const cut = Array.from(document.querySelectorAll('object.chart')).flatMap(o => {
  const d = o.contentDocument, width = d.documentElement.viewBox.baseVal.width;
  return Array.from(d.querySelectorAll('text')).filter(t => t.getBBox().x < 0 || t.getBBox().x + t.getBBox().width > width)
    .map(t => t.textContent);
});
return {
  fold: innerHeight, width: innerWidth,
  charts_top: Math.min(...charts.map(c => c.top)) + scrollY, charts_bottom: Math.max(...charts.map(c => c.bottom)) + scrollY,
  wrapped: Array.from(document.querySelectorAll(arguments[0])).filter(e => !oneLine(e)).map(e => e.textContent),
  page_overflow: root.scrollWidth - root.clientWidth,
  list_overflow: document.getElementById('instances').getBoundingClientRect().right - root.clientWidth,
  alerts: svg.querySelectorAll('path.alert').length,
  text_on_marks: boxes('text').filter(([, t]) => marks.some(([, m]) => crosses(t, m))).map(([text]) => text),
  text_cut: cut,
};
"""
# What keeps to one line: badges, the summary's figures, percentages and times, column heads.
ONE_LINE = ('.badge, .tile b, th, td[data-field^="uptime"], td[data-field="mean_24h"], td[data-field="p95_24h"],'
            ' td[data-field="last_response"]')


def _layout(driver: Any) -> dict[str, Any]:
    """LAYOUT of the dashboard once its charts are drawn, the page at its top."""
    driver.refresh()
    _wait(lambda: driver.execute_script(
        "return Array.from(document.querySelectorAll('object.chart'))"
        ".every(o => o.contentDocument && o.contentDocument.querySelector('svg'));"))
    return dict(driver.execute_script(LAYOUT, ONE_LINE))


def test_the_summary_and_the_charts_stay_above_the_fold_whatever_the_fleet(api_server, browser, db):
    """In a 1,400 x 900 window, with 32 and then 1,000 instances: the charts are whole in view, at the
    same height; no badge, figure or column head wraps; nothing reaches past the window's width; no
    text of a chart lies on an alert's mark or a reboot's, the last ones included, or is cut."""
    from tests.dashboard.test_fleet import log_fleet

    _generate_history(31, 1)
    # Listed first, a partner account's instance with a long connection id, failing, its incident open.
    db.execute("INSERT INTO green_api_health_logs (checked_at, status, instance_id, connection_id, dag_id, run_id,"
               " api_host, instance_name) VALUES (now(), 'critical_failure', '11000000000', 'green_api_partner/"
               "11000000000', 'green_api_health_check', 'r', '7100.api.greenapi.com', 'Client 000')")
    db.execute("INSERT INTO green_api_incidents (instance_id, kind, severity, opened_at)"
               " VALUES ('11000000000', 'instance_not_authorized', 'critical', now())")
    # A reboot and an alert a minute ago: marks at the right edge, where a legend is drawn.
    log_check(db, "77000000001", 1, "rebooted", reboot=True)
    db.execute("INSERT INTO green_api_alert_deliveries (instance_id, run_id, message_kind, recipient, channel, ok)"
               " VALUES ('77000000001', 'r', 'opening', '33600000001@c.us', 'whatsapp', true)")
    browser.set_window_size(1400, 900)
    frame = browser.execute_script("return [outerWidth - innerWidth, outerHeight - innerHeight];")
    browser.set_window_size(1400 + frame[0], 900 + frame[1])
    browser.get(dashboard_link(api_server))
    _log_in(browser)
    _wait(lambda: _text(browser, "h1") == "Green API health")
    shown = {}
    for fleet in (32, 1000):
        if fleet == 1000:
            log_fleet(db, 1000 - 32)  # 11000000001...
        layout = shown[fleet] = _layout(browser)
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / f"dashboard-fold-{fleet}.png"))
        assert (layout["width"], layout["fold"]) == (1400, 900)
        assert layout["charts_bottom"] <= layout["fold"], (fleet, layout)
        assert layout["wrapped"] == [], (fleet, layout)
        assert (layout["page_overflow"], max(0, layout["list_overflow"])) == (0, 0), (fleet, layout)
        assert layout["alerts"] and (layout["text_on_marks"], layout["text_cut"]) == ([], []), (fleet, layout)
    assert shown[32]["charts_top"] == shown[1000]["charts_top"]

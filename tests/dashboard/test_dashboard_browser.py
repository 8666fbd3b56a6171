"""A real browser on a real API server: log into Airflow, open "Green API" from the navigation,
compare what the page shows with the database, filter by status, save screenshots.

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

import pytest

from tests.airflow_services import api_server as serve_api

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


def test_support_logs_in_opens_the_dashboard_and_filters(api_server, browser, db):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    history = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_history.py"), "--db-url", os.environ["GREEN_API_DB_URL"],
         "--instances", "4", "--days", "3"], capture_output=True, text=True, check=True,
    )
    assert "checks: 3,460" in history.stdout  # 4 instances x (3 days x 288 + 1)

    browser.get(api_server + "/")
    _wait(lambda: browser.find_element(By.NAME, "username")).send_keys(USER)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    nav = _wait(lambda: browser.find_element(By.CSS_SELECTOR, 'a[aria-label="Green API"]'))
    nav.click()
    frame = _wait(lambda: browser.find_element(By.CSS_SELECTOR, 'iframe[title="Green API"]'))
    assert browser.current_url == api_server + "/plugin/green-api"
    browser.switch_to.frame(frame)
    _wait(lambda: _text(browser, "h1") == "Green API health")

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
    assert len(browser.find_elements(By.CSS_SELECTOR, "details.check")) == 50
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.switch_to.default_content()
    browser.save_screenshot(str(SHOTS / "dashboard.png"))

    # Filter by status, as support would, then open one check.
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, 'iframe[title="Green API"]'))
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
    browser.switch_to.default_content()
    browser.save_screenshot(str(SHOTS / "dashboard-unhealthy.png"))
    assert (SHOTS / "dashboard.png").stat().st_size > 10_000

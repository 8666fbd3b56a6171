#!/usr/bin/env python3
"""`make screenshots`: the images of README.md and docs/, taken from the demo in headless Chromium.

Starts the demo as `make run` does (scripts/run.sh without credentials), beside any running
`make run`: its own ports, Airflow home (.artifacts/screenshots-airflow) and databases
(green_api_airflow_shots, green_api_shots, dropped before and after). Waits for the demo's first
scheduled health check, logs in as admin and saves PNGs in docs/images/: the dashboard of the demo's
5 instances, then with generated history for more instances (scripts/generate_history.py, ids
77000000001...): a week of 4 more so that its charts have something to show, then 32 and 1,000
instances in all (FLEETS), each in a 1,400 x 900 window: the summary and the charts above the fold.
Then stops the demo with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
HOME = ROOT / ".artifacts" / "screenshots-airflow"
LOG = ROOT / ".artifacts" / "screenshots.log"
METADATA_DB, HEALTH_DB = "green_api_airflow_shots", "green_api_shots"
HEALTH_DAG = "green_api_health_check"
WIDTH = 1280
# The dashboard's pictures: a laptop's window, where the page keeps its summary and charts in view.
DASHBOARD_WIDTH, FOLD = 1400, 900
# The instances scripts/run.sh's demo monitors: 1101000001, 1101000002 and its partner account's
# 1101100001 to 1101100003. docs/dashboard.md shows the dashboard at this size.
DEMO_INSTANCES = 5
# Instances in all (the demo's and generated ones) and days of generated history of each picture:
# one day at 1,000 (two days took 2.5 minutes to make beside the demo, a week would take several more).
FLEETS = {32: 7, 1000: 1}
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, seconds: float, probe: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = probe()
        except Exception:  # noqa: BLE001 - not there yet (page loading, table not migrated): look again
            found = None
        if found:
            return found
        time.sleep(1)
    raise SystemExit(f"screenshots: timed out waiting for {what} (log: {LOG})")


def server_url() -> str:
    """The PostgreSQL server `make` uses (scripts/ensure_postgres.py), as a URL without a database."""
    out = subprocess.run([sys.executable, "scripts/ensure_postgres.py", "--ignore-configured", "--databases", "postgres"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout  # fmt: skip
    for line in out.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name == "GREEN_API_PG_URL_POSTGRES":
            return shlex.split(value)[0].rsplit("/", 1)[0]
    raise SystemExit("screenshots: scripts/ensure_postgres.py gave no server")


def drop_databases(server: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        for name in (METADATA_DB, HEALTH_DB):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_demo(ui_port: int, sim_port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "GREEN_API_")) or k == "GREEN_API_PG_PORT"}  # fmt: skip
    env |= {
        "UI_PORT": str(ui_port),
        "SIM_PORT": str(sim_port),
        "GREEN_API_ENV_FILE": str(ROOT / ".artifacts" / "no-such-env-file"),  # never the user's .env
        "GREEN_API_AIRFLOW_HOME": str(HOME),
        "GREEN_API_AIRFLOW_DB": METADATA_DB,
        "GREEN_API_DEMO_DB": HEALTH_DB,
    }
    with LOG.open("wb") as out:
        return subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def stop_demo(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a user stops `make run`
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def first_check_done(proc: subprocess.Popen[bytes], metadata_url: str) -> str | None:
    if proc.poll() is not None:
        raise SystemExit("screenshots: the demo stopped:\n" + LOG.read_text(errors="replace")[-4000:])
    with psycopg.connect(metadata_url) as conn:
        row = conn.execute("SELECT state FROM dag_run WHERE dag_id = %s AND state IN ('success', 'failed')"
                           " LIMIT 1", (HEALTH_DAG,)).fetchone()  # fmt: skip
    return None if row is None else str(row[0])


def browser(profile: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        raise SystemExit("screenshots: chromium and chromedriver are missing (make browser installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--hide-scrollbars",
                f"--user-data-dir={profile}", f"--window-size={WIDTH},900"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def page_has(driver: Any, *texts: str) -> bool:
    body = str(driver.execute_script("return document.body ? document.body.innerText : ''"))
    return all(t in body for t in texts)


def shoot(driver: Any, name: str, height: int, width: int = WIDTH) -> Path:
    """Saves the page's top ``height`` CSS pixels (the viewport) as docs/images/``name``."""
    driver.set_window_size(width, height)
    chrome = int(driver.execute_script("return window.outerHeight - window.innerHeight;"))
    driver.set_window_size(width, height + chrome)
    time.sleep(1.5)  # the resize re-lays out the page
    path = IMAGES / name
    driver.save_screenshot(str(path))
    return path


def log_in(driver: Any, ui: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{ui}/auth/login")
    wait_for("the login page", 60, lambda: driver.find_element(By.NAME, "username")).send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for("the Airflow UI after login", 60, lambda: "/auth/login" not in driver.current_url
             and page_has(driver, "Dags"))  # fmt: skip


def airflow_page(driver: Any, url: str, *texts: str) -> None:
    driver.get(url)
    wait_for(f"{url} to show {texts}", 90, lambda: page_has(driver, *texts))
    time.sleep(2)  # the last requests of the page (charts, counts) land


def dashboard(driver: Any, ui: str) -> int:
    """Opens the dashboard; returns where its list of checks starts (above: tiles, charts, schedule, instances)."""
    driver.get(f"{ui}/green-api/")
    wait_for("the dashboard", 60, lambda: page_has(driver, "Green API health"))
    wait_for("the charts", 60, lambda: driver.execute_script(
        "return Array.from(document.querySelectorAll('object.chart'))"
        ".every(o => o.contentDocument && o.contentDocument.querySelector('svg'));"))
    time.sleep(1)
    return int(driver.execute_script(
        "return document.getElementById('checks').getBoundingClientRect().top + window.scrollY;"))


def instances_checked(url: str) -> int:
    """How many instances the health database has a check of."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM green_api_instance_latest").fetchone()
    return 0 if row is None else int(row[0])


def generate_history(url: str, instances: int, days: int) -> None:
    """Checks every 5 minutes for ``days`` for ``instances`` generated instances (the earlier ones replaced)."""
    generated = subprocess.run([sys.executable, "scripts/generate_history.py", "--db-url", url, "--instances",
                                str(instances), "--days", str(days)], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
    print(f"screenshots: generated history for {instances} instances over {days} day(s) ({generated})")


def emoji_font() -> bool:
    """The alerts start with emoji; without a font for them Chromium draws empty boxes."""
    fonts = subprocess.run(["fc-list", ":charset=1f6a8", "family"], capture_output=True, text=True, check=False)
    return bool(fonts.stdout.strip())


def alert_page(message: dict[str, Any]) -> str:
    """One alert as WhatsApp shows it: *bold*, line breaks; no image or font from the internet."""
    text = html.escape(str(message.get("message", "")))
    text = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", text).replace("\n", "<br>")
    to = html.escape(str(message.get("chatId", "")))
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #efeae2; font: 15px/1.45 system-ui, sans-serif; color: #111b21; }}
.head {{ background: #008069; color: #fff; padding: 14px 20px; font-weight: 600; }}
.bubble {{ background: #fff; margin: 20px; padding: 10px 14px; border-radius: 8px; max-width: 560px;
  box-shadow: 0 1px 1px rgba(0,0,0,.13); }}
.note {{ color: #667781; font-size: 12px; margin: 0 20px; }}
</style></head><body><div class="head">To {to}</div><div class="bubble">{text}</div>
<div class="note">A demo alert as the Green API simulator received it (GET /_sim/messages).</div></body></html>"""


def main() -> int:
    began = time.monotonic()
    IMAGES.mkdir(parents=True, exist_ok=True)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    server = server_url()
    drop_databases(server)
    shutil.rmtree(HOME, ignore_errors=True)  # a fresh admin password and no old logs
    ui_port, sim_port = free_port(), free_port()
    ui, sim = f"http://127.0.0.1:{ui_port}", f"http://127.0.0.1:{sim_port}"
    print(f"screenshots: starting the demo (UI {ui}, simulator {sim}, log {LOG.relative_to(ROOT)})")
    proc = start_demo(ui_port, sim_port)
    written: list[Path] = []
    profile = tempfile.mkdtemp(prefix="chromium-")
    driver = None
    try:
        state = wait_for("the first scheduled health check", 420,
                         lambda: first_check_done(proc, f"{server}/{METADATA_DB}"))  # fmt: skip
        print(f"screenshots: the first health check finished ({state})")
        demo = wait_for("the demo's instances checked", 120, lambda: instances_checked(f"{server}/{HEALTH_DB}"))
        if demo != DEMO_INSTANCES:
            raise SystemExit(f"screenshots: the demo monitors {demo} instances, not {DEMO_INSTANCES}: update"
                             " DEMO_INSTANCES and the picture's name in docs/dashboard.md")
        messages = wait_for("a demo alert at the simulator", 120, lambda: json.load(
            urllib.request.urlopen(f"{sim}/_sim/messages", timeout=5)))  # fmt: skip
        password = json.loads((HOME / "simple_auth_manager_passwords.json.generated").read_text())["admin"]

        from selenium.webdriver.common.by import By

        driver = browser(profile)
        log_in(driver, ui, password)
        dashboard(driver, ui)
        written.append(shoot(driver, f"dashboard-{DEMO_INSTANCES}.png", FOLD, DASHBOARD_WIDTH))
        generate_history(f"{server}/{HEALTH_DB}", 4, 7)
        top = dashboard(driver, ui)
        written.append(shoot(driver, "dashboard.png", min(top - 4, 1900), DASHBOARD_WIDTH))
        # A failing check of the demo, opened: its error, incident and the alert it sent.
        driver.execute_script("""
            document.getElementById('checks').scrollIntoView();
            const failing = Array.from(document.querySelectorAll('details.check[data-status=unhealthy]'))
                .find(d => d.innerText.includes('1101000002'));
            if (failing) failing.open = true;""")
        written.append(shoot(driver, "dashboard-checks.png", 700, DASHBOARD_WIDTH))
        for fleet, days in FLEETS.items():  # the generated instances replace those generated before
            generate_history(f"{server}/{HEALTH_DB}", fleet - DEMO_INSTANCES, days)
            dashboard(driver, ui)
            written.append(shoot(driver, f"dashboard-{fleet}.png", FOLD, DASHBOARD_WIDTH))
        airflow_page(driver, f"{ui}/dags", "green_api_health_check", "green_api_maintenance")
        written.append(shoot(driver, "airflow-dags.png", 860))
        driver.execute_script("localStorage.setItem('default_dag_view', JSON.stringify('grid'))")
        airflow_page(driver, f"{ui}/dags/{HEALTH_DAG}", "plan_checks", "report")
        written.append(shoot(driver, "health-check-grid.png", 760))
        driver.execute_script("localStorage.setItem('default_dag_view', JSON.stringify('graph'))")
        airflow_page(driver, f"{ui}/dags/{HEALTH_DAG}", "plan_checks", "report")
        # The whole width for the graph: the details panel folded, the graph fitted again.
        driver.find_element(By.CSS_SELECTOR, "button[aria-label='Collapse Details Panel']").click()
        shoot(driver, "health-check-graph.png", 620)
        driver.find_element(By.CSS_SELECTOR, "button[aria-label='Fit View']").click()
        written.append(shoot(driver, "health-check-graph.png", 620))
        airflow_page(driver, f"{ui}/connections", "green_api_default", "green_api_alerts")
        written.append(shoot(driver, "connections.png", 500))

        if emoji_font():
            with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8") as page:
                page.write(alert_page(messages[0]))
            driver.set_window_size(640, 900)
            driver.get(Path(page.name).as_uri())
            height = int(driver.execute_script("return document.body.scrollHeight;"))
            written.append(shoot(driver, "alert.png", height + 10, 640))
            Path(page.name).unlink()
        else:
            print("screenshots: no emoji font (Debian: fonts-noto-color-emoji): docs/images/alert.png left as it is")
    except BaseException:
        if driver is not None:  # what the browser showed, to see why
            driver.save_screenshot(str(ROOT / ".artifacts" / "screenshots-failure.png"))
            print(f"screenshots: failed at {driver.current_url}, see .artifacts/screenshots-failure.png")
        raise
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        stop_demo(proc)
        drop_databases(server)
    for path in written:
        print(f"screenshots: wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")
    print(f"screenshots: done in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

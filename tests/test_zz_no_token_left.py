"""After the whole suite (``make test`` runs this file alone, ``--token-scan``, once every test
process is done): the Green API token is nowhere.

Scans what every test printed and made the simulator deliver (noted by each test process as the
suite ran, in ``.artifacts/token-leaks``), every file the suite and Airflow wrote (task logs of the
real scheduler runs, the api-server's logs, the tests' temporary folders, artifacts), and every row
of every database the suite used, in every test process: Airflow's metadata databases (XComs,
rendered template fields, task instances, the audit log...) and the health databases. A token
belongs only in the connection store (environment variables here) and in the requests themselves.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
from psycopg import sql

from tests.conftest import LEAKS, TOKEN_PATTERN, require_env

REPO = Path(__file__).resolve().parents[1]
# The suite's databases: the test metadata and health databases, and those of the real-service tests.
DATABASES = ("green_api_airflow_test", "green_api_test", "airflow_sched_test", "airflow_restart_test",
             "airflow_scale_test", "green_api_airflow_smoke", "green_api_smoke", "airflow_init_test",
             "green_api_init_test", "green_api_demo_test", "green_api_airflow_demo_test", "green_api_rerun",
             "green_api_airflow_rerun", "green_api_killed", "green_api_airflow_killed", "green_api_reclear",
             "green_api_airflow_reclear")


def files_with_a_token(root: Path) -> tuple[list[str], int]:
    found, scanned = [], 0
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 50_000_000:
            continue
        scanned += 1
        if TOKEN_PATTERN.search(path.read_bytes().decode("utf-8", errors="replace")):
            found.append(str(path))
    return found, scanned


def rows_with_a_token(url: str) -> tuple[list[str], int]:
    found, scanned = [], 0
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            query = sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
            for (text,) in conn.execute(query):
                scanned += 1
                if TOKEN_PATTERN.search(text):
                    found.append(f"{table}: {TOKEN_PATTERN.sub('TOKEN-SECRET-…', text)[:200]}")
    return found, scanned


def test_the_scan_finds_a_planted_token(tmp_path):
    (tmp_path / "planted.log").write_text("GET /waInstance1/getStateInstance/TOKEN-SECRET-0123456789abcdef\n")
    assert files_with_a_token(tmp_path) == ([str(tmp_path / "planted.log")], 1)
    (tmp_path / "planted.log").unlink()


def suite_databases(existing: set[str]) -> list[str]:
    """The suite's databases among ``existing``: each name of DATABASES, as every test process of
    this checkout named it (suffixed with GREEN_API_DB_TAG and the process: ``_gw0``, ``_main``...)."""
    tag = os.environ.get("GREEN_API_DB_TAG", "")
    suffix = rf"(_{re.escape(tag)})?" if tag else ""
    pattern = re.compile(rf"({'|'.join(map(re.escape, DATABASES))}){suffix}(_(gw\d+|main))?(_at\d{{4}}(_main)?)?")
    return sorted(name for name in existing if pattern.fullmatch(name))


def test_the_suite_databases_are_found_for_every_test_process():
    names = {"green_api_test", "green_api_test_gw3", "green_api_airflow_smoke_gw0", "green_api_test_main",
             "green_api_test_gw1_at0030_main", "green_api", "green_api_demo", "someone_elses_db"}
    assert suite_databases(names) == ["green_api_airflow_smoke_gw0", "green_api_test", "green_api_test_gw1_at0030_main",
                                      "green_api_test_gw3", "green_api_test_main"]  # fmt: skip


def test_no_token_anywhere_after_the_whole_suite():
    leaks = [line for f in sorted(LEAKS.glob("*.txt")) for line in f.read_text().splitlines()]
    files = rows = 0
    roots = [Path(require_env("AIRFLOW_HOME")), REPO / ".artifacts"]
    for root in roots:
        if root.exists():
            found, scanned = files_with_a_token(root)
            leaks += found
            files += scanned
    server = require_env("GREEN_API_AIRFLOW_DB_URL").rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres") as conn:
        existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    for name in suite_databases(existing):
        found, scanned = rows_with_a_token(f"{server}/{name}")
        leaks += found
        rows += scanned
    assert leaks == [], "the token was found in:\n" + "\n".join(leaks)
    assert files > 0 and rows > 0  # the scan did read something
    print(f"scanned {files} files and {rows} rows: no token")

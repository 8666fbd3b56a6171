"""After the whole suite (this file is collected last): the Green API token is nowhere.

Scans what every test printed and made the simulator deliver (collected as the suite ran), every
file the suite and Airflow wrote (task logs of the real scheduler runs, the api-server's logs,
artifacts), and every row of every database the suite used: Airflow's metadata databases (XComs,
rendered template fields, task instances, the audit log...) and the health databases. A token
belongs only in the connection store (environment variables here) and in the requests themselves.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

from tests.conftest import TOKEN_PATTERN, TOKENS_SEEN, require_env, tagged

REPO = Path(__file__).resolve().parents[1]
# The suite's databases: the test metadata and health databases, and those of the real-service tests.
DATABASES = ("green_api_airflow_test", "green_api_test", "airflow_sched_test", "airflow_restart_test",
             "airflow_scale_test", "green_api_airflow_smoke", "green_api_smoke", "airflow_init_test",
             "green_api_init_test", "green_api_demo_test", "green_api_airflow_demo_test")


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


def test_no_token_anywhere_after_the_whole_suite(tmp_path_factory):
    leaks = list(TOKENS_SEEN)
    files = rows = 0
    roots = [tmp_path_factory.getbasetemp(), Path(require_env("AIRFLOW_HOME")), REPO / ".artifacts"]
    for root in roots:
        if root.exists():
            found, scanned = files_with_a_token(root)
            leaks += found
            files += scanned
    server = require_env("GREEN_API_AIRFLOW_DB_URL").rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres") as conn:
        existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    for name in map(tagged, DATABASES):
        if name in existing:
            found, scanned = rows_with_a_token(f"{server}/{name}")
            leaks += found
            rows += scanned
    assert leaks == [], "the token was found in:\n" + "\n".join(leaks)
    assert files > 0 and rows > 0  # the scan did read something
    print(f"scanned {files} files and {rows} rows: no token")

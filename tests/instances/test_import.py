"""A file of 100 instances imported into Airflow's real metadata database (PostgreSQL), as
`make run` and the compose init do (``python -m greenapi.instances add --metadata-db``), in this
test process: the connections and the list are written once, a second import changes no row, a
bad row is refused by line and column with nothing written, and no token is printed or logged.
Then the demo's list, written again at each start (scripts/import_env.py), merged, not replaced."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from greenapi.domain.config import instance_config
from greenapi.hooks.green_api import GreenApiHook
from greenapi.instances.__main__ import main
from tests.conftest import require_env
from tests.instances.conftest import csv_of, new_token

ROOT = Path(__file__).resolve().parents[2]
IDS = [f"11020{n:05d}" for n in range(1, 101)]
URL = "https://7105.api.greenapi.com"
BEFORE = ["green_api_mine", {"partner": "green_api_partner", "type": "whatsapp"}]  # what the list had


@pytest.fixture
def metadata_db() -> Iterator[str]:
    """This test process's metadata database without Variable green_api_instances; after the test,
    the Variable as it was and the test's connections gone."""
    url = require_env("GREEN_API_AIRFLOW_DB_URL")
    with psycopg.connect(url, autocommit=True) as conn:
        saved = conn.execute("SELECT key, val, is_encrypted, description FROM variable WHERE key = 'green_api_instances'"
                             ).fetchall()  # fmt: skip
        conn.execute("DELETE FROM variable WHERE key = 'green_api_instances'")
    try:
        yield url
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM connection WHERE conn_id LIKE 'green_api_11020%'")
            conn.execute("DELETE FROM variable WHERE key = 'green_api_instances'")
            for row in saved:
                conn.execute("INSERT INTO variable (key, val, is_encrypted, description) VALUES (%s, %s, %s, %s)", row)


def rows(url: str) -> list[tuple[Any, ...]]:
    """The rows as stored (encrypted): equal before and after means nothing was written."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, conn_id, conn_type, host, login, password, description, extra FROM connection"
                            " WHERE conn_id LIKE 'green_api_11020%' ORDER BY conn_id").fetchall() + conn.execute(
            "SELECT id, key, val FROM variable WHERE key = 'green_api_instances'").fetchall()  # fmt: skip


def stored() -> tuple[dict[str, Any], Any]:
    """The test's connections and the Variable, decrypted through Airflow."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conns = {c.conn_id: (c.conn_type, c.host, c.login, c.password, c.description, c.extra_dejson)
                 for c in session.scalars(select(Connection).where(Connection.conn_id.like("green_api_11020%")))}  # fmt: skip
        variable = session.scalar(select(Variable).where(Variable.key == "green_api_instances"))
        return conns, json.loads(variable.val) if variable else None


def set_variable(value: list[Any]) -> None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        Variable.set("green_api_instances", json.dumps(value), session=session)


def test_a_file_of_100_instances_is_imported_once_and_a_bad_row_writes_nothing(metadata_db, secret_dir, capfd, caplog):
    set_variable(BEFORE)
    tokens = [new_token() for _ in IDS]
    settings = {"incomingWebhook": "yes", "outgoingWebhook": "no"}
    path = secret_dir / "instances.csv"
    path.write_text(csv_of([(i, t, URL, f"Shop {n}", settings if n % 2 else None)
                            for n, (i, t) in enumerate(zip(IDS, tokens, strict=True), 1)]))  # fmt: skip

    assert main(["add", str(path), "--metadata-db"]) == 0
    first = capfd.readouterr()
    assert first.out.splitlines() == [f"{path}: 100 instance(s): 100 added",
                                      "Variable green_api_instances: 100 connection id(s) added (102 entries)"]  # fmt: skip
    conns, variable = stored()
    assert variable == BEFORE + [f"green_api_{i}" for i in IDS]  # every entry kept, in its order
    assert len(conns) == 100
    conn_type, host, login, password, name, extra = conns["green_api_1102000001"]
    assert (conn_type, host, login, password, name) == (GreenApiHook.conn_type, URL, "1102000001", tokens[0], "Shop 1")
    assert extra["expected_settings"] == settings and "expected_settings" not in conns["green_api_1102000002"][5]
    assert all(conns[f"green_api_{i}"][3] == t for i, t in zip(IDS, tokens, strict=True))
    # Each one reads as the file had it, checked as the hook checks its connection.
    _, host, login, password, name, extra = conns["green_api_1102000099"]
    cfg = instance_config("green_api_1102000099", host, login, password, extra, name)
    assert (cfg.name, cfg.instance_id, dict(cfg.expected_settings)) == ("Shop 99", "1102000099", settings)
    written = rows(metadata_db)
    assert all(t not in str(written) for t in tokens)  # encrypted with Airflow's Fernet key

    # Again: nothing changes, not a row.
    assert main(["add", str(path), "--metadata-db"]) == 0
    second = capfd.readouterr()
    assert second.out.splitlines() == [f"{path}: 100 instance(s): 100 unchanged",
                                       "Variable green_api_instances: unchanged (102 entries)"]  # fmt: skip
    assert rows(metadata_db) == written

    # A bad row (line 58), after a row whose token changed: refused by line and column, nothing written.
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(tokens[2], new_token())
    lines[57] = lines[57].replace(URL, "ftp://x")
    path.write_text("\n".join(lines) + "\n")
    assert main(["add", str(path), "--metadata-db"]) == 1
    third = capfd.readouterr()
    assert third.out == ""
    assert third.err == (f"greenapi.instances: {path} line 58, column api_url: must be the instance's apiUrl such as "
                         "'https://7105.api.greenapi.com', got 'ftp://x'\n")  # fmt: skip
    assert rows(metadata_db) == written

    printed = first.out + first.err + second.out + second.err + third.out + third.err + caplog.text
    assert not [t for t in tokens if t in printed]


def load_import_env() -> Any:
    spec = importlib.util.spec_from_file_location("import_env", ROOT / "scripts" / "import_env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demos_list_written_at_each_start_keeps_the_instances_added_since(metadata_db, capfd):
    """make run's demo (and a partner account in .env) gives AIRFLOW_VAR_GREEN_API_INSTANCES at
    each start: the instances added since (here one, by an import) are not lost to it."""
    demo = ["green_api_default", "green_api_flaky", {"partner": "green_api_partner"}]
    import_environment = load_import_env().import_environment
    environ = {"AIRFLOW_VAR_GREEN_API_INSTANCES": json.dumps(demo)}
    import_environment(environ)  # the first start
    assert stored()[1] == demo
    set_variable([*demo, "green_api_1102000001"])  # an instance added since
    import_environment(environ)  # the next start
    assert stored()[1] == [*demo, "green_api_1102000001"]
    set_variable(["green_api_1102000001"])  # the demo's entries taken out in the UI come back, after
    import_environment(environ)
    assert stored()[1] == ["green_api_1102000001", *demo]
    said = capfd.readouterr().err
    assert "Variable green_api_instances is in Admin > Variables (3 entries added, 0 kept)" in said
    assert "(0 entries added, 4 kept)" in said and "(3 entries added, 1 kept)" in said

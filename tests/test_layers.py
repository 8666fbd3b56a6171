"""The package's layers point one way (see docs/architecture.md): read from the source's imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "greenapi"

# What an Airflow user installs: the provider. The rest (the DAGs' glue in tasks/, the health
# database's store, the dashboard, the plugin, the timetable, the jobs) is this project's.
PROVIDER = ("domain", "hooks", "operators", "sensors", "triggers", "notifications", "masking", "provider", "__init__")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)  # and each name, which may be a module (from greenapi.tasks import common)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def modules(*layers: str) -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if layer_of(p) in layers)


def test_domain_is_pure():
    outside = {"airflow", "requests", "httpx", "psycopg", "sqlalchemy", "fastapi"}
    for path in modules("domain"):
        bad = {m for m in imports_of(path) if m.split(".")[0] in outside}
        bad |= {m for m in imports_of(path) if m.startswith("greenapi.") and not m.startswith("greenapi.domain")}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_provider_stands_on_its_own():
    """No module of the provider imports the project's: not the dashboard (the hook and the
    operator are given the link to put in alerts), not the health database's store (the notifier
    is given its recipients, or a route that finds them), not the DAGs' glue."""
    for path in modules(*PROVIDER):
        mine = {m for m in imports_of(path) if m.startswith("greenapi.")}
        outside = {m for m in mine if m.split(".")[1] not in PROVIDER and not m.split(".")[1].startswith("__")}
        assert not outside, f"{path.relative_to(PACKAGE)} imports {sorted(outside)}"
    assert modules("hooks") and modules("notifications")  # the rule reads real files


def test_the_provider_uses_no_postgres():
    for path in modules(*PROVIDER):
        found = {m for m in imports_of(path) if m.split(".")[0] in ("psycopg", "psycopg2")
                 or m.startswith("airflow.providers.postgres")}  # fmt: skip
        assert not found, f"{path.relative_to(PACKAGE)} imports {sorted(found)}"


def _waits(path: Path) -> list[str]:
    """The loops of a module that look at an instance's state again and again."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.While):
            calls = {n.func.attr for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
            if "get_state_instance" in calls:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_the_wait_until_a_state_is_written_once():
    """The trigger's loop; the reboot operator runs the trigger when it is not deferred, and the
    sensor's pokes are one look each (Airflow's sensor loop repeats them)."""
    waits = [w for path in modules(*PROVIDER, "tasks") for w in _waits(path)]
    assert len(waits) == 1 and waits[0].startswith("triggers/green_api.py"), waits


def test_the_provider_never_imports_the_dags_glue():
    """hooks, triggers, sensors, operators and notifications are what users build on: none of
    them reaches up into tasks/ (the glue of this project's own DAGs)."""
    for path in modules("hooks", "triggers", "sensors", "operators", "notifications", "store"):
        up = {m for m in imports_of(path) if m.startswith("greenapi.tasks")}
        assert not up, f"{layer_of(path)}/{path.name} imports {sorted(up)}"


def test_no_import_cycle_between_glue_modules():
    glue = {p.stem: {m.removeprefix("greenapi.tasks.") for m in imports_of(p) if m.startswith("greenapi.tasks.")}
            for p in modules("tasks")}  # fmt: skip
    for name, uses in glue.items():
        for used in uses:
            assert name not in glue.get(used, set()), f"tasks/{name}.py and tasks/{used}.py import each other"

"""The package's layers point one way (see docs/architecture.md): read from the source's imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "greenapi"


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


def modules(layer: str) -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if layer_of(p) == layer)


def test_domain_is_pure():
    outside = {"airflow", "requests", "httpx", "psycopg", "sqlalchemy", "fastapi"}
    for path in modules("domain"):
        bad = {m for m in imports_of(path) if m.split(".")[0] in outside}
        bad |= {m for m in imports_of(path) if m.startswith("greenapi.") and not m.startswith("greenapi.domain")}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_provider_never_imports_the_dags_glue():
    """hooks, triggers, sensors, operators and notifications are what users build on: none of
    them reaches up into tasks/ (the glue of this project's own DAGs)."""
    for layer in ("hooks", "triggers", "sensors", "operators", "notifications", "store"):
        for path in modules(layer):
            up = {m for m in imports_of(path) if m.startswith("greenapi.tasks")}
            assert not up, f"{layer}/{path.name} imports {sorted(up)}"


def test_no_import_cycle_between_glue_modules():
    glue = {p.stem: {m.removeprefix("greenapi.tasks.") for m in imports_of(p) if m.startswith("greenapi.tasks.")}
            for p in modules("tasks")}  # fmt: skip
    for name, uses in glue.items():
        for used in uses:
            assert name not in glue.get(used, set()), f"tasks/{name}.py and tasks/{used}.py import each other"


def test_the_hook_layer_reaches_no_higher_than_the_dashboard_link():
    for path in modules("hooks") + modules("triggers"):
        up = {m for m in imports_of(path) if m.startswith("greenapi.")
              and m.split(".")[1] not in ("domain", "hooks", "triggers")
              and m not in ("greenapi.dashboard", "greenapi.dashboard.dashboard_link")}  # fmt: skip
        assert not up, f"{path.name} imports {sorted(up)}"

"""Every public class, function and method of the package says what it is for, and the provider's
page (docs/provider.md) is checked against the provider's own docstrings: each argument of each
class is documented in both, with nothing in the page that the code does not take."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from greenapi.hooks.green_api import GreenApiAsyncHook, GreenApiHook
from greenapi.notifications.green_api import GreenApiNotifier, NoticeRoute
from greenapi.operators.green_api import (
    GreenApiHealthCheckOperator,
    GreenApiRebootOperator,
    GreenApiSendMessageOperator,
)
from greenapi.sensors.green_api import GreenApiFleetStateSensor, GreenApiStateSensor
from greenapi.triggers.green_api import (
    GreenApiFleetStateTrigger,
    GreenApiStateChangeTrigger,
    GreenApiStateTrigger,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plugins" / "greenapi"
PAGE = (ROOT / "docs" / "provider.md").read_text()
CLASSES = [GreenApiSendMessageOperator, GreenApiRebootOperator, GreenApiHealthCheckOperator, GreenApiStateSensor,
           GreenApiStateTrigger, GreenApiFleetStateSensor, GreenApiFleetStateTrigger, GreenApiStateChangeTrigger,
           GreenApiNotifier, NoticeRoute]  # fmt: skip


def public_definitions(path: Path) -> list[tuple[str, ast.AST]]:
    found: list[tuple[str, ast.AST]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and not child.name.startswith("_"):
                found.append((prefix + child.name, child))
                if isinstance(child, ast.ClassDef):
                    walk(child, f"{prefix}{child.name}.")

    walk(ast.parse(path.read_text()), "")
    return found


def test_every_public_definition_of_the_package_has_a_docstring():
    missing = [f"{path.relative_to(PACKAGE)}: {name}" for path in sorted(PACKAGE.rglob("*.py"))
               for name, node in public_definitions(path) if not ast.get_docstring(node)]  # type: ignore[arg-type]  # fmt: skip
    assert missing == []
    assert len([1 for path in PACKAGE.rglob("*.py") for _ in public_definitions(path)]) > 300  # the walk reads them all


def arguments(cls: type) -> list[str]:
    """What a class takes, besides ``**kwargs`` (a dataclass's fields, else ``__init__``'s)."""
    signature = inspect.signature(cls)
    return [p.name for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]


def params_of(cls: type) -> list[str]:
    return re.findall(r":param (\w+):", inspect.getdoc(cls) or "")


def section(title: str) -> str:
    """The part of docs/provider.md under the heading that names ``title``."""
    match = re.search(rf"^##+ [^\n]*\b{title}\b[^\n]*\n(.*?)(?=^##+ |\Z)", PAGE, re.M | re.S)
    assert match, f"docs/provider.md has no section for {title}"
    return match.group(1)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_argument_is_in_the_docstring_and_on_the_provider_page(cls):
    taken, said = set(arguments(cls)), set(params_of(cls))
    sensors = (GreenApiStateSensor, GreenApiFleetStateSensor)
    inherited = {"poke_interval", "timeout"} if issubclass(cls, sensors) else set()  # a sensor's own
    assert taken <= said <= taken | inherited, f"{cls.__name__}: the docstring's :param lines are not its arguments"
    rows = set(re.findall(r"^\| `(\w+)`", section(cls.__name__), re.M))
    assert taken <= rows, f"{cls.__name__}: docs/provider.md lacks {sorted(taken - rows)}"
    assert rows <= taken | inherited, f"{cls.__name__}: docs/provider.md documents {sorted(rows - taken)}, which it does not take"


@pytest.mark.parametrize("hook", [GreenApiHook, GreenApiAsyncHook], ids=lambda c: c.__name__)
def test_each_call_of_the_hooks_is_on_the_provider_page(hook):
    calls = {name for name, member in vars(hook).items() if callable(member) and not name.startswith("_")}
    listed = set(re.findall(r"[`.](\w+)\(", section("GreenApiHook and GreenApiAsyncHook")))
    assert calls - {"use_connection"} <= listed, f"docs/provider.md lacks {sorted(calls - listed)}"

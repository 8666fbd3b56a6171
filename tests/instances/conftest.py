"""Instances files for the tests: written outside the folders the suite's leak scan reads (they
hold tokens, as a user's instances.csv does), and removed at the end."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HEADER = "id,token,api_url,name,expected_settings"


def new_token() -> str:
    """A token the suite's leak scan looks for (tests.conftest.TOKEN_PATTERN)."""
    return f"TOKEN-SECRET-{os.urandom(8).hex()}"


def csv_of(rows: list[tuple[str, str, str, str, dict[str, Any] | None]]) -> str:
    """An instances.csv: id, token, api_url, name, expected_settings (JSON in a cell)."""
    lines = [HEADER]
    for ident, token, url, name, settings in rows:
        cell = '"' + json.dumps(settings).replace('"', '""') + '"' if settings else ""
        lines.append(f"{ident},{token},{url},{name},{cell}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def secret_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="green-api-instances-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""`make audit` (scripts/audit.py): the local OSV answers from the vendored PyPA snapshot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from audit import SNAPSHOT, affects, pinned  # noqa: E402

PIP_AUDIT = ROOT / ".venv-audit" / "bin" / "pip-audit"


def entry(events, versions=(), withdrawn=None):
    found = {"id": "X", "affected": [{"package": {"name": "Some_Pkg"}, "versions": list(versions),
                                      "ranges": [{"type": "ECOSYSTEM", "events": events}]}]}  # fmt: skip
    if withdrawn:
        found["withdrawn"] = withdrawn
    return found


@pytest.mark.parametrize(
    ("advisory", "version", "hit"),
    [
        (entry([{"introduced": "0"}, {"fixed": "2.0.6"}]), "2.0.0", True),
        (entry([{"introduced": "0"}, {"fixed": "2.0.6"}]), "2.0.6", False),
        (entry([{"introduced": "1.0"}, {"last_affected": "1.4"}]), "1.4", True),
        (entry([{"introduced": "1.0"}, {"last_affected": "1.4"}]), "1.5", False),
        (entry([{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}]), "1.5", False),
        (entry([{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}]), "2.1", True),
        (entry([{"introduced": "0"}, {"last_affected": "3.0.3-NA"}]), "3.3.2", False),
        (entry([], versions=["0.9"]), "0.9", True),
        (entry([{"introduced": "0"}], withdrawn="2023-11-08T00:54:24Z"), "1.0", False),
    ],
)
def test_version_ranges(advisory, version, hit):
    assert affects(advisory, "some-pkg", version) is hit


def test_the_snapshot_covers_the_pinned_packages_and_says_where_it_comes_from():
    snapshot = json.loads(SNAPSHOT.read_text())
    assert snapshot["commit"] and snapshot["date"] and "pypa/advisory-database" in snapshot["source"]
    assert set(snapshot["packages"]) <= set(pinned(ROOT / "requirements.txt"))
    assert "apache-airflow" in snapshot["packages"] and len(snapshot["entries"]) > 100


def test_pip_audit_finds_old_pins_through_the_local_snapshot(tmp_path):
    if not PIP_AUDIT.exists():
        raise RuntimeError("pip-audit is missing: `make audit` (run by `make test`) installs it in .venv-audit")
    old = tmp_path / "old.txt"
    old.write_text("urllib3==2.0.0\njinja2==3.1.2\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "audit.py"), "--offline", "--pip-audit",
                           str(PIP_AUDIT), "--requirements", str(old)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "urllib3" in done.stdout and "jinja2" in done.stdout
    assert "PYSEC-2023-192" in done.stdout  # urllib3 2.0.0: cookies kept on cross-origin redirects

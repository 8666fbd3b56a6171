"""`make audit`: pip-audit over the pinned requirements.

pip-audit asks the OSV API (api.osv.dev) which advisories affect each pinned version. Where that
service cannot be reached (this project's CI machine reaches only package registries), the same
pip-audit asks a local endpoint of the same API instead, answering from the snapshot of the PyPA
advisory database kept in security/pypa-advisories.json (`refresh` rebuilds it from a checkout
of that database; its source commit and date are in the file and printed with the report).

    python scripts/audit.py [--offline]            # exit code: pip-audit's (1 when a pin is affected)
    python scripts/audit.py refresh <advisory-database checkout> <commit> <date>
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "security" / "pypa-advisories.json"
REQUIREMENTS = ROOT / "requirements.txt"
ONLINE = ("api.osv.dev", 443)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)", line)
        if match:
            pins[normalize(match[1])] = match[2]
    return pins


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:  # the database has a few like "3.0.3-NA": keep the numeric release
        match = re.match(r"\d+(\.\d+)*", text)
        return Version(match[0]) if match else None


def affects(entry: dict[str, Any], package: str, version: str) -> bool:
    """Whether an OSV entry covers ``package==version`` (explicit versions or ECOSYSTEM ranges)."""
    if entry.get("withdrawn"):  # retracted by the database: affects nothing
        return False
    wanted = _version(version)
    for affected in entry.get("affected", []):
        if normalize(affected.get("package", {}).get("name", "")) != package:
            continue
        if version in affected.get("versions", []):
            return True
        for span in affected.get("ranges", []):
            if span.get("type") != "ECOSYSTEM" or wanted is None:
                continue
            inside = False
            for event in span.get("events", []):
                (kind, value), = event.items()
                bound = Version("0") if value == "0" else _version(str(value))
                if bound is None:
                    continue
                if kind == "introduced" and wanted >= bound:
                    inside = True
                elif kind == "fixed" and wanted >= bound:
                    inside = False
                elif kind == "last_affected" and wanted > bound:
                    inside = False
            if inside:
                return True
    return False


def refresh(checkout: Path, commit: str, date: str) -> None:
    import yaml

    pins = pinned(REQUIREMENTS)
    entries = []
    for folder in sorted((checkout / "vulns").iterdir()):
        if normalize(folder.name) in pins:
            entries += [yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))]
    SNAPSHOT.parent.mkdir(exist_ok=True)
    keep = ("id", "aliases", "summary", "details", "affected", "published", "modified", "withdrawn")
    SNAPSHOT.write_text(json.dumps({
        "source": "https://github.com/pypa/advisory-database (CC-BY-4.0), via the mirror "
                  "github.com/westonsteimel/advisory-database-pypa",
        "commit": commit, "date": date, "packages": sorted({normalize(f.name) for f in (checkout / "vulns").iterdir()
                                                            if normalize(f.name) in pins}),
        "entries": [{k: e[k] for k in keep if k in e} for e in entries],
    }, default=_osv_time, indent=0, sort_keys=True) + "\n")  # fmt: skip
    print(f"{len(entries)} advisories for {len(pins)} pins written to {SNAPSHOT.relative_to(ROOT)}")


def _osv_time(value: Any) -> str:
    """YAML reads the advisories' timestamps as datetimes; OSV (and pip-audit) want RFC 3339 UTC."""
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


class _OsvQuery(BaseHTTPRequestHandler):
    entries: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        query = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        package, version = normalize(query.get("package", {}).get("name", "")), query.get("version", "")
        vulns = [e for e in self.entries if affects(e, package, version)]
        body = json.dumps({"vulns": vulns} if vulns else {}, default=str).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=3).close()
        return True
    except OSError:
        return False


def audit(pip_audit: str, offline: bool, requirements: Path = REQUIREMENTS) -> int:
    command = [pip_audit, "-r", str(requirements), "--no-deps", "--disable-pip", "--strict", "-s", "osv",
               "--progress-spinner", "off"]  # fmt: skip
    if not offline and reachable(ONLINE):
        print("pip-audit against the OSV API (api.osv.dev)", flush=True)
        return subprocess.run(command, check=False).returncode
    snapshot = json.loads(SNAPSHOT.read_text())
    _OsvQuery.entries = snapshot["entries"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OsvQuery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"{'--offline' if offline else 'api.osv.dev unreachable'}: pip-audit against the PyPA advisory "
          f"database of {snapshot['date']} (commit {snapshot['commit'][:12]}, {len(snapshot['entries'])} "
          f"advisories for the pinned packages), served locally", flush=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/query"
        return subprocess.run([*command, "--osv-url", url], check=False).returncode
    finally:
        server.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    again = sub.add_parser("refresh", help="rebuild the snapshot from an advisory-database checkout")
    again.add_argument("checkout", type=Path)
    again.add_argument("commit")
    again.add_argument("date")
    parser.add_argument("--offline", action="store_true", help="use the snapshot even when the API answers")
    parser.add_argument("--pip-audit", default=str(Path(sys.executable).parent / "pip-audit"))
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS, help="the pins to audit")
    args = parser.parse_args()
    if args.command == "refresh":
        refresh(args.checkout, args.commit, args.date)
        return 0
    return audit(args.pip_audit, args.offline, args.requirements)


if __name__ == "__main__":
    sys.exit(main())

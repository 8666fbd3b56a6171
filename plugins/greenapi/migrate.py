"""Applies the numbered SQL migrations of ``sql/`` in order, once each.

Each file runs in its own transaction with its version recorded in ``schema_migrations``;
an advisory lock keeps two concurrent runs (``make run`` and ``make test``) from racing.
Applying twice is a no-op. An applied file whose content changed is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "sql"
_FILE = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6A7E_A1  # any constant shared by every runner


@dataclass(frozen=True)
class Migration:
    """One numbered file of ``sql/``."""
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        """The file's SQL."""
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        """The SHA-256 of the file, recorded when it is applied: an applied file must not change."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    """A migration could not be applied; the message names the file."""


def discover(directory: Path = DEFAULT_DIR) -> list[Migration]:
    """The migrations of ``directory``, in order; a badly named file is refused."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_snake_case.sql")
        found.append(Migration(match.group(1), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number in {directory}")
    return found


def apply(url: str, directory: Path = DEFAULT_DIR) -> list[str]:
    """Apply pending migrations; returns the file names applied now."""
    migrations = discover(directory)
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version TEXT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
        )
        for migration in migrations:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                row = conn.execute(
                    "SELECT checksum FROM schema_migrations WHERE version = %s", (migration.version,)
                ).fetchone()
                if row is not None:
                    if row[0] != migration.checksum:
                        raise MigrationError(
                            f"{migration.path.name} was changed after it was applied: "
                            "add a new migration instead of editing an applied one"
                        )
                    continue
                try:
                    conn.execute(migration.sql)
                except psycopg.Error as exc:
                    raise MigrationError(f"{migration.path.name} failed: {exc}") from exc
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                applied_now.append(migration.path.name)
    return applied_now


def main(argv: list[str] | None = None) -> int:
    """``python -m greenapi.migrate --url ...``: apply what is missing and say what was applied."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=os.environ.get("GREEN_API_DB_URL"), help="PostgreSQL URL")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of NNN_name.sql files")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or set GREEN_API_DB_URL")
    try:
        done = apply(args.url, args.dir)
    except (MigrationError, psycopg.Error) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    print(f"migrate: applied {len(done)} migration(s){': ' + ', '.join(done) if done else ' (up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

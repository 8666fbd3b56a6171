"""``python -m greenapi.instances add FILE | remove ID... | list``: Green API instances added,
removed and listed in one step, against a running Airflow (REST API v2) or, with
``--metadata-db``, straight in Airflow's metadata database (``make run``, the compose init).

Prints a summary on stdout and errors on stderr, never a token. Exit status 0, or 1 when
something was refused (then nothing was written).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from greenapi.domain.config import CONN_TYPE, LEGACY_CONN_TYPE
from greenapi.instances.plan import ConnFields, listing, plan_add, plan_remove
from greenapi.instances.source import InstancesError, conceal, read_instances
from greenapi.instances.stores import MetadataDb, RestApi, Store

PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"  # written by make run's API server


def _renamed(current: dict[str, ConnFields], conn_type: str) -> dict[str, ConnFields]:
    """The connections, those of the type's former name (``green_api``, migrated at each start) read
    as of its new one: an Airflow not restarted since still holds them, and they are ours."""
    return {k: replace(c, conn_type=conn_type) if c.conn_type == LEGACY_CONN_TYPE else c for k, c in current.items()}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m greenapi.instances", description=__doc__.split("\n\n")[0])
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--url", default=os.environ.get("GREEN_API_AIRFLOW_URL", "http://localhost:8080"),
                       help="the Airflow API server (GREEN_API_AIRFLOW_URL; default http://localhost:8080)")
    where.add_argument("--user", default=os.environ.get("GREEN_API_AIRFLOW_USER", "admin"),
                       help="its user (GREEN_API_AIRFLOW_USER; default admin)")
    where.add_argument("--password", default=None,
                       help="the user's password; better GREEN_API_AIRFLOW_PASSWORD, which no process list "
                            "shows; default: the one make run generated, in "
                            f"$GREEN_API_AIRFLOW_HOME (.airflow)/{PASSWORD_FILE}")
    where.add_argument("--metadata-db", action="store_true",
                       help="write Airflow's metadata database itself (Airflow's settings from the environment), "
                            "as make run and the compose init do before the API server starts")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", parents=[where], help="import a file of instances (CSV or YAML), merged with "
                              "what is there; a second import of the same file changes nothing")
    add.add_argument("file", type=Path, help="instances.csv or instances.yaml (docs/configuration.md)")
    remove = commands.add_parser("remove", parents=[where], help="delete instances' connections and take them out "
                                 "of Variable green_api_instances")
    remove.add_argument("names", nargs="+", metavar="ID", help="a connection id, or an idInstance")
    commands.add_parser("list", parents=[where], help="the instances: idInstance, connection id, name, API host")
    return parser


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    if os.environ.get("GREEN_API_AIRFLOW_PASSWORD"):
        return os.environ["GREEN_API_AIRFLOW_PASSWORD"]
    path = Path(os.environ.get("GREEN_API_AIRFLOW_HOME", ".airflow")) / PASSWORD_FILE
    try:
        return str(json.loads(path.read_text())[args.user])
    except (OSError, ValueError, KeyError):
        raise InstancesError(f"no password for user {args.user!r}: set GREEN_API_AIRFLOW_PASSWORD (or --password); "
                             f"make run keeps it in {path}") from None  # fmt: skip


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[Store]:
    if args.metadata_db:
        with MetadataDb.opened() as store:
            yield store
    else:
        yield RestApi(args.url, args.user, _password(args))


def run(args: argparse.Namespace) -> list[str]:
    """The command's summary lines; InstancesError when refused (nothing written)."""
    rows = read_instances(args.file) if args.command == "add" else []  # the file first: a bad row touches nothing
    conn_type = CONN_TYPE
    try:
        with _store(args) as store:
            current, variable = _renamed(store.connections(), conn_type), store.variable()
            if args.command == "list":
                return [*store.notes, *listing(current, variable, conn_type)]
            if args.command == "add":
                plan = plan_add(rows, conn_type, current, variable, str(args.file))
            else:
                plan = plan_remove(args.names, conn_type, current, variable)
            store.apply(plan)
            return [*store.notes, *plan.report]
    except InstancesError:
        raise
    except Exception as exc:  # Airflow's, the database's or the network's: said without a token or a traceback
        said = conceal(f"{type(exc).__name__}: {exc}", [row.token for row in rows])
        raise InstancesError(f"failed: {said[:1000]}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: the summary on stdout, a refusal on stderr (exit status 1)."""
    args = _parser().parse_args(argv)
    try:
        lines = run(args)
    except InstancesError as exc:
        print(f"greenapi.instances: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

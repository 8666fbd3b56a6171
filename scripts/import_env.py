#!/usr/bin/env python3
"""Put the connections and Variables given as environment variables into Airflow's database.

Airflow reads ``AIRFLOW_CONN_<ID>`` and ``AIRFLOW_VAR_<KEY>`` from the environment, but its UI
neither lists nor edits them ("No connection found!"), and they hide whatever is edited there.
``make run`` (and the compose deployment's init) call this with the settings of ``.env``: each one
is written into Airflow's metadata database (connections encrypted with Airflow's Fernet key), so
that Admin > Connections shows, edits and tests them. STDOUT carries ``unset NAME`` lines for
``eval``: the caller drops the variables, so what the UI shows is what the DAGs use. Messages go to
STDERR and never hold a password or a token.

Values from the environment replace those of the same id in the database: ``.env`` is where they
are set, and an edit made in the UI lasts until the next start. The instance list
(``AIRFLOW_VAR_GREEN_API_INSTANCES``) is the exception: merged, never replaced (_merge_instances).

Connections of the Green API type's former name, ``green_api`` (Airflow warns at every read of a
type with "_"), become ``greenapi``: those given here and those already in the database.
"""

from __future__ import annotations

import os
import sys

from greenapi.domain.config import CONN_TYPE, INSTANCES_VARIABLE, LEGACY_CONN_TYPE

CONN_PREFIX, VAR_PREFIX = "AIRFLOW_CONN_", "AIRFLOW_VAR_"


def _say(message: str) -> None:
    print(f"import_env: {message}", file=sys.stderr, flush=True)


def _connection(conn_id: str, value: str):  # type: ignore[no-untyped-def]
    from airflow.models.connection import Connection

    value = value.strip()
    if value.startswith("{"):
        return Connection.from_json(value, conn_id=conn_id)
    return Connection(conn_id=conn_id, uri=value)


def import_environment(environ: dict[str, str]) -> list[str]:
    """Write every AIRFLOW_CONN_* and AIRFLOW_VAR_* of ``environ``; returns the names written."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    names = sorted(n for n in environ if n.startswith((CONN_PREFIX, VAR_PREFIX)) and environ[n].strip())
    with create_session() as session:
        for name in names:
            if name.startswith(CONN_PREFIX):
                conn_id = name[len(CONN_PREFIX):].lower()
                try:
                    new = _connection(conn_id, environ[name])
                except Exception as exc:  # noqa: BLE001 - the value may hold a password: name the variable only
                    raise SystemExit(f"import_env: {name} is not a valid Airflow connection "
                                     f"(URI or JSON): {type(exc).__name__}") from None  # fmt: skip
                # Replaced without being read: a row written under another Fernet key (another
                # checkout's .airflow, on this machine's metadata database) cannot be decrypted.
                session.execute(delete(Connection).where(Connection.conn_id == conn_id))
                if new.conn_type == LEGACY_CONN_TYPE:
                    new.conn_type = CONN_TYPE
                session.add(new)
                _say(f"connection {conn_id} ({new.conn_type}, {new.host or '-'}) is in Admin > Connections")
            else:
                key = name[len(VAR_PREFIX):].lower()
                if key == INSTANCES_VARIABLE:
                    _merge_instances(environ[name], session)
                    continue
                Variable.set(key, environ[name], session=session)
                _say(f"Variable {key} is in Admin > Variables")
        migrate_conn_type(session)
    return names


def migrate_conn_type(session) -> int:  # type: ignore[no-untyped-def]
    """Turns the connections of type ``green_api`` into ``greenapi``; returns how many."""
    from airflow.models.connection import Connection
    from sqlalchemy import update

    moved = session.execute(update(Connection).where(Connection.conn_type == LEGACY_CONN_TYPE)
                            .values(conn_type=CONN_TYPE)).rowcount  # fmt: skip
    if moved:
        _say(f"{moved} connection(s) of type {LEGACY_CONN_TYPE} now have type {CONN_TYPE} (its new name)")
    return moved


def _merge_instances(value: str, session) -> None:  # type: ignore[no-untyped-def]
    """The list gains the entries of the environment's that it lacks and keeps its own: instances
    added since the last start (python -m greenapi.instances, the UI) are not lost to the demo's
    or the partner account's list, written again at each start."""
    from greenapi.instances.stores import merge_env_list

    _say(merge_env_list(value, session))


def main() -> int:
    environ = dict(os.environ)
    for name in environ:  # this process reads the database, not the values being replaced
        if name.startswith((CONN_PREFIX, VAR_PREFIX)):
            del os.environ[name]
    names = import_environment(environ)
    print("\n".join(f"unset {name}" for name in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where a plan is read from and written to: Airflow's metadata database itself (``make run`` and
the compose init, before the API server runs, as scripts/import_env.py does), or a running
Airflow's REST API v2 (the CLI). Both give the same view of the connections and the Variable, so
that one plan (greenapi.instances.plan) serves both."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import requests

from greenapi.domain.config import INSTANCES_VARIABLE
from greenapi.instances.plan import ConnFields, Plan, merge_list
from greenapi.instances.source import InstancesError, conceal

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class Store(Protocol):
    """What a plan needs of Airflow, and ``notes``: what the store had to say while reading (never a token)."""

    notes: list[str]

    def connections(self) -> dict[str, ConnFields]:
        """Every connection, by id."""

    def variable(self) -> str | None:
        """Variable green_api_instances as stored (None when absent)."""

    def apply(self, plan: Plan) -> None:
        """Write the plan: its connections, then the Variable, then its deletions."""


def _extra(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


class MetadataDb:
    """Airflow's metadata database, in one session: the plan is written in one transaction, or not at all."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.notes: list[str] = []

    @classmethod
    @contextmanager
    def opened(cls) -> Iterator[MetadataDb]:
        """A session of Airflow's settings (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN), committed at the end."""
        from airflow.utils.session import create_session

        with create_session() as session:
            yield cls(session)

    def connections(self) -> dict[str, ConnFields]:
        """Every connection, its secrets decrypted (``readable`` False where they cannot be)."""
        from airflow.models.connection import Connection
        from sqlalchemy import select

        found = {}
        for conn in self.session.scalars(select(Connection)):
            try:
                password, extra, readable = conn.password, _extra(conn.extra), True
            except Exception:  # noqa: BLE001 - encrypted under another Fernet key (or not JSON): replaced, never read
                password, extra, readable = None, {}, False
            found[conn.conn_id] = ConnFields(conn.conn_id, conn.conn_type, conn.host, conn.login, password,
                                             conn.description, extra, readable)  # fmt: skip
            self.session.expunge(conn)  # written over by apply(), never through this object
        return found

    def variable(self) -> str | None:
        """Variable green_api_instances, decrypted (None when absent, or when it cannot be decrypted)."""
        from airflow.models.variable import Variable
        from sqlalchemy import select

        row = self.session.scalar(select(Variable).where(Variable.key == INSTANCES_VARIABLE))
        if row is None:
            return None
        value = row.val  # None when it cannot be decrypted (another checkout's Fernet key)
        self.session.expunge(row)
        if value is None:
            self.notes.append(f"Variable {INSTANCES_VARIABLE} could not be decrypted (written with another Fernet "
                              "key?): it is written anew")  # fmt: skip
        return value  # type: ignore[no-any-return]

    def apply(self, plan: Plan) -> None:
        """The plan, in this session's transaction."""
        from airflow.models.connection import Connection
        from airflow.models.variable import Variable
        from sqlalchemy import delete

        gone = [c.conn_id for c in plan.writes] + list(plan.deletes)
        if gone:  # replaced without being read, as scripts/import_env.py does
            self.session.execute(delete(Connection).where(Connection.conn_id.in_(gone)))
        for c in plan.writes:
            self.session.add(Connection(conn_id=c.conn_id, conn_type=c.conn_type, host=c.host, login=c.login,
                                        password=c.password, description=c.description,
                                        extra=json.dumps(dict(c.extra), ensure_ascii=False)))  # fmt: skip
        if plan.variable is not None:
            Variable.set(INSTANCES_VARIABLE, plan.variable, session=self.session)
        self.session.flush()


def merge_env_list(value: str, session: Session) -> str:
    """Variable green_api_instances gets the entries of ``value`` (an AIRFLOW_VAR_GREEN_API_INSTANCES)
    that it lacks, and keeps all of its own: instances added since the last start stay. Where the
    Variable or ``value`` is unusable, ``value`` replaces it, as before (a bad value is then named
    by the DAGs' first task). Returns what to say (the list holds no secret)."""
    from airflow.models.variable import Variable

    store = MetadataDb(session)
    current = store.variable()
    try:
        additions = json.loads(value)
        if not isinstance(additions, list):
            raise ValueError(f"AIRFLOW_VAR_{INSTANCES_VARIABLE.upper()} is not a JSON list")
        entries, added = merge_list(current, additions)
    except ValueError as exc:  # ConfigError and JSONDecodeError are ValueErrors
        Variable.set(INSTANCES_VARIABLE, value, session=session)
        return f"Variable {INSTANCES_VARIABLE} is in Admin > Variables (replaced: {exc})"
    if added:
        store.apply(Plan(variable=json.dumps(entries, ensure_ascii=False)))
    return "; ".join([*store.notes, f"Variable {INSTANCES_VARIABLE} is in Admin > Variables "
                                    f"({len(added)} entries added, {len(entries) - len(added)} kept)"])  # fmt: skip


class RestApi:
    """A running Airflow's REST API v2, logged in as a user of its auth manager (POST /auth/token).
    Connections are written in one bulk request, then the Variable, then connections deleted:
    the list never names a connection that does not exist."""

    def __init__(self, url: str, user: str, password: str, timeout: float = 60.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self.notes: list[str] = []
        self.http = requests.Session()
        self._secrets: list[str] = [password]
        reply = self._send("POST", "/auth/token", json={"username": user, "password": password})
        if reply.status_code in (401, 403):
            raise InstancesError(f"Airflow at {self.url} refused user {user!r} and its password (--user, "
                                 "GREEN_API_AIRFLOW_PASSWORD or the password file)")  # fmt: skip
        self._check(reply, "log in")
        self.http.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.http.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.ConnectionError:
            raise InstancesError(f"no Airflow answers at {self.url}: start it (make run), or give its address "
                                 "with --url or GREEN_API_AIRFLOW_URL") from None  # fmt: skip
        except requests.RequestException as exc:
            raise InstancesError(f"{method} {self.url}{path} failed: {type(exc).__name__}") from None

    def _check(self, reply: requests.Response, what: str) -> None:
        if reply.status_code >= 400:
            detail = conceal(reply.text[:300], self._secrets)
            raise InstancesError(f"Airflow at {self.url} refused to {what}: HTTP {reply.status_code}: {detail}")

    def connections(self) -> dict[str, ConnFields]:
        """Every connection, page by page, as the API shows it (passwords and secret extras ``***``)."""
        found: dict[str, ConnFields] = {}
        while True:
            reply = self._send("GET", "/api/v2/connections",
                               params={"limit": 100, "offset": len(found), "order_by": "connection_id"})  # fmt: skip
            self._check(reply, "list its connections")
            page = reply.json()
            for c in page["connections"]:
                found[c["connection_id"]] = ConnFields(c["connection_id"], c["conn_type"], c.get("host"), c.get("login"),
                                                       c.get("password"), c.get("description"), _extra(c.get("extra")))  # fmt: skip
            if not page["connections"] or len(found) >= page["total_entries"]:
                return found

    def variable(self) -> str | None:
        """Variable green_api_instances (None when absent)."""
        reply = self._send("GET", f"/api/v2/variables/{INSTANCES_VARIABLE}")
        if reply.status_code == 404:
            return None
        self._check(reply, f"read Variable {INSTANCES_VARIABLE}")
        return str(reply.json()["value"])

    def _bulk(self, what: str, actions: Sequence[dict[str, Any]], said: str) -> None:
        reply = self._send("PATCH", f"/api/v2/{what}", json={"actions": list(actions)})
        self._check(reply, said)
        errors = [e for result in reply.json().values() if result for e in result.get("errors", [])]
        if errors:
            raise InstancesError(f"Airflow at {self.url} refused to {said}: {conceal(json.dumps(errors), self._secrets)}")

    def apply(self, plan: Plan) -> None:
        """The plan in bulk requests: connections created or overwritten, the Variable, deletions."""
        self._secrets += [c.password for c in plan.writes if c.password]
        if plan.writes:
            entities = [{"connection_id": c.conn_id, "conn_type": c.conn_type, "host": c.host, "login": c.login,
                         "password": c.password, "description": c.description, "schema": None, "port": None,
                         "extra": json.dumps(dict(c.extra), ensure_ascii=False)} for c in plan.writes]  # fmt: skip
            self._bulk("connections", [{"action": "create", "action_on_existence": "overwrite", "entities": entities}],
                       f"write {len(entities)} connection(s)")  # fmt: skip
        if plan.variable is not None:
            self._bulk("variables", [{"action": "create", "action_on_existence": "overwrite",
                                      "entities": [{"key": INSTANCES_VARIABLE, "value": plan.variable}]}],
                       f"write Variable {INSTANCES_VARIABLE}")  # fmt: skip
        if plan.deletes:
            self._bulk("connections", [{"action": "delete", "action_on_non_existence": "skip",
                                        "entities": list(plan.deletes)}], f"delete {len(plan.deletes)} connection(s)")  # fmt: skip

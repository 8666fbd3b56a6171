#!/usr/bin/env python3
"""Make sure a PostgreSQL server is available for the green_api project.

Resolution order:

1. ``AIRFLOW_CONN_GREEN_API_DB`` (Airflow connection URI or JSON) -> use it
   (unless ``--ignore-configured``: the demo and the tests never touch it).
2. A server answering on 127.0.0.1:5432 as ``postgres`` (or ``PGUSER``).
3. A private cluster in ``--pgdata`` started with the machine's binaries. By default its data
   lives in the checkout (``.pgdata``); as root, when the account that runs PostgreSQL (it refuses
   to run as root) cannot reach the checkout (a clone in ``/root``, mode 0700), it lives in
   ``/var/lib/green-api-health/<checkout>-<hash of its path>``, owned by that account: one per
   checkout, found again at every run. ``--remove`` stops the cluster and deletes its data.

Then the databases are created if missing:

- ``--health-db NAME``: the health database, exported as ``GREEN_API_DB_URL``. On a configured
  server it is the database that ``AIRFLOW_CONN_GREEN_API_DB`` names (the one the DAGs write
  to), and no other health database is created there.
- ``--airflow-db NAME``: Airflow's metadata database, exported as ``GREEN_API_AIRFLOW_DB_URL``.
  It is marked as this project's; a database holding another Airflow install's tables is refused.
- ``--databases a,b``: plain databases, exported as ``GREEN_API_PG_URL_<NAME>``.

STDOUT carries only ``export NAME='value'`` lines, meant for ``eval "$(...)"`` in a Makefile;
every human-readable message goes to STDERR.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote, unquote, urlsplit

import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
CONN_ENV = "AIRFLOW_CONN_GREEN_API_DB"
PORT_ENV = "GREEN_API_PG_PORT"
DEFAULT_PRIVATE_PORT = 54329
# The comment that marks a metadata database as this project's (COMMENT ON DATABASE).
AIRFLOW_DB_MARK = "green-api-health: Airflow metadata database"
# Tables that only an Airflow metadata database has.
AIRFLOW_TABLES = ("alembic_version", "dag_run", "task_instance")
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
SUPERUSER = "postgres"
CONNECT_TIMEOUT = 3
START_TIMEOUT = 30
LOG_NAME = "server.log"
CONF_NAME = "green_api.conf"
# Unix socket paths are limited to ~107 bytes (sun_path); keep a margin.
MAX_SOCKET_PATH = 100
INSTALL_HINT = (
    "PostgreSQL server binaries not found (initdb, pg_ctl). Install them: "
    "Debian/Ubuntu `apt-get install postgresql`, macOS `brew install postgresql@15`; "
    f"or set {CONN_ENV} to a reachable server."
)


class SetupError(Exception):
    """A failure that ends the script with exit code 1 and a message."""


@dataclass(frozen=True)
class Server:
    """Where and how to connect to a PostgreSQL server."""

    host: str
    port: int
    user: str
    password: str
    source: str
    dbname: str = "postgres"

    def connect(self, dbname: str | None = None, autocommit: bool = False) -> psycopg.Connection:
        """Open a connection, to ``dbname`` or the server's maintenance database."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=dbname or self.dbname,
            connect_timeout=CONNECT_TIMEOUT,
            autocommit=autocommit,
        )

    def url(self, dbname: str) -> str:
        """Return a ``postgresql://`` URL for ``dbname`` on this server."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql://{auth}@{url_host(self.host)}:{self.port}/{quote(dbname, safe='')}"

    @property
    def address(self) -> str:
        """``host:port`` for messages (never includes credentials)."""
        return f"{self.host}:{self.port}"


# --------------------------------------------------------------------------- output


def log(message: str) -> None:
    """Write a human-readable message to STDERR."""
    print(f"ensure_postgres: {message}", file=sys.stderr, flush=True)


def shell_quote(value: str) -> str:
    """Quote ``value`` in single quotes for POSIX shells."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def url_host(host: str) -> str:
    """Format a host for use inside a URL (IPv6 brackets, socket dirs encoded)."""
    if host.startswith("/"):
        return quote(host, safe="")
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def env_suffix(dbname: str) -> str:
    """Turn a database name into an environment-variable suffix."""
    return re.sub(r"[^A-Z0-9_]", "_", dbname.upper())


def export_lines(
    server: Server, databases: Sequence[str], health_db: str | None = None, airflow_db: str | None = None
) -> list[str]:
    """Build the ``export NAME='value'`` lines for ``server``."""
    values: list[tuple[str, str]] = [
        ("GREEN_API_PG_HOST", server.host),
        ("GREEN_API_PG_PORT", str(server.port)),
        ("GREEN_API_PG_USER", server.user),
        ("GREEN_API_PG_PASSWORD", server.password),
        ("GREEN_API_PG_SOURCE", server.source),
    ]
    values += [(f"GREEN_API_PG_URL_{env_suffix(db)}", server.url(db)) for db in databases]
    if health_db:
        values.append(("GREEN_API_DB_URL", server.url(health_db)))
    if airflow_db:
        values.append(("GREEN_API_AIRFLOW_DB_URL", server.url(airflow_db)))
    return [f"export {name}={shell_quote(value)}" for name, value in values]


def one_line(text: str) -> str:
    """Collapse whitespace so tool output fits in a one-paragraph message."""
    return " ".join(text.split())


def redact(message: str, secret: str) -> str:
    """Remove ``secret`` (a password) from ``message``, also in URL-quoted form."""
    if not secret:
        return message
    for form in {secret, quote(secret, safe="")}:
        message = message.replace(form, "***")
    return message


# --------------------------------------------------------------------------- arguments


def default_port() -> int:
    """Return the private cluster port from ``GREEN_API_PG_PORT`` or the default."""
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw:
        return DEFAULT_PRIVATE_PORT
    if not raw.isdigit():
        raise SetupError(f"{PORT_ENV}={raw!r} is not a port number.")
    return int(raw)


def parse_databases(raw: str) -> list[str]:
    """Split a comma list of database names, dropping blanks and duplicates."""
    names: list[str] = []
    for name in (part.strip() for part in raw.split(",")):
        if name and name not in names:
            names.append(name)
    return names


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="", help="comma list of plain databases to create")
    parser.add_argument("--health-db", default=None, help="the health database (on a configured server: its own)")
    parser.add_argument("--airflow-db", default=None, help="Airflow's metadata database (marked as this project's)")
    parser.add_argument("--ignore-configured", action="store_true", help=f"do not use {CONN_ENV}")
    parser.add_argument("--pgdata", type=Path, default=None,
                        help="private cluster dir (default: .pgdata in the checkout, or outside it as root: see above)")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"private cluster port (default ${PORT_ENV} or {DEFAULT_PRIVATE_PORT})",
    )
    parser.add_argument("--force-private", action="store_true", help="skip configured/local servers")
    parser.add_argument("--recreate", action="store_true",
                        help="drop the named databases first (the test suite's, never a configured server's)")
    parser.add_argument("--stop", action="store_true", help="stop the private cluster and exit")
    parser.add_argument("--remove", action="store_true", help="stop the private cluster, delete its data and exit")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- connection checks


def connection_error(server: Server, dbname: str | None = None) -> str | None:
    """Return why ``server`` does not answer, or ``None`` if it does."""
    try:
        with server.connect(dbname) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        # One line: libpq messages span lines, the caller wants one paragraph.
        return one_line(redact(str(exc), server.password)) or type(exc).__name__
    return None


def wait_until_answers(server: Server, deadline: float) -> str | None:
    """Poll ``server`` until it answers or ``deadline``; return the last error."""
    while True:
        error = connection_error(server)
        if error is None or time.monotonic() >= deadline:
            return error
        time.sleep(0.3)


# --------------------------------------------------------------------------- configured server


def parse_airflow_conn(value: str) -> Server:
    """Parse an Airflow connection (URI or JSON form) into a :class:`Server`."""
    value = value.strip()
    fields = parse_conn_json(value) if value.startswith("{") else parse_conn_uri(value)
    host, port, user, password, dbname = fields
    return Server(
        host=host or "localhost",
        port=port or LOCAL_PORT,
        user=user or SUPERUSER,
        password=password,
        source="configured",
        dbname=dbname or "postgres",
    )


def parse_conn_uri(value: str) -> tuple[str, int | None, str, str, str]:
    """Split ``postgresql://user:pass@host:port/db`` into its parts."""
    parts = urlsplit(value)
    if not parts.scheme.startswith("postgres"):
        raise SetupError(f"{CONN_ENV} must be a postgres:// or postgresql:// URI (or Airflow JSON).")
    try:
        port = parts.port
    except ValueError as exc:
        raise SetupError(f"{CONN_ENV} has an invalid port: {exc}.") from None
    return (
        unquote(parts.hostname or ""),
        port,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        unquote(parts.path.lstrip("/")),
    )


def parse_conn_json(value: str) -> tuple[str, int | None, str, str, str]:
    """Read Airflow's JSON connection form (conn_type/host/login/password/port/schema)."""
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise SetupError(f"{CONN_ENV} looks like JSON but does not parse: {exc.msg}.") from None
    if not isinstance(data, dict):
        raise SetupError(f"{CONN_ENV} JSON must be an object.")
    conn_type = str(data.get("conn_type") or "postgres")
    if not conn_type.startswith("postgres"):
        raise SetupError(f"{CONN_ENV} has conn_type {conn_type!r}; expected 'postgres'.")
    raw_port = data.get("port")
    try:
        port = int(raw_port) if raw_port not in (None, "") else None
    except (TypeError, ValueError):
        raise SetupError(f"{CONN_ENV} has an invalid port {raw_port!r}.") from None
    return (
        str(data.get("host") or ""),
        port,
        str(data.get("login") or ""),
        str(data.get("password") or ""),
        str(data.get("schema") or ""),
    )


def configured_server(value: str) -> Server:
    """Use the server from ``AIRFLOW_CONN_GREEN_API_DB``; fail if it does not answer.

    The database it names is created when the server answers but lacks it.
    """
    server = parse_airflow_conn(value)
    error = connection_error(server)
    if error is not None and "does not exist" in error and connection_error(server, "postgres") is None:
        with server.connect("postgres", autocommit=True) as conn:
            create_database(conn, server.dbname)
        error = connection_error(server)
    if error is not None:
        raise SetupError(
            f"The server configured in {CONN_ENV} ({server.address}, user {server.user!r}, "
            f"database {server.dbname!r}) does not answer: {error} "
            f"Start that server, fix {CONN_ENV}, or unset it to use a local/private server."
        )
    log(f"using configured server {server.address}")
    return server


# --------------------------------------------------------------------------- local server


def local_server() -> Server | None:
    """Return the server on 127.0.0.1:5432 if it answers, else ``None``."""
    server = Server(
        host=LOCAL_HOST,
        port=LOCAL_PORT,
        user=os.environ.get("PGUSER") or SUPERUSER,
        password=os.environ.get("PGPASSWORD", ""),
        source="local",
    )
    error = connection_error(server)
    if error is not None:
        log(f"no usable server on {server.address} as {server.user!r} ({error})")
        return None
    log(f"using local server {server.address}")
    return server


# --------------------------------------------------------------------------- private cluster


def find_bindir() -> Path | None:
    """Locate a directory holding ``initdb`` and ``pg_ctl``."""
    for candidate in bindir_candidates():
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def bindir_candidates() -> list[Path]:
    """Candidate bin dirs: pg_config, newest /usr/lib/postgresql, /usr/local/pgsql, PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version_key, reverse=True)
    candidates.append(Path("/usr/local/pgsql/bin"))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return candidates


def version_key(bindir: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` (numeric, so 15 > 9.6)."""
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name)) or (0,)


def require_bindir() -> Path:
    """Return the binaries directory or fail with installation instructions."""
    bindir = find_bindir()
    if bindir is None:
        raise SetupError(INSTALL_HINT)
    return bindir


OUTSIDE_ROOT = Path("/var/lib/green-api-health")


def outside_pgdata(repo: Path) -> Path:
    """Where a checkout's private cluster lives when it cannot live in the checkout: named after
    the checkout and a hash of its path, so that every run of ``make`` finds the same one."""
    digest = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", repo.resolve().name) or "checkout"
    return OUTSIDE_ROOT / f"{name}-{digest}"


def default_pgdata(repo: Path = REPO_ROOT) -> Path:
    """The private cluster's data dir: ``.pgdata`` in the checkout, unless running as root in a
    checkout that the account running PostgreSQL cannot reach (and that holds no cluster yet):
    then outside it, in a directory of that account's (:func:`outside_pgdata`)."""
    inside = repo / ".pgdata"
    if os.geteuid() != 0 or is_initialised(inside):
        return inside
    outside = outside_pgdata(repo)
    if is_initialised(outside):
        return outside
    user = run_user(inside)
    if user is None or run(user, ["test", "-x", str(repo)], 10).returncode == 0:  # the path is traversable
        return inside
    log(f"the checkout {repo} is not reachable by the account {user!r} that runs PostgreSQL (it refuses to run "
        f"as root): the private cluster's data goes in {outside} (`make remove-pgdata` deletes it)")
    return outside


def run_user(pgdata: Path) -> str | None:
    """Pick the account to run PostgreSQL as; ``None`` means the current user.

    PostgreSQL refuses to run as root, so root delegates to the data dir's
    existing (non-root) owner, else ``postgres``, else ``nobody``.
    """
    if os.geteuid() != 0:
        return None
    if pgdata.exists() and pgdata.stat().st_uid != 0:
        try:
            return pwd.getpwuid(pgdata.stat().st_uid).pw_name
        except KeyError:
            pass
    for name in (SUPERUSER, "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise SetupError(
        "Running as root but neither a 'postgres' nor a 'nobody' account exists to run PostgreSQL."
    )


def as_user(user: str | None, command: list[str]) -> list[str]:
    """Wrap ``command`` so it runs as ``user`` (no-op for ``None``)."""
    if user is None:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *command]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(command)]


def run(user: str | None, command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as ``user``, capturing its output (never onto our STDOUT)."""
    # cwd=/ because the unprivileged user may not be able to enter our cwd.
    return subprocess.run(
        as_user(user, command),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd="/",
        stdin=subprocess.DEVNULL,
    )


def prepare_datadir(pgdata: Path, user: str | None) -> None:
    """Create ``pgdata`` (mode 0700) and hand it to ``user`` when running as root."""
    if pgdata.parent == OUTSIDE_ROOT:
        OUTSIDE_ROOT.mkdir(mode=0o755, exist_ok=True)  # root's; each cluster's own dir is its account's
    pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
    if user is None:
        return
    account = pwd.getpwnam(user)
    if pgdata.stat().st_uid != account.pw_uid:
        chown_tree(pgdata, account.pw_uid, account.pw_gid)
    if not user_can_enter(user, pgdata):
        raise SetupError(
            f"The data directory {pgdata} is not accessible to user {user!r}, which runs PostgreSQL "
            f"because it refuses to run as root. Make its parent directories traversable "
            f"(chmod o+x) or choose another --pgdata."
        )


def user_can_enter(user: str, path: Path) -> bool:
    """True if ``user`` can read, write and enter ``path`` (parents included)."""
    target = str(path)
    return run(user, ["test", "-r", target, "-a", "-w", target, "-a", "-x", target], 10).returncode == 0


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """Recursively change ownership of ``root``."""
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def is_initialised(pgdata: Path) -> bool:
    """True if ``pgdata`` holds a PostgreSQL cluster."""
    return (pgdata / "PG_VERSION").is_file()


def init_cluster(bindir: Path, pgdata: Path, user: str | None) -> None:
    """Run initdb and restrict authentication to local/127.0.0.1 trust."""
    if any(pgdata.iterdir()):
        raise SetupError(f"{pgdata} is not empty and holds no PostgreSQL cluster; choose another --pgdata.")
    log(f"initialising a private cluster in {pgdata}")
    # --locale=C: works on every machine regardless of installed locales.
    result = run(
        user,
        [
            str(bindir / "initdb"),
            "-D",
            str(pgdata),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        timeout=180,
    )
    if result.returncode != 0:
        raise SetupError(f"initdb failed in {pgdata}: {one_line(result.stderr or result.stdout)}")
    # Trusted: the cluster's own role only, over its socket and 127.0.0.1; anything else is refused.
    write_owned(pgdata / "pg_hba.conf", f"local all {SUPERUSER} trust\nhost all {SUPERUSER} 127.0.0.1/32 trust\n", user)
    with (pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"\ninclude_if_exists = '{CONF_NAME}'\n")


def write_owned(path: Path, text: str, user: str | None) -> None:
    """Write ``path`` and give it to ``user`` (so the server can read it)."""
    path.write_text(text, encoding="utf-8")
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(path, account.pw_uid, account.pw_gid)


def conf_quote(value: str) -> str:
    """Quote a string for postgresql.conf."""
    return "'" + value.replace("'", "''") + "'"


def write_settings(pgdata: Path, port: int, user: str | None) -> None:
    """Write listen address, port and socket dir, applied at every start."""
    socket_dir = str(pgdata)
    if len(f"{socket_dir}/.s.PGSQL.{port}") > MAX_SOCKET_PATH:
        log(f"{pgdata} is too long for a unix socket path; the cluster will listen on TCP only")
        socket_dir = ""
    settings = (
        f"listen_addresses = '{LOCAL_HOST}'\n"
        f"port = {port}\n"
        f"unix_socket_directories = {conf_quote(socket_dir)}\n"
    )
    write_owned(pgdata / CONF_NAME, settings, user)


def running_port(bindir: Path, pgdata: Path, user: str | None) -> int | None:
    """Return the port of the cluster running in ``pgdata``, or ``None``."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.is_file():
        return None
    if run(user, [str(bindir / "pg_ctl"), "status", "-D", str(pgdata)], 30).returncode != 0:
        return None
    lines = pid_file.read_text(encoding="utf-8", errors="replace").splitlines()
    # postmaster.pid line 4 is the port (see pidfile.h).
    return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None


def ensure_port_free(port: int) -> None:
    """Fail early, with a useful message, if ``port`` is taken on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCAL_HOST, port))
        except OSError:
            raise SetupError(
                f"Port {port} on {LOCAL_HOST} is already in use, so the private cluster cannot start. "
                f"Pass --port or set {PORT_ENV} to a free port."
            ) from None


def start_cluster(bindir: Path, pgdata: Path, port: int, user: str | None) -> None:
    """Start the stopped cluster in ``pgdata`` on ``port``."""
    ensure_port_free(port)
    write_settings(pgdata, port, user)
    log(f"starting the private cluster on {LOCAL_HOST}:{port}")
    command = [
        str(bindir / "pg_ctl"),
        "start",
        "-D",
        str(pgdata),
        "-l",
        str(pgdata / LOG_NAME),
        "-w",
        "-t",
        str(START_TIMEOUT),
    ]
    result = run(user, command, timeout=START_TIMEOUT + 15)
    if result.returncode != 0:
        raise SetupError(
            f"pg_ctl could not start the cluster in {pgdata}: {one_line(result.stderr or result.stdout)}\n"
            f"{log_tail(pgdata)}"
        )


def log_tail(pgdata: Path, lines: int = 15) -> str:
    """Return the last lines of the cluster's log file, for error messages."""
    path = pgdata / LOG_NAME
    try:
        tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {path})"
    return f"Last lines of {path}:\n" + "\n".join(tail)


def private_server(pgdata: Path, port: int) -> Server:
    """Reuse, start or create the private cluster in ``pgdata``."""
    bindir = require_bindir()
    user = run_user(pgdata)
    prepare_datadir(pgdata, user)
    started = time.monotonic()
    active = running_port(bindir, pgdata, user)
    if active is None:
        if not is_initialised(pgdata):
            init_cluster(bindir, pgdata, user)
        start_cluster(bindir, pgdata, port, user)
        active = port
    elif active != port:
        log(f"the private cluster is already running on port {active} (not {port}); reusing it")
    server = Server(host=LOCAL_HOST, port=active, user=SUPERUSER, password="", source="private")
    error = wait_until_answers(server, started + START_TIMEOUT)
    if error is not None:
        raise SetupError(
            f"The private cluster in {pgdata} does not answer on {server.address}: {error}\n{log_tail(pgdata)}"
        )
    log(f"using private cluster {server.address} (data in {pgdata})")
    return server


def stop_private(pgdata: Path) -> None:
    """Stop the private cluster in ``pgdata`` if it runs."""
    if not (pgdata / "postmaster.pid").is_file():
        log(f"no private cluster running in {pgdata}")
        return
    bindir = require_bindir()
    user = run_user(pgdata)
    if running_port(bindir, pgdata, user) is None:
        log(f"no private cluster running in {pgdata}")
        return
    result = run(user, [str(bindir / "pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast", "-w"], timeout=90)
    if result.returncode != 0:
        raise SetupError(
            f"pg_ctl could not stop the cluster in {pgdata}: {one_line(result.stderr or result.stdout)}"
        )
    log(f"stopped the private cluster in {pgdata}")


# --------------------------------------------------------------------------- databases


def ensure_databases(server: Server, databases: Sequence[str], recreate: bool = False) -> None:
    """Create every database in ``databases`` that does not exist yet (``recreate``: drop them first)."""
    if recreate and server.source == "configured":
        raise SetupError("--recreate never drops the databases of a configured server")
    try:
        with server.connect(autocommit=True) as conn:
            for name in databases:
                if server.source == "configured" and name == server.dbname:
                    continue
                if recreate:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                create_database(conn, name)
    except psycopg.OperationalError as exc:
        raise SetupError(
            f"Lost the connection to {server.address}: {redact(str(exc), server.password)}"
        ) from None


def health_database(server: Server, requested: str) -> str:
    """The health database: on a configured server, the one its connection names."""
    if server.source != "configured":
        return requested
    if not server.dbname or server.dbname == "postgres":
        raise SetupError(
            f"{CONN_ENV} names no database of its own ({server.dbname or 'none'}): end it with the "
            f"health database, e.g. postgresql://user@{server.address}/green_api"
        )
    return server.dbname


def claim_airflow_database(server: Server, name: str) -> None:
    """Make ``name`` this project's metadata database, refusing another Airflow install's.

    A database with Airflow's tables and without this project's mark belongs to someone else:
    migrating it, or running a scheduler on it, would change their Airflow.
    """
    try:
        with server.connect(name, autocommit=True) as conn:
            mark = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
            ).fetchone()
            if mark and mark[0] == AIRFLOW_DB_MARK:
                return
            found = [
                table for table in AIRFLOW_TABLES
                if conn.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()[0] is not None
            ]  # fmt: skip
            if found:
                raise SetupError(
                    f"Database {name!r} on {server.address} holds the tables of another Airflow install "
                    f"({', '.join(found)}) and is not this project's: refusing to use it. Set "
                    f"GREEN_API_AIRFLOW_DB to another name (a new database is created), or mark it as "
                    f"this project's: COMMENT ON DATABASE {name} IS '{AIRFLOW_DB_MARK}'"
                )
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(AIRFLOW_DB_MARK)))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SetupError(f"Cannot mark database {name!r} as this project's ({one_line(str(exc))}): "
                         f"the user {server.user!r} must own it") from None
    except psycopg.OperationalError as exc:
        raise SetupError(f"Cannot open database {name!r} on {server.address}: "
                         f"{one_line(redact(str(exc), server.password))}") from None


def create_database(conn: psycopg.Connection, name: str) -> None:
    """Create database ``name`` unless it exists; fail clearly without privileges."""
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        return
    try:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        return  # created concurrently by someone else; that is fine
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SetupError(
            f"Cannot create database {name!r}: the user lacks the right to ({exc}). "
            f"Create it as a superuser or grant CREATEDB."
        ) from None
    except psycopg.Error as exc:
        raise SetupError(f"Cannot create database {name!r}: {exc}") from None
    log(f"created database {name!r}")


# --------------------------------------------------------------------------- main


def remove_private(pgdata: Path) -> None:
    """Stop the private cluster in ``pgdata`` and delete its data."""
    stop_private(pgdata)
    if pgdata.exists():
        shutil.rmtree(pgdata)
        log(f"removed the private cluster's data in {pgdata}")
    if pgdata.parent == OUTSIDE_ROOT and OUTSIDE_ROOT.is_dir() and not any(OUTSIDE_ROOT.iterdir()):
        OUTSIDE_ROOT.rmdir()


def pgdata_of(args: argparse.Namespace) -> Path:
    return (args.pgdata or default_pgdata()).expanduser().absolute()


def resolve_server(args: argparse.Namespace) -> Server:
    """Pick the server following the configured -> local -> private order."""
    port = args.port if args.port is not None else default_port()
    if not args.force_private:
        configured = "" if args.ignore_configured else os.environ.get(CONN_ENV, "").strip()
        if configured:
            return configured_server(configured)
        server = local_server()
        if server is not None:
            return server
    return private_server(pgdata_of(args), port)


def fail(message: str) -> NoReturn:
    """Print ``message`` to STDERR and exit with status 1."""
    print(f"ensure_postgres: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.stop:
            stop_private(pgdata_of(args))
            return 0
        if args.remove:
            remove_private(pgdata_of(args))
            return 0
        databases = parse_databases(args.databases)
        if not databases and not args.health_db and not args.airflow_db:
            raise SetupError("name at least one database (--health-db, --airflow-db or --databases).")
        server = resolve_server(args)
        health = health_database(server, args.health_db) if args.health_db else None
        if health and health == args.airflow_db:
            raise SetupError(f"the health database and Airflow's metadata database are both {health!r}")
        ensure_databases(server, [*databases, *([args.airflow_db] if args.airflow_db else []),
                                  *([health] if health else [])], recreate=args.recreate)
        if args.airflow_db:
            claim_airflow_database(server, args.airflow_db)
    except SetupError as exc:
        fail(str(exc))
    except subprocess.TimeoutExpired as exc:
        fail(f"Command timed out after {exc.timeout:.0f} s: {shlex.join(map(str, exc.cmd))}")
    print("\n".join(export_lines(server, databases, health, args.airflow_db)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GreenApiHook: the Green API over HTTP, and nothing else.

The token is part of every URL path (``/waInstance{id}/{method}/{token}``), so no URL is ever
logged, raised or returned: failures are described from their kind, and anything that could echo
the URL goes through :func:`redact` first.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from airflow.sdk import BaseHook

from greenapi.domain.config import InstanceConfig, instance_config
from greenapi.domain.results import ApiResult, ResultKind

if TYPE_CHECKING:
    from collections.abc import Iterator

MAX_BODY_BYTES = 1024 * 1024
USER_AGENT = "airflow-green-api-health/0.1"
# Requests per second the API allows per instance and method (see the protocol notes).
RATE_LIMITS = {"sendMessage": 50.0}
DEFAULT_RATE = 1.0
_PACING_MARGIN = 1.05


class _Pacer:
    """Spaces calls per (api url, instance, method) so this process never trips the 429 limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[tuple[str, str, str], float] = {}

    def wait(self, key: tuple[str, str, str], per_second: float) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(key, 0.0))
            self._next[key] = slot + _PACING_MARGIN / per_second
        if slot > now:
            time.sleep(slot - now)


PACER = _Pacer()


class _BodyError(Exception):
    def __init__(self, kind: ResultKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def redact(text: str, token: str | None) -> str:
    """Replace the token wherever it appears."""
    return text.replace(token, "***") if token else text


def _connection_reason(exc: BaseException) -> str:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(current, socket.gaierror):
            return "host name not resolved"
        name = type(current).__name__
        if name in ("RemoteDisconnected", "ProtocolError") and "without response" in str(current):
            return "server closed the connection without answering"
        pending.extend([current.__cause__, current.__context__, *[a for a in current.args if isinstance(a, BaseException)]])
    return "connection failed"


def _error_detail(body: bytes, token: str | None) -> str | None:
    """A short, readable excerpt of an error body (JSON message, text, or HTML without tags)."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        invoke = parsed.get("invokeStatus")
        if isinstance(invoke, dict) and invoke.get("status"):
            text = str(invoke["status"])
        elif parsed.get("message"):
            text = str(parsed["message"])
    text = re.sub(r"<[^>]*>", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return redact(text, token)[:160] or None


class GreenApiHook(BaseHook):
    """Calls one Green API instance described by an Airflow connection.

    Connection fields: host = apiUrl (e.g. ``https://7105.api.greenapi.com``), login = idInstance,
    password = apiTokenInstance; extras ``state_timeout`` (s, default 10), ``reboot_timeout`` (30),
    ``send_timeout`` (20) and ``dashboard_url`` (the link put in alerts; default the dashboard in the
    Airflow UI).

    Every method returns an :class:`ApiResult` and never raises for an API or network failure.
    """

    conn_name_attr = "green_api_conn_id"
    default_conn_name = "green_api_default"
    conn_type = "green_api"
    hook_name = "Green API"

    def __init__(self, green_api_conn_id: str = default_conn_name, *, pace: bool = True) -> None:
        super().__init__()
        self.green_api_conn_id = green_api_conn_id
        self.pace = pace
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"GreenApiHook(green_api_conn_id={self.green_api_conn_id!r})"

    @cached_property
    def config(self) -> InstanceConfig:
        """The connection, validated (raises ConfigError naming the bad field)."""
        conn = self.get_connection(self.green_api_conn_id)
        extra = conn.extra_dejson if conn.extra else {}
        cfg = instance_config(self.green_api_conn_id, conn.host, conn.login, conn.password, extra)
        self._token = conn.password.strip() if conn.password else None
        return cfg

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        session.trust_env = False  # a proxy from the environment would see the token-bearing path
        return session

    def get_state_instance(self, timeout: float | None = None) -> ApiResult:
        """``getStateInstance``: the instance's WhatsApp state."""
        return self._call("getStateInstance", "GET", timeout or self.config.state_timeout)

    def reboot(self, timeout: float | None = None) -> ApiResult:
        """``reboot``: restarts the instance; ``data["isReboot"]`` says whether it was accepted."""
        return self._call("reboot", "GET", timeout or self.config.reboot_timeout)

    def send_message(self, chat_id: str, message: str, timeout: float | None = None) -> ApiResult:
        """``sendMessage``: queues a WhatsApp text; ``data["idMessage"]`` on success."""
        body = {"chatId": chat_id, "message": message}
        return self._call("sendMessage", "POST", timeout or self.config.send_timeout, body)

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's Test button: one getStateInstance call."""
        try:
            cfg = self.config
        except ValueError as exc:
            return False, str(exc)
        result = self.get_state_instance()
        if result.ok:
            state = result.data.get("stateInstance")
            return True, f"Instance {cfg.instance_id} answered in {result.response_time_ms} ms: state {state!r}"
        return False, f"Instance {cfg.instance_id}: {result.error}"

    def _read(self, chunks: Iterator[bytes], deadline: float) -> bytes:
        body = bytearray()
        for chunk in chunks:
            body.extend(chunk)
            if len(body) > MAX_BODY_BYTES:
                raise _BodyError(ResultKind.MALFORMED, f"response body larger than {MAX_BODY_BYTES} bytes")
            if time.monotonic() > deadline:
                raise _BodyError(ResultKind.TIMEOUT, "Connection timeout (answer not complete in time)")
        return bytes(body)

    @staticmethod
    def _chunks(response: requests.Response) -> Iterator[bytes]:
        raw = response.raw
        while True:
            chunk = raw.read1(65536)
            if not chunk:
                return
            yield chunk

    def _call(self, method: str, http_method: str, timeout: float, body: dict[str, Any] | None = None) -> ApiResult:
        cfg = self.config
        url = f"{cfg.api_url}/waInstance{cfg.instance_id}/{method}/{self._token}"
        if self.pace:
            PACER.wait((cfg.api_url, cfg.instance_id, method), RATE_LIMITS.get(method, DEFAULT_RATE))
        started = time.monotonic()
        deadline = started + timeout

        def result(kind: ResultKind, **fields: Any) -> ApiResult:
            elapsed = int(round((time.monotonic() - started) * 1000))
            return ApiResult(method=method, kind=kind, response_time_ms=elapsed, **fields)

        try:
            with self._session.request(
                http_method,
                url,
                json=body,
                timeout=(min(timeout, 5.0), timeout),
                stream=True,
                allow_redirects=False,
            ) as response:
                raw = self._read(self._chunks(response), deadline)
                status = response.status_code
        except _BodyError as exc:
            return result(exc.kind, error=str(exc))
        except requests.Timeout:
            return result(ResultKind.TIMEOUT, error="Connection timeout")
        except requests.ConnectionError as exc:
            return result(ResultKind.CONNECTION_ERROR, error=f"Connection error: {_connection_reason(exc)}")
        except requests.RequestException as exc:
            return result(ResultKind.CONNECTION_ERROR, error=f"Request failed: {type(exc).__name__}")

        if not 200 <= status < 300:
            detail = "redirect refused" if 300 <= status < 400 else _error_detail(raw, self._token)
            error = f"HTTP {status}" + (f": {detail}" if detail else "")
            return result(ResultKind.HTTP_ERROR, http_status=status, detail=detail, error=error)
        try:
            parsed = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return result(ResultKind.MALFORMED, http_status=status, error="Malformed answer: body is not UTF-8")
        except json.JSONDecodeError:
            return result(ResultKind.MALFORMED, http_status=status, error="Malformed answer: body is not valid JSON")
        if parsed is None:
            return result(ResultKind.NULL_BODY, http_status=status, error="Answer body is null")
        if not isinstance(parsed, dict):
            return result(ResultKind.MALFORMED, http_status=status, error="Malformed answer: body is not a JSON object")
        return result(ResultKind.OK, http_status=status, data=parsed)

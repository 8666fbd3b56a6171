"""GreenApiHook and GreenApiAsyncHook: the Green API over HTTP, and nothing else.

The token is part of every URL path (``/waInstance{id}/{method}/{token}``), so no URL is ever
logged, raised or returned: failures are described from their kind, and anything that could echo
the URL goes through :func:`redact` first.

Why not ``HttpHook`` / ``HttpAsyncHook`` of the http provider: they log the URL of every request
("Sending 'GET' to url: ..."), and here the URL holds the token. These hooks use ``requests`` and
``httpx`` (both installed with Airflow) directly, with the same error handling in both.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import requests
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from greenapi.domain.broken import SECRET_SETTINGS, Drift, compare_settings, drift_text
from greenapi.domain.config import (
    CONN_TYPE,
    LEGACY_CONN_TYPE,
    ConfigError,
    InstanceConfig,
    InstanceList,
    PartnerConfig,
    instance_config,
    partner_config,
)
from greenapi.domain.partner import PartnerInstance, PartnerListingError, expand, parse_listing, split_key
from greenapi.domain.results import ApiResult, ResultKind

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import httpx

T = TypeVar("T")
R = TypeVar("R")

MAX_BODY_BYTES = 1024 * 1024
USER_AGENT = "airflow-provider-green-api"
MASK = "***"
# Requests per second the API allows per instance and method (see the protocol notes).
RATE_LIMITS = {"sendMessage": 50.0}
DEFAULT_RATE = 1.0
# Slots are booked here but counted where the request arrives: a quarter of the interval absorbs
# the time between the two (a loaded machine delayed a call by more than 50 ms and drew a 429).
_PACING_MARGIN = 1.25


class _Pacer:
    """Spaces calls per (api url, instance, method) so this process never trips the 429 limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[tuple[str, str, str], float] = {}

    def reserve(self, key: tuple[str, str, str], per_second: float) -> float:
        """Book the next free slot for ``key``; returns how long to wait for it (s)."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(key, 0.0))
            self._next[key] = slot + _PACING_MARGIN / per_second
        return slot - now

    def wait(self, key: tuple[str, str, str], per_second: float) -> None:
        delay = self.reserve(key, per_second)
        if delay > 0:
            time.sleep(delay)

    async def await_slot(self, key: tuple[str, str, str], per_second: float) -> None:
        delay = self.reserve(key, per_second)
        if delay > 0:
            await asyncio.sleep(delay)


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


def mask_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``getSettings``'s answer with every secret value replaced by ``***`` (empty ones kept empty)."""
    return {k: (MASK if k in SECRET_SETTINGS and v not in (None, "") else v) for k, v in settings.items()}


def interpret(method: str, status: int, raw: bytes, token: str | None, elapsed_ms: int,
              expected: Mapping[str, Any] | None = None) -> ApiResult:  # fmt: skip
    """One answer as an :class:`ApiResult`: the same reading for the sync and the async hook.

    ``showMessagesQueue`` answers a JSON array: it is returned as ``data["messages"]``.
    ``getSettings``' secrets are masked; with ``expected`` (a connection's ``expected_settings``),
    they are compared first, so that no secret leaves this function: ``data["drift"]`` then lists
    each differing key (:class:`~greenapi.domain.broken.Drift`, as JSON).
    """

    def result(kind: ResultKind, **fields: Any) -> ApiResult:
        return ApiResult(method=method, kind=kind, response_time_ms=elapsed_ms, http_status=status, **fields)

    if not 200 <= status < 300:
        detail = "redirect refused" if 300 <= status < 400 else _error_detail(raw, token)
        return result(ResultKind.HTTP_ERROR, detail=detail, error=f"HTTP {status}" + (f": {detail}" if detail else ""))
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return result(ResultKind.MALFORMED, error="Malformed answer: body is not UTF-8")
    except json.JSONDecodeError:
        return result(ResultKind.MALFORMED, error="Malformed answer: body is not valid JSON")
    if parsed is None:
        return result(ResultKind.NULL_BODY, error="Answer body is null")
    if method == "showMessagesQueue" and isinstance(parsed, list):
        return result(ResultKind.OK, data={"messages": parsed})
    if not isinstance(parsed, dict):
        return result(ResultKind.MALFORMED, error="Malformed answer: body is not a JSON object")
    if method == "getSettings":
        drift = compare_settings(expected, parsed) if expected else ()
        parsed = mask_settings(parsed)
        if expected:
            parsed["drift"] = [d.to_dict() for d in drift]
    return result(ResultKind.OK, data=parsed)


def tested(cfg: InstanceConfig, state: ApiResult, settings: ApiResult | None) -> tuple[bool, str]:
    """A connection test's verdict, from its getStateInstance and (with ``expected_settings``) its
    getSettings compared with them: ``(ok, what to tell the user)``."""
    if not state.ok:
        return False, f"Instance {cfg.instance_id}: {state.error}"
    said = f"Instance {cfg.instance_id} answered in {state.response_time_ms} ms: state {state.data.get('stateInstance')!r}"
    if settings is None:
        return True, said
    if not settings.ok:
        return False, f"{said}; getSettings failed: {settings.error}"
    drift = [Drift.from_dict(d) for d in settings.data.get("drift", [])]
    missing = [d.key for d in drift if d.missing]
    if missing:
        return False, (f"{said}; extra expected_settings names key(s) that getSettings does not return: "
                       f"{', '.join(missing)}")  # fmt: skip
    if drift:
        return False, f"{said}; settings differ from expected_settings: {drift_text(tuple(drift), 'en')}"
    return True, f"{said}; the {len(cfg.expected_settings)} expected setting(s) match"


class _GreenApiConnection:
    """What both hooks share: the connection fields, validated, and the timeouts per method."""

    conn_name_attr = "green_api_conn_id"
    default_conn_name = "green_api_default"
    conn_type = CONN_TYPE
    hook_name = "Green API"

    green_api_conn_id: str
    _token: str | None

    def _configure(self, conn: Any) -> InstanceConfig:
        extra = conn.extra_dejson if conn.extra else {}
        cfg = instance_config(self.green_api_conn_id, conn.host, conn.login, conn.password, extra, conn.description)
        self._token = conn.password.strip() if conn.password else None
        return cfg

    def _url(self, cfg: InstanceConfig, method: str) -> str:
        return f"{cfg.api_url}/waInstance{cfg.instance_id}/{method}/{self._token}"

    @staticmethod
    def _timeout(cfg: InstanceConfig, method: str) -> float:
        return {"reboot": cfg.reboot_timeout, "sendMessage": cfg.send_timeout}.get(method, cfg.state_timeout)


class GreenApiHook(_GreenApiConnection, BaseHook):
    """Calls one Green API instance described by an Airflow connection.

    Connection fields: host = apiUrl (e.g. ``https://7105.api.greenapi.com``), login = idInstance,
    password = apiTokenInstance; extras ``state_timeout`` (s, default 10; also for getSettings,
    getWaSettings, getStatusInstance and showMessagesQueue), ``reboot_timeout`` (30), ``send_timeout`` (20) and
    ``dashboard_url`` (the link the monitoring DAGs put in this instance's alerts, read as ``config.dashboard_url``).

    Every method returns an :class:`ApiResult` and never raises for an API or network failure.
    Calls are paced within the API's per-instance, per-method limits (``pace=False`` to skip).
    """

    def __init__(self, green_api_conn_id: str = _GreenApiConnection.default_conn_name, *, pace: bool = True) -> None:
        super().__init__()
        self.green_api_conn_id = green_api_conn_id
        self.pace = pace
        self._token = None

    def __repr__(self) -> str:
        return f"GreenApiHook(green_api_conn_id={self.green_api_conn_id!r})"

    @cached_property
    def config(self) -> InstanceConfig:
        """The connection, validated (raises ConfigError naming the bad field); for a partner
        account's instance (``<partner connection id>/<idInstance>``), from the account's listing
        (PartnerApiError when it cannot be listed)."""
        partner = split_key(self.green_api_conn_id)
        if partner is None:
            return self._configure(self.get_connection(self.green_api_conn_id))
        account = GreenApiPartnerHook(partner[0]).account()
        cfg, self._token = partner_instance_config(account, self.green_api_conn_id, partner[1])
        return cfg

    def use_connection(self, conn: Any) -> None:
        """Take ``conn``, loaded and its secrets masked by the caller, instead of loading it by id."""
        self.__dict__["config"] = self._configure(conn)

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        session.trust_env = False  # a proxy from the environment would see the token-bearing path
        return session

    def get_state_instance(self, timeout: float | None = None) -> ApiResult:
        """``getStateInstance``: the instance's WhatsApp state, ``data["stateInstance"]``. A 429 is
        asked again once, at the instance's next free second: another process (the state watch in
        the triggerer) may have used this one."""
        result = self._call("getStateInstance", "GET", timeout)
        if result.http_status == 429 and self.pace:
            result = self._call("getStateInstance", "GET", timeout)
        return result

    def get_status_instance(self, timeout: float | None = None) -> ApiResult:
        """``getStatusInstance``: the socket to WhatsApp, ``data["statusInstance"]`` (online/offline)."""
        return self._call("getStatusInstance", "GET", timeout)

    def get_wa_settings(self, timeout: float | None = None) -> ApiResult:
        """``getWaSettings``: the WhatsApp account's phone, avatar, device and ``data["stateInstance"]``;
        its 1 request/s is counted apart from getStateInstance's."""
        return self._call("getWaSettings", "GET", timeout)

    def get_settings(self, timeout: float | None = None) -> ApiResult:
        """``getSettings``: the instance's settings; secret values (``webhookUrlToken``,
        ``proxyInstance``) come back as ``***``."""
        return self._call("getSettings", "GET", timeout)

    def show_messages_queue(self, timeout: float | None = None) -> ApiResult:
        """``showMessagesQueue``: the outgoing queue (first 500), as ``data["messages"]``."""
        return self._call("showMessagesQueue", "GET", timeout)

    def compare_settings(self, timeout: float | None = None) -> ApiResult:
        """``getSettings`` compared with the connection's extra ``expected_settings``:
        ``data["drift"]`` lists each key that differs (a secret's values are never kept), and the
        settings themselves come back with their secrets masked."""
        return self._call("getSettings", "GET", timeout, expected=self.config.expected_settings or None)

    def reboot(self, timeout: float | None = None) -> ApiResult:
        """``reboot``: restarts the instance; ``data["isReboot"]`` says whether it was accepted."""
        return self._call("reboot", "GET", timeout)

    def send_message(self, chat_id: str, message: str, timeout: float | None = None) -> ApiResult:
        """``sendMessage``: queues a WhatsApp text; ``data["idMessage"]`` on success."""
        return self._call("sendMessage", "POST", timeout, {"chatId": chat_id, "message": message})

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's Test button: getStateInstance, then, with ``expected_settings``, getSettings
        compared with it (a key it does not return is refused by name)."""
        try:
            cfg = self.config
        except ValueError as exc:
            return False, str(exc)
        state = self.get_state_instance()
        return tested(cfg, state, self.compare_settings() if state.ok and cfg.expected_settings else None)

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

    def _call(self, method: str, http_method: str, timeout: float | None, body: dict[str, Any] | None = None,
              expected: Mapping[str, Any] | None = None) -> ApiResult:  # fmt: skip
        cfg = self.config
        timeout = timeout or self._timeout(cfg, method)
        if self.pace:
            PACER.wait((cfg.api_url, cfg.instance_id, method), RATE_LIMITS.get(method, DEFAULT_RATE))
        started = time.monotonic()
        deadline = started + timeout

        def failed(kind: ResultKind, error: str) -> ApiResult:
            return ApiResult(method=method, kind=kind, response_time_ms=_ms_since(started), error=error)

        try:
            with self._session.request(
                http_method,
                self._url(cfg, method),
                json=body,
                timeout=(min(timeout, 5.0), timeout),
                stream=True,
                allow_redirects=False,
            ) as response:
                raw = self._read(self._chunks(response), deadline)
                status = response.status_code
        except _BodyError as exc:
            return failed(exc.kind, str(exc))
        except requests.Timeout:
            return failed(ResultKind.TIMEOUT, "Connection timeout")
        except requests.ConnectionError as exc:
            return failed(ResultKind.CONNECTION_ERROR, f"Connection error: {_connection_reason(exc)}")
        except requests.RequestException as exc:
            return failed(ResultKind.CONNECTION_ERROR, f"Request failed: {type(exc).__name__}")
        return interpret(method, status, raw, self._token, _ms_since(started), expected)


class GreenApiLegacyHook(GreenApiHook):
    """:class:`GreenApiHook` for connections of the type's former name, ``green_api``: they keep
    working, and ``make run`` and the compose init turn them into ``greenapi``."""

    conn_type = LEGACY_CONN_TYPE
    hook_name = "Green API (former type green_api)"


class GreenApiAsyncHook(_GreenApiConnection, BaseHook):
    """The async counterpart of :class:`GreenApiHook`, for triggers and async notifiers (``httpx``).

    Same connection, same answers (:class:`ApiResult`, never raising for an API or network
    failure), same pacing: the triggerer's triggers share one pacer per process, so many waits on
    one instance stay within its 1 request/s.
    """

    def __init__(self, green_api_conn_id: str = _GreenApiConnection.default_conn_name, *, pace: bool = True) -> None:
        super().__init__()
        self.green_api_conn_id = green_api_conn_id
        self.pace = pace
        self._token = None
        self._config: InstanceConfig | None = None

    def __repr__(self) -> str:
        return f"GreenApiAsyncHook(green_api_conn_id={self.green_api_conn_id!r})"

    async def aconfig(self) -> InstanceConfig:
        """The connection, validated (raises ConfigError naming the bad field)."""
        if self._config is None:
            partner = split_key(self.green_api_conn_id)
            if partner is None:
                self._config = self._configure(await self.aget_connection(self.green_api_conn_id))
            else:
                account = await GreenApiPartnerHook(partner[0]).aaccount()
                self._config, self._token = partner_instance_config(account, self.green_api_conn_id, partner[1])
        return self._config

    def use_connection(self, conn: Any) -> None:
        """Take ``conn``, loaded and its secrets masked by the caller, instead of loading it by id."""
        self._config = self._configure(conn)

    async def get_state_instance(self, timeout: float | None = None) -> ApiResult:
        """``getStateInstance``: the instance's WhatsApp state, ``data["stateInstance"]``."""
        return await self._call("getStateInstance", "GET", timeout)

    async def get_status_instance(self, timeout: float | None = None) -> ApiResult:
        """``getStatusInstance``: the socket to WhatsApp, ``data["statusInstance"]`` (online/offline)."""
        return await self._call("getStatusInstance", "GET", timeout)

    async def get_wa_settings(self, timeout: float | None = None) -> ApiResult:
        """``getWaSettings``: the WhatsApp account's phone, avatar, device and ``data["stateInstance"]``;
        its 1 request/s is counted apart from getStateInstance's."""
        return await self._call("getWaSettings", "GET", timeout)

    async def get_settings(self, timeout: float | None = None) -> ApiResult:
        """``getSettings``: the instance's settings; secret values come back as ``***``."""
        return await self._call("getSettings", "GET", timeout)

    async def show_messages_queue(self, timeout: float | None = None) -> ApiResult:
        """``showMessagesQueue``: the outgoing queue (first 500), as ``data["messages"]``."""
        return await self._call("showMessagesQueue", "GET", timeout)

    async def compare_settings(self, timeout: float | None = None) -> ApiResult:
        """``getSettings`` compared with the connection's extra ``expected_settings`` (see
        :meth:`GreenApiHook.compare_settings`)."""
        cfg = await self.aconfig()
        return await self._call("getSettings", "GET", timeout, expected=cfg.expected_settings or None)

    async def reboot(self, timeout: float | None = None) -> ApiResult:
        """``reboot``: restarts the instance; ``data["isReboot"]`` says whether it was accepted."""
        return await self._call("reboot", "GET", timeout)

    async def send_message(self, chat_id: str, message: str, timeout: float | None = None) -> ApiResult:
        """``sendMessage``: queues a WhatsApp text; ``data["idMessage"]`` on success."""
        return await self._call("sendMessage", "POST", timeout, {"chatId": chat_id, "message": message})

    async def test_connection(self) -> tuple[bool, str]:  # type: ignore[override]
        """The test of :meth:`GreenApiHook.test_connection`, awaited (for async code: the UI's Test
        button uses the sync hook)."""
        try:
            cfg = await self.aconfig()
        except ValueError as exc:
            return False, str(exc)
        state = await self.get_state_instance()
        return tested(cfg, state, await self.compare_settings() if state.ok and cfg.expected_settings else None)

    async def _call(
        self, method: str, http_method: str, timeout: float | None, body: dict[str, Any] | None = None,
        expected: Mapping[str, Any] | None = None,
    ) -> ApiResult:  # fmt: skip
        import httpx

        cfg = await self.aconfig()
        timeout = timeout or self._timeout(cfg, method)
        if self.pace:
            await PACER.await_slot((cfg.api_url, cfg.instance_id, method), RATE_LIMITS.get(method, DEFAULT_RATE))
        started = time.monotonic()

        def failed(kind: ResultKind, error: str) -> ApiResult:
            return ApiResult(method=method, kind=kind, response_time_ms=_ms_since(started), error=error)

        try:
            async with asyncio.timeout(timeout):
                async with _loop_client().stream(http_method, self._url(cfg, method), json=body,
                                                 timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))) as response:
                    raw = await self._aread(response)
                    status = response.status_code
        except _BodyError as exc:
            return failed(exc.kind, str(exc))
        except (TimeoutError, httpx.TimeoutException):
            return failed(ResultKind.TIMEOUT, "Connection timeout")
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            return failed(ResultKind.CONNECTION_ERROR, f"Connection error: {_connection_reason(exc)}")
        except httpx.HTTPError as exc:
            return failed(ResultKind.CONNECTION_ERROR, f"Request failed: {type(exc).__name__}")
        return interpret(method, status, raw, self._token, _ms_since(started), expected)

    @staticmethod
    async def _aread(response: httpx.Response) -> bytes:
        body = bytearray()
        async for chunk in response.aiter_raw():
            body.extend(chunk)
            if len(body) > MAX_BODY_BYTES:
                raise _BodyError(ResultKind.MALFORMED, f"response body larger than {MAX_BODY_BYTES} bytes")
        return bytes(body)


_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def _loop_client() -> Any:
    """The ``httpx.AsyncClient`` of the running event loop, made once: a client made per call
    loads its TLS context each time, milliseconds of CPU that were most of the state watch's cost
    (50 calls a second at 1,000 instances). Its connections are kept 30 s between calls; no
    proxy from the environment (it would see the token-bearing paths), no redirects."""
    import httpx

    loop = asyncio.get_running_loop()
    client = _CLIENTS.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            trust_env=False, follow_redirects=False, headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=128, keepalive_expiry=30.0))
        _CLIENTS[loop] = client
    return client


def _ms_since(started: float) -> int:
    return int(round((time.monotonic() - started) * 1000))


# ---- partner accounts: every instance of the account, with no connection of its own

MAX_LISTING_BYTES = 16 * 1024 * 1024
#: How long a process reuses an account's listing to resolve its instances' keys (s). The health
#: check's plan lists anew at every run; its tasks list once each.
LISTING_MAX_AGE = 120.0


class PartnerApiError(Exception):
    """The partner API did not list the account; the message names the connection and why, never a token."""


@dataclass(frozen=True)
class PartnerAccount:
    """One listing of a partner account, held in memory only (its instances carry their tokens)."""

    config: PartnerConfig
    instances: tuple[PartnerInstance, ...]
    listed_at: float  # time.monotonic()

    @cached_property
    def _by_id(self) -> dict[str, PartnerInstance]:
        return {i.instance_id: i for i in self.instances}

    def find(self, instance_id: str) -> PartnerInstance | None:
        """The instance with this idInstance, deleted or not (each of a task's hooks asks: by key, not a scan)."""
        return self._by_id.get(instance_id)


def _listing_failure(conn_id: str, what: str) -> PartnerApiError:
    return PartnerApiError(f"partner connection {conn_id!r}: getInstances failed: {what}")


def read_listing(cfg: PartnerConfig, status: int, raw: bytes, token: str) -> list[PartnerInstance]:
    """``getInstances``' answer as instances, or PartnerApiError saying what went wrong."""
    if status in (401, 403):
        raise _listing_failure(cfg.conn_id, f"HTTP {status}: the partner token was refused (the connection's password)")
    if status == 429:
        raise _listing_failure(cfg.conn_id, "HTTP 429: too many requests to the partner API")
    if not 200 <= status < 300:
        detail = _error_detail(raw, token)
        raise _listing_failure(cfg.conn_id, f"HTTP {status}" + (f": {detail}" if detail else ""))
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _listing_failure(cfg.conn_id, "the answer is not valid JSON") from None
    try:
        return parse_listing(payload, cfg.zone)
    except PartnerListingError as exc:
        raise _listing_failure(cfg.conn_id, str(exc)) from None


class _Listings:
    """The accounts this process listed, by partner connection id: one getInstances call resolves
    every key of the account while it is fresh, however many threads or triggers ask at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self._async_fetching: dict[tuple[int, str], asyncio.Lock] = {}
        self._accounts: dict[str, PartnerAccount] = {}
        self._masked: set[str] = set()

    def clear(self) -> None:
        """Forget every listing (a connection changed, or a test made new accounts)."""
        self._accounts.clear()

    def fresh(self, conn_id: str, max_age: float) -> PartnerAccount | None:
        account = self._accounts.get(conn_id)
        return account if account and time.monotonic() - account.listed_at <= max_age else None

    def keep(self, account: PartnerAccount) -> PartnerAccount:
        self._accounts[account.config.conn_id] = account
        return account

    def get(self, conn_id: str, max_age: float, fetch: Callable[[], PartnerAccount]) -> PartnerAccount:
        with self._lock:
            lock = self._fetching.setdefault(conn_id, threading.Lock())
        with lock:
            return self.fresh(conn_id, max_age) or self.keep(fetch())

    async def aget(self, conn_id: str, max_age: float, fetch: Callable[[], Awaitable[PartnerAccount]]) -> PartnerAccount:
        key = (id(asyncio.get_running_loop()), conn_id)
        lock = self._async_fetching.setdefault(key, asyncio.Lock())
        async with lock:
            return self.fresh(conn_id, max_age) or self.keep(await fetch())

    def mask(self, tokens: Iterable[str]) -> None:
        """Register tokens with Airflow's secrets masker, each once per process (in one update
        where the deployment expands bundles: see greenapi.masking)."""
        from greenapi.masking import mask_all

        with self._lock:
            new = [t for t in dict.fromkeys(tokens) if t and t not in self._masked]
            self._masked.update(new)
        if new:
            mask_all(new)


LISTINGS = _Listings()


class GreenApiPartnerHook(BaseHook):
    """Lists the instances of a Green API partner account (``getInstances``).

    Connection fields: host = partnerApiUrl (e.g. ``https://api.green-api.com``), password =
    partnerToken; extras ``api_url`` (the API URL of the account's instances, default
    ``https://api.green-api.com``), ``time_zone`` (what the account's timestamps are in, default
    ``Europe/Moscow``, UTC+3 like Green API's billing), ``partner_timeout`` (s, default 30), and
    what :class:`GreenApiHook` takes for each instance (``state_timeout``, ``reboot_timeout``,
    ``send_timeout``, ``dashboard_url``, ``expected_settings``).

    An instance of the account is called through ``GreenApiHook("<this connection id>/<idInstance>")``:
    its token is taken from a listing held in this process's memory, never stored or passed on.
    ``get_instances`` raises :class:`PartnerApiError` naming what failed (refused token, 429,
    5xx, bad JSON, no answer).
    """

    conn_name_attr = "green_api_partner_conn_id"
    default_conn_name = "green_api_partner"
    conn_type = "greenapipartner"
    hook_name = "Green API partner"

    def __init__(self, green_api_partner_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.green_api_partner_conn_id = green_api_partner_conn_id
        self._token: str | None = None
        self._config: PartnerConfig | None = None

    def __repr__(self) -> str:
        return f"GreenApiPartnerHook(green_api_partner_conn_id={self.green_api_partner_conn_id!r})"

    def _configure(self, conn: Any) -> PartnerConfig:
        extra = conn.extra_dejson if conn.extra else {}
        self._config = partner_config(self.green_api_partner_conn_id, conn.host, conn.password, extra)
        self._token = conn.password.strip()
        return self._config

    @property
    def config(self) -> PartnerConfig:
        """The connection, validated (raises ConfigError naming the bad field)."""
        return self._config or self._configure(self.get_connection(self.green_api_partner_conn_id))

    def _listing_url(self, cfg: PartnerConfig) -> str:
        return f"{cfg.url}/partner/getInstances/{self._token}"

    def get_instances(self) -> list[PartnerInstance]:
        """Every instance of the account (deleted ones of the last 3 months included), listed now."""
        return list(self.account(max_age=0).instances)

    def account(self, max_age: float = LISTING_MAX_AGE) -> PartnerAccount:
        """The account's listing, reused within ``max_age`` seconds in this process."""
        return LISTINGS.get(self.green_api_partner_conn_id, max_age, self._fetch)

    def _fetch(self) -> PartnerAccount:
        cfg = self.config
        assert self._token is not None
        try:
            with requests.Session() as session:
                session.trust_env = False
                with session.get(self._listing_url(cfg), timeout=(min(cfg.timeout, 5.0), cfg.timeout), stream=True,
                                 allow_redirects=False, headers={"User-Agent": USER_AGENT}) as response:  # fmt: skip
                    raw = b"".join(response.iter_content(65536))
                    if len(raw) > MAX_LISTING_BYTES:
                        raise _listing_failure(cfg.conn_id, f"the answer is larger than {MAX_LISTING_BYTES} bytes")
                    status = response.status_code
        except requests.Timeout:
            raise _listing_failure(cfg.conn_id, f"no answer within {cfg.timeout:g} s") from None
        except requests.RequestException as exc:
            raise _listing_failure(cfg.conn_id, f"connection error: {_connection_reason(exc)}") from None
        return PartnerAccount(cfg, tuple(read_listing(cfg, status, raw, self._token)), time.monotonic())

    async def aget_instances(self) -> list[PartnerInstance]:
        """:meth:`get_instances`, awaited (for triggers)."""
        return list((await self.aaccount(max_age=0)).instances)

    async def aaccount(self, max_age: float = LISTING_MAX_AGE) -> PartnerAccount:
        """:meth:`account`, awaited."""
        return await LISTINGS.aget(self.green_api_partner_conn_id, max_age, self._afetch)

    async def _afetch(self) -> PartnerAccount:
        import httpx

        cfg = self._config or self._configure(await self.aget_connection(self.green_api_partner_conn_id))
        assert self._token is not None
        try:
            async with httpx.AsyncClient(trust_env=False, follow_redirects=False, headers={"User-Agent": USER_AGENT},
                                         timeout=httpx.Timeout(cfg.timeout, connect=min(cfg.timeout, 5.0))) as client:  # fmt: skip
                async with asyncio.timeout(cfg.timeout), client.stream("GET", self._listing_url(cfg)) as response:
                    raw = bytearray()
                    async for chunk in response.aiter_raw():
                        raw.extend(chunk)
                        if len(raw) > MAX_LISTING_BYTES:
                            raise _listing_failure(cfg.conn_id, f"the answer is larger than {MAX_LISTING_BYTES} bytes")
                    status = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            raise _listing_failure(cfg.conn_id, f"no answer within {cfg.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise _listing_failure(cfg.conn_id, f"connection error: {_connection_reason(exc)}") from None
        return PartnerAccount(cfg, tuple(read_listing(cfg, status, bytes(raw), self._token)), time.monotonic())

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's Test button: lists the account and says what it holds."""
        started = time.monotonic()
        try:
            instances = self.get_instances()
        except (ConfigError, PartnerApiError) as exc:
            return False, str(exc)
        return True, f"Partner account listed in {_ms_since(started)} ms: {listing_summary(instances)}"


def listing_summary(instances: Sequence[PartnerInstance]) -> str:
    """How many instances an account lists, live by type, deleted, expired."""
    alive = [i for i in instances if not i.deleted]
    types = ", ".join(f"{n} {t}" for t, n in sorted(Counter(i.type_instance for i in alive).items())) or "none live"
    expired = sum(1 for i in alive if i.expired)
    return (f"{len(alive)} live instance(s) ({types}), {len(instances) - len(alive)} deleted"
            + (f", {expired} expired" if expired else ""))  # fmt: skip


def partner_instance_config(account: PartnerAccount, key: str, instance_id: str) -> tuple[InstanceConfig, str]:
    """The config and token of a partner account's instance, or ConfigError saying why it cannot be
    called (not in the account, deleted)."""
    found = account.find(instance_id)
    where = f"partner connection {account.config.conn_id!r}"
    if found is None:
        raise ConfigError(f"instance {instance_id} is not in the account of {where}")
    if found.deleted:
        when = f" on {found.time_deleted:%Y-%m-%d %H:%M %Z}" if found.time_deleted else ""
        raise ConfigError(f"instance {instance_id} was deleted from the account of {where}{when}")
    LISTINGS.mask([found.token])
    cfg = replace(account.config.instance, conn_id=key, instance_id=instance_id, name=found.name,
                  expires_at=found.expires_at, expired=found.expired)  # fmt: skip
    return cfg, found.token


# ---- many instances at once


class UnusableConnection(Exception):
    """A connection id that cannot be used; the message says why and what to do."""

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


def open_hook(conn_id: str, loaded: Mapping[str, Any] | None = None) -> GreenApiHook:
    """The hook of a connection, validated now rather than in the middle of a call.

    ``loaded``: connections already read (by :func:`greenapi.masking.load_connections`), where a
    missing or None entry means that no secrets backend has the id.
    """
    hook = GreenApiHook(conn_id)
    try:
        if loaded is None or split_key(conn_id) is not None:
            hook.config  # noqa: B018
        elif (conn := loaded.get(conn_id)) is None:
            raise AirflowNotFoundException(conn_id)
        else:
            hook.use_connection(conn)
    except AirflowNotFoundException:
        raise UnusableConnection(
            f"unknown connection id {conn_id!r}: create it (Admin > Connections, type Green API)", missing=True
        ) from None
    except (ConfigError, PartnerApiError) as exc:
        raise UnusableConnection(str(exc), missing=False) from None
    return hook


def open_hooks(conn_ids: Iterable[str], listed_in: str) -> tuple[list[GreenApiHook], list[str]]:
    """Hooks for the usable connections, and one problem per unusable one."""
    hooks, problems = [], []
    for conn_id in conn_ids:
        try:
            hooks.append(open_hook(conn_id))
        except UnusableConnection as exc:
            problems.append(f"{exc} (listed in {listed_in})")
    return hooks, problems


def listed_both_ways(conn_ids: Sequence[str], accounts: Mapping[str, PartnerAccount]) -> frozenset[str]:
    """The idInstance of each connection in ``conn_ids`` that a listed account also holds: such an
    instance is checked once, under its connection. Reads the connections only when an account was listed."""
    if not accounts or not conn_ids:
        return frozenset()
    held = {i.instance_id for account in accounts.values() for i in account.instances}

    def instance_id(conn_id: str) -> str | None:
        try:
            return (BaseHook.get_connection(conn_id).login or "").strip() or None
        except AirflowNotFoundException:
            return None  # the check names it

    return frozenset(i for i in in_parallel(16, list(conn_ids), instance_id) if i in held)


@dataclass(frozen=True)
class Expanded:
    """An instance list made concrete: ``keys`` to check, ``problems`` (accounts not listed, by
    connection id in ``unlisted``), ``both`` (the idInstance of the instances listed both ways) and
    the ``accounts`` listed."""

    keys: list[str]
    problems: list[str]
    both: frozenset[str]
    accounts: dict[str, PartnerAccount]
    unlisted: list[str]


def expand_instances(wanted: InstanceList, max_age: float = LISTING_MAX_AGE, both: frozenset[str] | None = None,
                     ) -> Expanded:  # fmt: skip
    """The keys to check for an instance list: its connection ids, then every live instance of each
    partner account (one ``getInstances`` per account, unless listed within ``max_age`` seconds),
    except those also listed as a connection (``both``: their idInstance, found here when None).
    An account that cannot be listed adds none of its instances, and one problem."""
    accounts: dict[str, PartnerAccount] = {}
    problems, unlisted = [], []
    for source in wanted.partners:
        try:
            accounts[source.conn_id] = GreenApiPartnerHook(source.conn_id).account(max_age)
        except (ConfigError, PartnerApiError) as exc:
            problems.append(f"{exc}: none of the account's instances checked (none taken for deleted)")
            unlisted.append(source.conn_id)
    if both is None:
        both = listed_both_ways(wanted.conn_ids, accounts)
    listings = {conn_id: list(account.instances) for conn_id, account in accounts.items()}
    return Expanded(expand(wanted.conn_ids, wanted.partners, listings, both), problems, both, accounts, unlisted)


def in_parallel(max_concurrency: int, items: list[T], work: Callable[[T], R]) -> list[R]:
    """``work`` over ``items`` concurrently, at most ``max_concurrency`` at once, order kept."""
    if not items:
        return []
    workers = max(1, min(max_concurrency, len(items)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="greenapi") as pool:
        return list(pool.map(work, items))

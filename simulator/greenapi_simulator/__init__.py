"""A Green API (WhatsApp HTTP API) simulator for tests and demos.

It serves the real URL scheme ``/waInstance{idInstance}/{method}/{apiTokenInstance}`` for the
methods a monitor uses, enforces the vendor's per-instance rate limits, and can inject the
failures seen in the wild (hangs, resets, HTTP errors, broken bodies, ...). It also serves the
partner API (``/partner/{method}/{partnerToken}``: a partner account's whole fleet, listed, created
and deleted). A JSON control API under ``/_sim/`` configures instances and partner accounts and
exposes what clients sent.

In-process::

    with GreenApiSimulator() as sim:
        sim.add_instance("1101000001", "secret", state="notAuthorized")
        requests.get(f"{sim.url}/waInstance1101000001/getStateInstance/secret")

Command line::

    python -m greenapi_simulator --port 8765 --instance 1101000001:secret --partner partner-secret:5 --demo
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

#: Green API method name -> the HTTP verb it answers to.
ROUTES: dict[str, str] = {
    "getStateInstance": "GET",
    "getStatusInstance": "GET",
    "reboot": "GET",
    "getSettings": "GET",
    "getWaSettings": "GET",
    "showMessagesQueue": "GET",
    "sendMessage": "POST",
}

#: Green API partner method name (``/partner/{method}/{partnerToken}``) -> the HTTP verb it answers to.
PARTNER_ROUTES: dict[str, str] = {
    "getInstances": "GET",
    "createInstance": "POST",
    "deleteInstanceAccount": "POST",
}

#: Requests per second allowed per instance and per method (vendor documentation).
RATE_LIMITS: dict[str, int] = {
    "getStateInstance": 1,
    "getStatusInstance": 1,
    "reboot": 1,
    "getSettings": 1,
    "getWaSettings": 1,
    "showMessagesQueue": 1,  # not in the vendor's table: assumed like the other reads
    "sendMessage": 50,
}
RATE_WINDOW_SECONDS = 1.0

FAULT_MODES: tuple[str, ...] = (
    "hang",
    "reset",
    "http",
    "malformed",
    "delay",
    "trickle",
    "big",
    "non_utf8",
    "redirect",
)
# Extra keys each fault mode accepts besides mode/times/process/chat_id (chat_id: only requests to
# that chat, by the body's chatId, take the fault).
_FAULT_FIELDS: dict[str, frozenset[str]] = {
    "hang": frozenset({"seconds"}),
    "reset": frozenset(),
    "http": frozenset({"status", "body", "content_type"}),
    "malformed": frozenset(),
    "delay": frozenset({"ms"}),
    "trickle": frozenset({"interval_ms"}),
    "big": frozenset({"bytes"}),
    "non_utf8": frozenset(),
    "redirect": frozenset({"location", "status"}),
}
# These modes only change how a normal answer is delivered, so the request is always processed.
_TRANSPORT_ONLY_MODES = frozenset({"delay", "trickle"})

DEFAULT_CONFIG: dict[str, Any] = {
    "state": "authorized",
    "latency_ms": 0,
    "reboot_result": True,
    "starting_seconds": 0,
    "state_after_reboot": "authorized",
    "rate_limits": True,
    "faults": {},
    "cycle": None,
    "settings": {},  # getSettings keys that differ from DEFAULT_SETTINGS
    "queue_length": 0,  # messages in the outgoing queue (showMessagesQueue)
    "queue_growth": 0,  # messages added to the queue by each showMessagesQueue call (negative: sent)
    "socket_status": None,  # getStatusInstance: "online" or "offline"; None follows the state
}

#: What getSettings answers for an instance whose ``settings`` were not scripted.
DEFAULT_SETTINGS: dict[str, Any] = {
    "webhookUrl": "",
    "webhookUrlToken": "",
    "delaySendMessagesMilliseconds": 500,
    "markIncomingMessagesReaded": "no",
    "markIncomingMessagesReadedOnReply": "no",
    "outgoingWebhook": "yes",
    "outgoingMessageWebhook": "yes",
    "outgoingAPIMessageWebhook": "yes",
    "incomingWebhook": "yes",
    "stateWebhook": "no",
    "incomingCallWebhook": "yes",
    "keepOnlineStatus": "no",
    "pollMessageWebhook": "no",
    "proxyInstance": "",
}
_CONFIG_KEYS = frozenset(DEFAULT_CONFIG) | {"token"}
_PHASE_KEYS = (_CONFIG_KEYS - {"token", "cycle"}) | {"seconds"}
# A partner account's own keys; the others are the config of the instances it creates.
_PARTNER_OWN_KEYS = frozenset({"count", "id_start", "type_instance", "faults"})
_PARTNER_CONFIG_KEYS = _PARTNER_OWN_KEYS | (_CONFIG_KEYS - {"token", "faults"})
#: What ``set_partner_instance`` scripts about an instance of a partner account.
PARTNER_INSTANCE_FIELDS = ("name", "type_instance", "expiration_date", "is_expired", "deleted", "tariff")

# Partner billing runs at 00:00 UTC+3: the partner API's timestamps are naive wall time there.
PARTNER_TZ = timezone(timedelta(hours=3))
NOT_DELETED = "0001-01-01T00:00:00"
PARTNER_RETENTION = timedelta(days=90)  # deleted instances stay listed for the last 3 months
PARTNER_TERM = timedelta(days=30)  # a new instance's expirationDate
DEFAULT_PARTNER_ID_START = 1103000001
MAX_PARTNER_COUNT = 100_000

DEFAULT_HANG_SECONDS = 3600.0
DEFAULT_TRICKLE_INTERVAL_MS = 500.0
DEFAULT_BIG_BYTES = 50 * 1024 * 1024
DEFAULT_REDIRECT_LOCATION = "http://127.0.0.2:9/elsewhere"
NON_UTF8_BODY = b"\xff\xfe{\x80}"
MAX_MESSAGE_CHARS = 20000
MAX_REQUEST_BODY = 5 * 1024 * 1024
MAX_RECORDS = 100_000

_PERSONAL_CHAT = re.compile(r"[0-9]+@c\.us")
_GROUP_CHAT = re.compile(r"[0-9-]+@g\.us")
_API_PATH = re.compile(r"/waInstance([^/]+)/([^/]+)/([^/]+)/?")
_PARTNER_PATH = re.compile(r"/partner/([^/]+)/([^/]+)/?")
_TOKEN_IN_TEXT = re.compile(r"(/waInstance[^/\s]+/[^/\s]+/|/partner/[^/\s]+/|/_sim/partners/)[^/\s'\"?]+")

DEMO_AUTHORIZED_ID = "1101000001"
DEMO_CYCLING_ID = "1101000002"
DEMO_SENDER_ID = "1101000009"
#: Demo instance id -> (environment variable holding its token, default token).
DEMO_TOKENS: dict[str, tuple[str, str]] = {
    DEMO_AUTHORIZED_ID: ("GREENAPI_DEMO_TOKEN_1", "demo-token-1"),
    DEMO_CYCLING_ID: ("GREENAPI_DEMO_TOKEN_2", "demo-token-2"),
    DEMO_SENDER_ID: ("GREENAPI_DEMO_TOKEN_9", "demo-token-9"),
}
#: The demo partner account: (environment variable holding its partner token, default token).
DEMO_PARTNER_TOKEN: tuple[str, str] = ("GREENAPI_DEMO_PARTNER_TOKEN", "demo-partner-token")
#: Its instances, as DEMO_TOKENS; the last one expires in 2 days.
DEMO_PARTNER_TOKENS: dict[str, tuple[str, str]] = {
    "1101100001": ("GREENAPI_DEMO_TOKEN_P1", "demo-token-p1"),
    "1101100002": ("GREENAPI_DEMO_TOKEN_P2", "demo-token-p2"),
    "1101100003": ("GREENAPI_DEMO_TOKEN_P3", "demo-token-p3"),
}
DEMO_EXPIRING_ID = "1101100003"


class SimulatorConfigError(ValueError):
    """An instance configuration or fault spec was rejected; the message names the field."""


def redact(text: str) -> str:
    """Replace the token segment of any Green API URL path in ``text`` (instance, partner and
    ``/_sim/partners/`` paths) with ``***``."""
    return _TOKEN_IN_TEXT.sub(r"\1***", text)


# --------------------------------------------------------------------------- validation


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise SimulatorConfigError(f"{where}: {problem}")


def _check_number(where: str, value: Any, *, positive: bool = False) -> None:
    _require(_is_number(value), where, f"must be a number, got {value!r}")
    if positive:
        _require(value > 0, where, f"must be > 0, got {value!r}")
    else:
        _require(value >= 0, where, f"must be >= 0, got {value!r}")


def _check_int(where: str, value: Any, low: int, high: int | None = None) -> None:
    in_range = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if high is not None:
        in_range = in_range and value <= high
    bounds = f">= {low}" if high is None else f"in {low}..{high}"
    _require(in_range, where, f"must be an integer {bounds}, got {value!r}")


def _validate_fault(where: str, spec: Any) -> dict[str, Any]:
    _require(isinstance(spec, dict), where, f"fault spec must be an object, got {spec!r}")
    mode = spec.get("mode")
    _require(
        mode in FAULT_MODES,
        f"{where}.mode",
        f"unknown fault mode {mode!r} (expected one of {', '.join(FAULT_MODES)})",
    )
    allowed = _FAULT_FIELDS[mode] | {"mode", "times", "process", "chat_id"}
    for key in spec:
        _require(key in allowed, f"{where}.{key}", f"unknown field for fault mode {mode!r}")
    if "times" in spec:
        _check_int(f"{where}.times", spec["times"], 1)
    if "process" in spec:
        _require(isinstance(spec["process"], bool), f"{where}.process", "must be true or false")
    if "chat_id" in spec:
        _require(isinstance(spec["chat_id"], str) and bool(spec["chat_id"]), f"{where}.chat_id",
                 "must be a chat id such as '33612345678@c.us'")
    for key in ("seconds", "ms"):
        if key in spec:
            _check_number(f"{where}.{key}", spec[key])
    if "interval_ms" in spec:
        _check_number(f"{where}.interval_ms", spec["interval_ms"], positive=True)
    if "bytes" in spec:
        _check_int(f"{where}.bytes", spec["bytes"], 0)
    if "status" in spec:
        _check_int(f"{where}.status", spec["status"], 100, 599)
    if "body" in spec:
        _require(
            isinstance(spec["body"], (str, dict, list)),
            f"{where}.body",
            "must be a string or a JSON object/array",
        )
    for key in ("content_type", "location"):
        if key in spec:
            _require(isinstance(spec[key], str), f"{where}.{key}", "must be a string")
    return copy.deepcopy(spec)


def _validate_value(where: str, key: str, value: Any) -> Any:
    if key == "token":
        _require(
            isinstance(value, str) and value != "" and "/" not in value,
            where,
            "must be a non-empty string without '/'",
        )
    elif key in ("state", "state_after_reboot"):
        _require(value is None or isinstance(value, str), where, "must be a string or null")
    elif key in ("latency_ms", "starting_seconds"):
        _check_number(where, value)
    elif key == "queue_length":
        _check_int(where, value, 0)
    elif key == "queue_growth":
        _require(isinstance(value, int) and not isinstance(value, bool), where,
                 f"must be a whole number of messages (negative: the queue drains), got {value!r}")  # fmt: skip
    elif key == "socket_status":
        _require(value in (None, "online", "offline"), where, f'must be "online", "offline" or null, got {value!r}')
    elif key == "settings":
        _require(isinstance(value, dict) and all(isinstance(k, str) for k in value), where,
                 "must be an object of getSettings key -> value")  # fmt: skip
    elif key in ("reboot_result", "rate_limits"):
        _require(isinstance(value, bool), where, f"must be true or false, got {value!r}")
    elif key == "faults":
        return _validate_faults(where, value, ROUTES)
    elif key == "cycle":
        if value is None:
            return None
        _require(
            isinstance(value, list) and len(value) > 0,
            where,
            "must be a non-empty list of phases or null",
        )
        return [_validate_phase(f"{where}[{i}]", phase) for i, phase in enumerate(value)]
    return copy.deepcopy(value)


def _validate_faults(where: str, value: Any, methods: Collection[str]) -> dict[str, Any]:
    if value is None:
        return {}
    _require(isinstance(value, dict), where, "must be an object of method -> fault spec")
    faults = {}
    for method, spec in value.items():
        _require(
            method in methods or method == "*",
            f"{where}.{method}",
            f"unknown method {method!r} (expected '*' or one of {', '.join(methods)})",
        )
        faults[method] = _validate_fault(f"{where}.{method}", spec)
    return faults


def _validate_phase(where: str, phase: Any) -> dict[str, Any]:
    _require(isinstance(phase, dict), where, "a cycle phase must be an object")
    _require("seconds" in phase, f"{where}.seconds", "required")
    _check_number(f"{where}.seconds", phase["seconds"], positive=True)
    out: dict[str, Any] = {"seconds": phase["seconds"]}
    for key, value in phase.items():
        _require(key in _PHASE_KEYS, f"{where}.{key}", "not allowed in a cycle phase")
        if key != "seconds":
            out[key] = _validate_value(f"{where}.{key}", key, value)
    return out


def validate_config(raw: Any, *, creating: bool) -> dict[str, Any]:
    """Check an instance configuration (or a partial one when not ``creating``).

    Returns a normalised deep copy; raises :class:`SimulatorConfigError` naming the bad key.
    """
    if not isinstance(raw, dict):
        raise SimulatorConfigError(f"config: must be a JSON object, got {type(raw).__name__}")
    for key in raw:
        _require(key in _CONFIG_KEYS, str(key), "unknown config key")
    if creating:
        _require("token" in raw, "token", "required")
    return {key: _validate_value(key, key, value) for key, value in raw.items()}


def validate_partner_config(raw: Any, *, creating: bool) -> dict[str, Any]:
    """Check a partner account's configuration (or a change to it when not ``creating``).

    Its own keys are ``count`` (instances created with the account), ``id_start`` (the first id it
    gives), ``type_instance`` and ``faults`` (per partner method, as an instance's); any other
    instance config key but ``token`` configures the instances it creates. Returns a normalised deep
    copy; raises :class:`SimulatorConfigError` naming the bad key.
    """
    if not isinstance(raw, dict):
        raise SimulatorConfigError(f"config: must be a JSON object, got {type(raw).__name__}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        _require(key in _PARTNER_CONFIG_KEYS, str(key),
                 "unknown key (expected count, id_start, type_instance, faults or an instance config key)")  # fmt: skip
        _require(creating or key not in ("count", "id_start"), key, "only when the account is created (PUT)")
        if key == "count":
            _check_int(key, value, 0, MAX_PARTNER_COUNT)
        elif key == "id_start":
            _check_int(key, value, 1, 9_999_999_999)
        elif key == "type_instance":
            _check_text(key, value, empty=False)
        elif key == "faults":
            value = _validate_faults(key, value, PARTNER_ROUTES)
        else:
            value = _validate_value(key, key, value)
        out[key] = copy.deepcopy(value)
    return out


def validate_partner_fields(raw: Any) -> dict[str, Any]:
    """Check what is scripted about an instance of a partner account (:data:`PARTNER_INSTANCE_FIELDS`);
    ``expiration_date`` becomes a naive datetime (UTC+3 wall time)."""
    if not isinstance(raw, dict):
        raise SimulatorConfigError(f"fields: must be a JSON object, got {type(raw).__name__}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        _require(key in PARTNER_INSTANCE_FIELDS, str(key),
                 f"unknown field (expected one of {', '.join(PARTNER_INSTANCE_FIELDS)})")  # fmt: skip
        if key in ("name", "tariff", "type_instance"):
            _check_text(key, value, empty=key != "type_instance")
        elif key == "deleted":
            _require(isinstance(value, bool), key, f"must be true or false, got {value!r}")
        elif key == "is_expired":
            _require(value is None or isinstance(value, bool), key,
                     f"must be true, false or null (null: expired once expiration_date is past), got {value!r}")  # fmt: skip
        elif key == "expiration_date":
            value = _naive_time(key, value)
        out[key] = value
    return out


def _check_text(where: str, value: Any, *, empty: bool = True) -> None:
    _require(isinstance(value, str) and (empty or value != ""), where,
             f"must be a {'' if empty else 'non-empty '}string, got {value!r}")  # fmt: skip


def _naive_time(where: str, value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None:
        raise SimulatorConfigError(f"{where}: must be a date and time without a zone, in UTC+3 wall time "
                                   f"(e.g. '2025-07-01T00:00:00'), got {value!r}")  # fmt: skip
    return parsed.replace(microsecond=0)


def _create_fields(body: Any) -> dict[str, Any]:
    """A createInstance body: ``name`` and getSettings keys such as ``webhookUrl``."""
    body = {} if body is None else body
    _require(isinstance(body, dict), "body", "must be a JSON object")
    if "name" in body:
        _check_text("name", body["name"])
    return copy.deepcopy(body)


# --------------------------------------------------------------------------- state


@dataclass
class _Instance:
    instance_id: str
    config: dict[str, Any]
    cycle_origin: float
    starting_until: float = 0.0
    windows: dict[str, deque[float]] = field(default_factory=dict)

    def phase(self, now: float) -> tuple[int, dict[str, Any]] | None:
        cycle: list[dict[str, Any]] | None = self.config.get("cycle")
        if not cycle:
            return None
        total = sum(float(p["seconds"]) for p in cycle)
        offset = (now - self.cycle_origin) % total
        for index, phase in enumerate(cycle):
            if offset < phase["seconds"]:
                return index, phase
            offset -= phase["seconds"]
        return len(cycle) - 1, cycle[-1]  # float rounding at the very end of the cycle

    def effective_config(self, now: float) -> dict[str, Any]:
        merged = dict(self.config)
        current = self.phase(now)
        if current is not None:
            phase = current[1]
            for key, value in phase.items():
                if key == "faults":
                    merged["faults"] = {**self.config["faults"], **value}
                elif key != "seconds":
                    merged[key] = value
        return merged

    def effective_state(self, now: float) -> str | None:
        if now < self.starting_until:
            return "starting"
        state: str | None = self.effective_config(now)["state"]
        return state

    def take_fault(self, method: str, now: float, chat_id: str | None = None) -> dict[str, Any] | None:
        """Pick the fault in force for ``method`` (and this chat, if the fault names one) and use up
        one of its ``times``."""
        current = self.phase(now)
        sources = [current[1].get("faults", {})] if current is not None else []
        sources.append(self.config["faults"])
        return _use_fault(sources, method, chat_id)

    def admit(self, method: str, now: float) -> bool:
        """Sliding-window rate limit; refused requests are not counted."""
        window = self.windows.setdefault(method, deque())
        while window and now - window[0] >= RATE_WINDOW_SECONDS:
            window.popleft()
        if len(window) >= RATE_LIMITS[method]:
            return False
        window.append(now)
        return True

    def public_view(self, now: float) -> dict[str, Any]:
        view = copy.deepcopy(self.config)
        view["token"] = "***"
        view["instance_id"] = self.instance_id
        view["effective_state"] = self.effective_state(now)
        current = self.phase(now)
        view["cycle_phase"] = None if current is None else current[0]
        return view


def _use_fault(
    sources: list[dict[str, Any]], method: str, chat_id: str | None = None
) -> dict[str, Any] | None:
    """The first fault for ``method``, then for ``"*"``, in ``sources`` (for this chat, if the fault
    names one), with one of its ``times`` used up."""
    for key in (method, "*"):
        for faults in sources:
            spec = faults.get(key)
            if spec is None or spec.get("chat_id", chat_id) != chat_id:
                continue
            chosen = dict(spec)
            if "times" in spec:
                spec["times"] -= 1
                if spec["times"] <= 0:
                    del faults[key]
            return chosen
    return None


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


@dataclass
class _PartnerInstance:
    """What the partner API says about an instance of the account, besides its token."""

    name: str
    type_instance: str
    time_created: datetime
    expiration_date: datetime
    tariff: str = "Business"
    is_expired: bool | None = None  # None: expired once expiration_date has passed
    time_deleted: datetime | None = None
    removed: _Instance | None = None  # the instance itself while deleted: its /waInstance calls get 403

    def row(self, instance_id: str, token: str, now: datetime) -> dict[str, Any]:
        """The instance as getInstances lists it."""
        expired = self.expiration_date <= now if self.is_expired is None else self.is_expired
        return {
            "idInstance": int(instance_id), "name": self.name, "typeInstance": self.type_instance,
            "typeAccount": "", "partnerUserUiid": "", "timeCreated": _stamp(self.time_created),
            "timeDeleted": NOT_DELETED if self.time_deleted is None else _stamp(self.time_deleted),
            "apiTokenInstance": token, "deleted": self.time_deleted is not None, "tariff": self.tariff,
            "isFree": False, "isPartner": True, "expirationDate": _stamp(self.expiration_date),
            "isExpired": expired,
        }  # fmt: skip


@dataclass
class _Partner:
    template: dict[str, Any]  # the config of the instances it creates
    type_instance: str
    next_id: int
    faults: dict[str, Any]
    instances: dict[str, _PartnerInstance] = field(default_factory=dict)  # in creation order


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(status: int, payload: Any) -> _Reply:
    return _Reply(status, json.dumps(payload).encode())


def _message_reply(status: int, message: str) -> _Reply:
    return _json_reply(status, {"message": message})


# --------------------------------------------------------------------------- simulator


class GreenApiSimulator:
    """An in-process Green API server with a JSON control API under ``/_sim/``.

    Instances and records live in this object, so they can be set up before ``start()``
    and inspected after ``stop()``. All public methods are thread-safe.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._lock = threading.RLock()
        self._recorded = threading.Condition(self._lock)  # notified at each request received
        self._clock_offset = 0.0  # seconds the simulator's clock is ahead of the monotonic clock (advance())
        self._stopping = threading.Event()
        self._instances: dict[str, _Instance] = {}
        self._partners: dict[str, _Partner] = {}  # by partner token
        self._requests: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDS)
        self._messages: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDS)
        self._reboots: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDS)
        self._seq = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> GreenApiSimulator:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._stopping.clear()
        server = _Server((self.host, self.port), self)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"greenapi-simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, releasing hanging requests and dropping open connections."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=2)
        self._server = None
        self._thread = None

    def __enter__(self) -> GreenApiSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43121`` (available once started)."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ---- the simulator's clock: what timed behaviour reads (rate limits, reboots, cycles)

    def _now(self) -> float:
        return time.monotonic() + self._clock_offset

    def _wall_now(self) -> datetime:
        """The partner API's time: naive UTC+3 wall time, moved on by :meth:`advance` too."""
        now = datetime.fromtimestamp(time.time() + self._clock_offset, PARTNER_TZ)
        return now.replace(tzinfo=None, microsecond=0)

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward: a reboot's ``starting_seconds``, the rate-limit window
        and the cycle's phases pass at once, without waiting for them."""
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= 86400:
            raise ValueError(f"advance: seconds must be a number from 0 to 86400, got {seconds!r}")
        with self._lock:
            self._clock_offset += float(seconds)

    def wait_for_requests(self, count: int = 1, timeout: float = 10, instance_id: str | None = None,
                          method: str | None = None) -> list[dict[str, Any]]:
        """The requests received (filtered as :meth:`requests_log`), once there are ``count`` of
        them; raises ``TimeoutError`` after ``timeout`` seconds."""
        with self._recorded:
            if not self._recorded.wait_for(lambda: len(self.requests_log(instance_id, method)) >= count, timeout):
                raise TimeoutError(f"fewer than {count} request(s) received in {timeout} s")
            return self.requests_log(instance_id, method)

    # ---- configuration

    def add_instance(self, instance_id: str, token: str, **config: Any) -> None:
        """Create or replace an instance; unspecified keys take :data:`DEFAULT_CONFIG`."""
        self.put_instance(instance_id, {"token": token, **config})

    def put_instance(self, instance_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an instance from a full config dict; returns its public view."""
        checked = validate_config(config, creating=True)
        now = self._now()
        with self._lock:
            inst = _Instance(instance_id, {**copy.deepcopy(DEFAULT_CONFIG), **checked}, now)
            self._instances[instance_id] = inst
            return inst.public_view(now)

    def configure(self, instance_id: str, **config: Any) -> None:
        """Merge keys into an instance's config (top-level keys replace, ``faults`` included)."""
        self.patch_instance(instance_id, config)

    def patch_instance(self, instance_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """Merge a partial config; raises ``KeyError`` for an unknown instance."""
        checked = validate_config(config, creating=False)
        now = self._now()
        with self._lock:
            inst = self._instances[instance_id]
            inst.config.update(checked)
            if "cycle" in checked:
                inst.cycle_origin = now
            if "state" in checked:
                inst.starting_until = 0.0  # an explicit state overrides a reboot in progress
            return inst.public_view(now)

    def remove_instance(self, instance_id: str) -> None:
        """Delete an instance (from its partner account's listing too); raises ``KeyError`` if unknown."""
        with self._lock:
            del self._instances[instance_id]
            for partner in self._partners.values():
                partner.instances.pop(instance_id, None)

    def instance(self, instance_id: str) -> dict[str, Any]:
        """The instance's config with the token masked, plus ``effective_state``."""
        with self._lock:
            return self._instances[instance_id].public_view(self._now())

    def instances(self) -> list[dict[str, Any]]:
        """Public views of every instance."""
        now = self._now()
        with self._lock:
            return [inst.public_view(now) for inst in self._instances.values()]

    def effective_state(self, instance_id: str) -> str | None:
        """The state getStateInstance would answer right now."""
        with self._lock:
            return self._instances[instance_id].effective_state(self._now())

    def add_demo_instances(self, scale: float = 1.0) -> list[str]:
        """Create the demo instances and the demo partner account (:data:`DEMO_PARTNER_TOKENS`);
        ``scale`` multiplies the cycle phase lengths."""
        # Starts failing so that a newcomer sees an alert at the first check, then a reboot.
        cycle = [
            {"seconds": 300 * scale, "state": "notAuthorized"},
            {
                "seconds": 300 * scale,
                "state": "authorized",
                "faults": {"getStateInstance": {"mode": "hang"}},
            },
            {"seconds": 600 * scale, "state": "authorized"},
        ]
        for instance_id, (env_var, default) in DEMO_TOKENS.items():
            token = os.environ.get(env_var) or default
            extra = {"cycle": cycle} if instance_id == DEMO_CYCLING_ID else {}
            self.add_instance(instance_id, token, **extra)
        env_var, default = DEMO_PARTNER_TOKEN
        partner_token = os.environ.get(env_var) or default
        self.add_partner(partner_token)
        for n, (instance_id, (env_var, default)) in enumerate(DEMO_PARTNER_TOKENS.items(), 1):
            api_token = os.environ.get(env_var) or default
            self.create_partner_instance(partner_token, id_instance=int(instance_id), api_token=api_token,
                                         name=f"Client {n:03d}")  # fmt: skip
        expiring = self._wall_now() + timedelta(days=2)
        self.set_partner_instance(DEMO_EXPIRING_ID, expiration_date=_stamp(expiring))
        return [*DEMO_TOKENS, *DEMO_PARTNER_TOKENS]

    # ---- partner accounts: the partner API, /partner/{method}/{partnerToken}

    def add_partner(
        self,
        token: str,
        *,
        count: int = 0,
        id_start: int | None = None,
        type_instance: str = "whatsapp",
        faults: dict[str, Any] | None = None,
        **instance_config: Any,
    ) -> list[str]:
        """Create or replace a partner account with ``count`` instances ("Client 001", ...: random
        tokens, ids from ``id_start``, expiring in 30 days); ``faults`` script its partner methods,
        ``instance_config`` configures every instance it creates. Returns the new instance ids."""
        config = dict(instance_config, count=count, type_instance=type_instance, faults=faults)
        if id_start is not None:
            config["id_start"] = id_start
        return [str(row["idInstance"]) for row in self.put_partner(token, config)["instances"]]

    def put_partner(self, token: str, config: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a partner account (:func:`validate_partner_config`); a replaced account's
        instances are removed. Returns the account's view."""
        _validate_value("partner token", "token", token)
        checked = validate_partner_config(config, creating=True)
        with self._lock:
            if token in self._partners:
                self.remove_partner(token)
            partner = _Partner(
                template={k: v for k, v in checked.items() if k not in _PARTNER_OWN_KEYS},
                type_instance=checked.get("type_instance", "whatsapp"),
                next_id=checked.get("id_start", DEFAULT_PARTNER_ID_START),
                faults=checked.get("faults", {}),
            )
            self._partners[token] = partner
            for _ in range(checked.get("count", 0)):
                self._create_partner_instance(partner, {})
            return self._partner_view(partner)

    def patch_partner(self, token: str, config: dict[str, Any]) -> dict[str, Any]:
        """Change a partner account's ``faults`` (replaced as a whole), ``type_instance`` or the config
        of the instances it will create; raises ``KeyError`` for an unknown account."""
        checked = validate_partner_config(config, creating=False)
        with self._lock:
            partner = self._partner(token)
            partner.faults = checked.pop("faults", partner.faults)
            partner.type_instance = checked.pop("type_instance", partner.type_instance)
            partner.template.update(checked)
            return self._partner_view(partner)

    def remove_partner(self, token: str) -> None:
        """Delete a partner account and its instances; raises ``KeyError`` if unknown."""
        with self._lock:
            for instance_id in self._partner(token).instances:
                self._instances.pop(instance_id, None)
            del self._partners[token]

    def partner(self, token: str) -> dict[str, Any]:
        """The account's configuration and its getInstances listing, tokens masked."""
        with self._lock:
            return self._partner_view(self._partner(token))

    def create_partner_instance(
        self,
        partner_token: str,
        *,
        id_instance: int | None = None,
        api_token: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """What createInstance does: a new instance in the account, ``fields`` being its body (``name``
        and getSettings keys such as ``webhookUrl``). ``id_instance`` and ``api_token`` choose what the
        simulator would pick. Returns createInstance's answer, token included."""
        checked = _create_fields(fields)
        if id_instance is not None:
            _check_int("id_instance", id_instance, 1, 9_999_999_999)
        if api_token is not None:
            _validate_value("api_token", "token", api_token)
        with self._lock:
            partner = self._partner(partner_token)
            _require(id_instance is None or not self._id_taken(str(id_instance)), "id_instance",
                     f"instance {id_instance} exists already")  # fmt: skip
            instance_id, token = self._create_partner_instance(partner, checked, id_instance, api_token)
            return self._created_answer(instance_id, token, partner.type_instance)

    def delete_partner_instance(self, partner_token: str, instance_id: str) -> bool:
        """What deleteInstanceAccount does: the instance stays listed, deleted; its /waInstance calls
        get 403. False when the account has no such instance or it was deleted already."""
        with self._lock:
            return self._delete_partner_instance(self._partner(partner_token), str(instance_id))

    def set_partner_instance(self, instance_id: str, **fields: Any) -> dict[str, Any]:
        """Script what the partner API lists about an instance (:data:`PARTNER_INSTANCE_FIELDS`:
        ``expiration_date`` naive ISO text in UTC+3, ``deleted`` stamps ``timeDeleted`` with the
        simulator's clock, or undeletes); raises ``KeyError`` if no account has the instance.
        Returns its listing, token masked."""
        checked = validate_partner_fields(fields)
        with self._lock:
            for partner in self._partners.values():
                if instance_id in partner.instances:
                    return self._set_fields(partner, instance_id, checked)
            raise KeyError(f"no partner account has instance {instance_id!r}")

    def patch_partner_instance(self, token: str, instance_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """As :meth:`set_partner_instance`, for an instance of the account ``token``."""
        checked = validate_partner_fields(fields)
        with self._lock:
            partner = self._partner(token)
            if instance_id not in partner.instances:
                raise KeyError(f"the partner account has no instance {instance_id!r}")
            return self._set_fields(partner, instance_id, checked)

    def _partner(self, token: str) -> _Partner:
        partner = self._partners.get(token)
        if partner is None:
            raise KeyError("unknown partner account (no account has this partner token)")
        return partner

    def _partner_view(self, partner: _Partner) -> dict[str, Any]:
        return {
            "token": "***",
            "type_instance": partner.type_instance,
            "instance_config": copy.deepcopy(partner.template),
            "faults": copy.deepcopy(partner.faults),
            "instances": self._partner_rows(partner, masked=True),
        }

    def _partner_rows(self, partner: _Partner, *, masked: bool) -> list[dict[str, Any]]:
        now = self._wall_now()
        rows = []
        for instance_id, meta in partner.instances.items():
            if meta.time_deleted is not None and now - meta.time_deleted > PARTNER_RETENTION:
                continue
            inst = meta.removed or self._instances.get(instance_id)
            token = "***" if masked or inst is None else inst.config["token"]
            rows.append(meta.row(instance_id, token, now))
        return rows

    def _id_taken(self, instance_id: str) -> bool:
        partners = self._partners.values()
        return instance_id in self._instances or any(instance_id in p.instances for p in partners)

    def _create_partner_instance(
        self,
        partner: _Partner,
        fields: dict[str, Any],
        id_instance: int | None = None,
        api_token: str | None = None,
    ) -> tuple[str, str]:
        if id_instance is None:
            while self._id_taken(str(partner.next_id)):
                partner.next_id += 1
            id_instance = partner.next_id
            partner.next_id += 1
        instance_id, token = str(id_instance), api_token or secrets.token_hex(25)
        config = {**copy.deepcopy(DEFAULT_CONFIG), **copy.deepcopy(partner.template), "token": token}
        settings = {key: value for key, value in fields.items() if key != "name"}
        config["settings"] = {**config["settings"], **settings}
        self._instances[instance_id] = _Instance(instance_id, config, self._now())
        now = self._wall_now()
        partner.instances[instance_id] = _PartnerInstance(
            name=fields.get("name") or f"Client {len(partner.instances) + 1:03d}",
            type_instance=partner.type_instance,
            time_created=now,
            expiration_date=now + PARTNER_TERM,
        )
        return instance_id, token

    def _created_answer(self, instance_id: str, token: str, type_instance: str) -> dict[str, Any]:
        url = self.url if self._server is not None else None
        return {"idInstance": int(instance_id), "apiTokenInstance": token, "typeInstance": type_instance,
                "apiUrl": url, "mediaUrl": url}  # fmt: skip

    def _delete_partner_instance(self, partner: _Partner, instance_id: str) -> bool:
        meta = partner.instances.get(instance_id)
        if meta is None or meta.time_deleted is not None:
            return False
        meta.time_deleted = self._wall_now()
        meta.removed = self._instances.pop(instance_id, None)
        return True

    def _set_fields(self, partner: _Partner, instance_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        meta = partner.instances[instance_id]
        for key, value in fields.items():
            if key != "deleted":
                setattr(meta, key, value)
            elif value:
                self._delete_partner_instance(partner, instance_id)
            elif meta.time_deleted is not None:  # undeleted: the instance answers again
                if meta.removed is not None:
                    self._instances[instance_id] = meta.removed
                meta.time_deleted, meta.removed = None, None
        return meta.row(instance_id, "***", self._wall_now())

    # ---- records

    def requests_log(self, instance_id: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """Every Green API request received, oldest first, optionally filtered (partner API requests
        have ``instance_id`` None: filter them by ``method``)."""
        with self._lock:
            return [
                dict(r)
                for r in self._requests
                if (instance_id is None or r["instance_id"] == instance_id)
                and (method is None or r["method"] == method)
            ]

    def messages(self, instance_id: str | None = None) -> list[dict[str, Any]]:
        """Messages accepted by sendMessage (answered 200)."""
        return self._filtered(self._messages, instance_id)

    def reboots(self, instance_id: str | None = None) -> list[dict[str, Any]]:
        """Reboot requests answered 200, whatever their ``isReboot``."""
        return self._filtered(self._reboots, instance_id)

    def clear_records(self) -> None:
        """Forget requests, messages and reboots (instances stay)."""
        with self._lock:
            self._requests.clear()
            self._messages.clear()
            self._reboots.clear()

    def reset(self) -> None:
        """Forget every instance, partner account and record."""
        with self._lock:
            self._instances.clear()
            self._partners.clear()
            self.clear_records()

    def _filtered(self, records: deque[dict[str, Any]], instance_id: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in records if instance_id is None or r["instance_id"] == instance_id]

    def _new_record(
        self, instance_id: str | None, method: str, http_method: str, body: Any
    ) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            record: dict[str, Any] = {
                "seq": self._seq,
                "at": time.time(),
                "instance_id": instance_id,
                "method": method,
                "http_method": http_method,
                "status": None,
                "token_ok": False,
                "body": body,
                "fault": None,
            }
            self._requests.append(record)
            self._recorded.notify_all()
            return record

    def _update_record(self, record: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            record.update(fields)

    # ---- Green API behaviour (called from handler threads)

    def _lookup(self, instance_id: str, token: str) -> tuple[bool, bool, float]:
        """(instance exists, token matches, latency seconds)."""
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return False, False, 0.0
            expected = inst.config["token"].encode()
            token_ok = secrets.compare_digest(expected, token.encode())
            latency = inst.effective_config(self._now())["latency_ms"] / 1000
            return True, token_ok, latency

    def _take_fault(self, instance_id: str, method: str, chat_id: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            inst = self._instances.get(instance_id)
            return None if inst is None else inst.take_fault(method, self._now(), chat_id)

    def _partner_known(self, token: str) -> bool:
        with self._lock:
            return token in self._partners

    def _take_partner_fault(self, token: str, method: str) -> dict[str, Any] | None:
        with self._lock:
            partner = self._partners.get(token)
            return None if partner is None else _use_fault([partner.faults], method)

    def _partner_process(self, token: str, method: str, body: Any, *, commit: bool = True) -> _Reply:
        """A partner method's answer; with ``commit`` False, a plausible one that changes nothing
        (for unprocessed faults)."""
        with self._lock:
            partner = self._partners.get(token)
            if partner is None:  # deleted while the request waited
                return _message_reply(401, "Unauthorized")
            if method == "getInstances":
                return _json_reply(200, self._partner_rows(partner, masked=False))
            if method == "createInstance":
                try:
                    fields = _create_fields(body)
                except SimulatorConfigError as exc:
                    return _message_reply(400, str(exc))
                if not commit:
                    return _json_reply(200, self._created_answer(str(partner.next_id), secrets.token_hex(25),
                                                                 partner.type_instance))  # fmt: skip
                instance_id, api_token = self._create_partner_instance(partner, fields)
                return _json_reply(200, self._created_answer(instance_id, api_token, partner.type_instance))
            id_instance = body.get("idInstance") if isinstance(body, dict) else None
            if not isinstance(id_instance, int) or isinstance(id_instance, bool):
                return _message_reply(400, f"idInstance: must be an integer, got {id_instance!r}")
            if commit and not self._delete_partner_instance(partner, str(id_instance)):
                # As the vendor answers an instance that does not exist or was deleted already.
                return _json_reply(200, {"code": 404, "description": "Not found"})
            return _json_reply(200, {"deleteInstanceAccount": True})

    def _preview(self, instance_id: str, method: str) -> _Reply:
        """A plausible 200 answer built without side effects (for unprocessed faults)."""
        with self._lock:
            inst = self._instances.get(instance_id)
            if method == "sendMessage":
                return _json_reply(200, {"idMessage": secrets.token_hex(10).upper()})
            if method == "reboot" or inst is None:
                return _json_reply(200, {"isReboot": True})
            return self._read_only_answer(inst, method, self._now(), grow=False)

    def _read_only_answer(self, inst: _Instance, method: str, now: float, grow: bool = True) -> _Reply:
        state = inst.effective_state(now)
        if method == "getStateInstance":
            if state is None:
                return _json_reply(200, None)
            return _json_reply(200, {"stateInstance": state})
        if method == "getStatusInstance":
            status = inst.effective_config(now)["socket_status"] or ("online" if state == "authorized" else "offline")
            return _json_reply(200, {"statusInstance": status})
        if method == "getWaSettings":
            return _json_reply(
                200,
                {
                    "avatar": "",
                    "phone": inst.instance_id,
                    "stateInstance": state,
                    "deviceId": "sim",
                },
            )
        config = inst.effective_config(now)
        if method == "showMessagesQueue" and grow and config["queue_growth"]:
            inst.config["queue_length"] = max(0, int(inst.config["queue_length"]) + config["queue_growth"])
            config = inst.effective_config(now)
        if method == "showMessagesQueue":  # the vendor lists the first 500
            queued = [
                {"idMessage": f"SIM{inst.instance_id}{n:05d}", "type": "sendMessage",
                 "body": {"chatId": "10000000000@c.us", "message": f"queued message {n}"}}
                for n in range(min(int(config["queue_length"]), 500))
            ]  # fmt: skip
            return _json_reply(200, queued)
        return _json_reply(
            200,
            {"wid": f"{inst.instance_id}@c.us", "countryInstance": "fr", "typeAccount": "trial",
             **DEFAULT_SETTINGS, **config["settings"]},
        )  # fmt: skip

    def _process(
        self, record: dict[str, Any], instance_id: str, method: str, token_ok: bool, body: Any
    ) -> _Reply:
        now = self._now()
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:  # deleted while the request waited
                return _message_reply(403, "Forbidden")
            if not token_ok:
                return _message_reply(401, "Unauthorized")
            config = inst.effective_config(now)
            if config["rate_limits"] and not inst.admit(method, now):
                return _message_reply(429, "Too Many Requests")
            if method == "reboot":
                is_reboot = bool(config["reboot_result"])
                if is_reboot:
                    inst.config["state"] = config["state_after_reboot"]
                    inst.starting_until = now + float(config["starting_seconds"])
                self._reboots.append(
                    {
                        "seq": record["seq"],
                        "at": record["at"],
                        "instance_id": instance_id,
                        "isReboot": is_reboot,
                    }
                )
                return _json_reply(200, {"isReboot": is_reboot})
            if method == "sendMessage":
                if not _valid_message(body):
                    return _message_reply(400, "bad request data")
                id_message = secrets.token_hex(10).upper()
                self._messages.append(
                    {
                        "seq": record["seq"],
                        "at": record["at"],
                        "instance_id": instance_id,
                        "chatId": body["chatId"],
                        "message": body["message"],
                        "idMessage": id_message,
                        "delivered": inst.effective_state(now) == "authorized",
                    }
                )
                return _json_reply(200, {"idMessage": id_message})
            return self._read_only_answer(inst, method, now)


def _valid_message(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    chat_id, message = body.get("chatId"), body.get("message")
    if not isinstance(chat_id, str) or not (
        _PERSONAL_CHAT.fullmatch(chat_id) or _GROUP_CHAT.fullmatch(chat_id)
    ):
        return False
    return isinstance(message, str) and 0 < len(message) <= MAX_MESSAGE_CHARS


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- HTTP layer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a check of 1,000 instances connects all at once

    def __init__(self, address: tuple[str, int], sim: GreenApiSimulator) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup that can stall without a resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("simulator: error while handling a request from %s", client_address[0])

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "GreenApiSimulator/1.0"
    disable_nagle_algorithm = True  # trickled bytes must leave one by one
    timeout = 300  # idle keep-alive connections

    # ---- plumbing

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # replaced by _access(), which never sees the token

    def log_message(self, format: str, *args: Any) -> None:
        # The default access log prints the request line, whose path carries the token.
        log.debug("%s", redact(format % args))

    def _access(self, what: str, status: int | None) -> None:
        log.debug("%s %s -> %s", self.command, what, "no answer" if status is None else status)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        try:
            if parts.path.startswith("/_sim/") or parts.path == "/_sim":
                self._control(parts.path, parse_qs(parts.query))
                return
            partner = _PARTNER_PATH.fullmatch(parts.path)
            if partner is not None:
                method, token = (unquote(g) for g in partner.groups())
                self._partner_api(method, token)
                return
            match = _API_PATH.fullmatch(parts.path)
            if match is None:
                self._read_body()
                self._send(_message_reply(404, "Not Found"))
                self._access("(unknown path)", 404)
                return
            instance_id, method, token = (unquote(g) for g in match.groups())
            self._api(instance_id, method, token)
        except OSError:  # the client went away (gave up on a trickle, timed out, ...)
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        """The request body, or None when it is too large (then the connection is closed)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = MAX_REQUEST_BODY + 1  # unreadable framing: refuse and close
        if length > MAX_REQUEST_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: _Reply) -> None:
        self._send_head(reply, len(reply.body))
        self.wfile.write(reply.body)

    def _send_head(self, reply: _Reply, length: int) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(length))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()

    # ---- Green API routes

    def _record(self, instance_id: str | None, method: str) -> dict[str, Any] | None:
        """The request's record, or None when its body is too large (then it is answered 413)."""
        raw = self._read_body()
        if raw is None:
            self._send(_message_reply(413, "request body too large"))
            return None
        return self.server.sim._new_record(instance_id, method, self.command, _parse_json(raw))

    def _api(self, instance_id: str, method: str, token: str) -> None:
        sim = self.server.sim
        record = self._record(instance_id, method)
        if record is None:
            return
        what = f"waInstance{instance_id}/{method}"

        exists, token_ok, latency = sim._lookup(instance_id, token)
        if not exists:
            self._answer(record, what, _message_reply(403, "Forbidden"))
            return
        sim._update_record(record, token_ok=token_ok)
        if latency > 0 and sim._stopping.wait(latency):
            self.close_connection = True
            return
        if ROUTES.get(method) != self.command:
            self._answer(record, what, _message_reply(404, "Not Found"))
            return

        body = record["body"]
        fault = sim._take_fault(instance_id, method, body.get("chatId") if isinstance(body, dict) else None)
        self._serve(
            record,
            what,
            fault,
            lambda: sim._process(record, instance_id, method, token_ok, body),
            lambda: sim._preview(instance_id, method),
        )

    def _partner_api(self, method: str, token: str) -> None:
        sim = self.server.sim
        record = self._record(None, method)
        if record is None:
            return
        what = f"partner/{method}"
        if not sim._partner_known(token):
            self._answer(record, what, _message_reply(401, "Unauthorized"))
            return
        sim._update_record(record, token_ok=True)
        if PARTNER_ROUTES.get(method) != self.command:
            self._answer(record, what, _message_reply(404, "Not Found"))
            return
        body = record["body"]
        self._serve(
            record,
            what,
            sim._take_partner_fault(token, method),
            lambda: sim._partner_process(token, method, body),
            lambda: sim._partner_process(token, method, body, commit=False),
        )

    def _serve(
        self,
        record: dict[str, Any],
        what: str,
        fault: dict[str, Any] | None,
        process: Callable[[], _Reply],
        preview: Callable[[], _Reply],
    ) -> None:
        """Answer with ``process()``, or through ``fault``: a fault that replaces the answer gets
        ``preview()`` (no side effects) unless it says ``process``."""
        stopping = self.server.sim._stopping
        mode = None if fault is None else fault["mode"]
        self.server.sim._update_record(record, fault=mode)
        if fault is None or mode in _TRANSPORT_ONLY_MODES or fault.get("process"):
            delay = float(fault.get("ms", 0)) / 1000 if fault and mode == "delay" else 0.0
            if delay > 0 and stopping.wait(delay):
                self.close_connection = True
                return
            reply = process()
        else:
            reply = preview()

        if fault is None or mode == "delay":
            self._answer(record, what, reply)
        else:
            self._deliver_fault(record, what, fault, reply)

    def _answer(self, record: dict[str, Any], what: str, reply: _Reply) -> None:
        self.server.sim._update_record(record, status=reply.status)
        self._access(what, reply.status)
        self._send(reply)

    def _deliver_fault(self, record: dict[str, Any], what: str, fault: dict[str, Any], reply: _Reply) -> None:
        mode = fault["mode"]
        stopping = self.server.sim._stopping
        if mode == "hang":
            self._access(what, None)
            stopping.wait(float(fault.get("seconds", DEFAULT_HANG_SECONDS)))
            self.close_connection = True
        elif mode == "reset":
            self._access(what, None)
            self._reset_connection()
        elif mode == "http":
            self._answer(record, what, _fault_http_reply(fault))
        elif mode == "malformed":
            body = reply.body if len(reply.body) > 1 else b'{"stateInstance": "authorized"}'
            # Any strict prefix of a JSON object (or of null) fails to parse.
            self._answer(record, what, _Reply(200, body[: max(1, len(body) * 3 // 4)]))
        elif mode == "non_utf8":
            self._answer(record, what, _Reply(200, NON_UTF8_BODY))
        elif mode == "redirect":
            location = fault.get("location", DEFAULT_REDIRECT_LOCATION)
            status = fault.get("status", 302)
            self._answer(record, what, _Reply(status, b"", headers={"Location": location}))
        elif mode == "trickle":
            self.server.sim._update_record(record, status=reply.status)
            self._access(what, reply.status)
            self._send_head(reply, len(reply.body))
            interval = float(fault.get("interval_ms", DEFAULT_TRICKLE_INTERVAL_MS)) / 1000
            for i in range(len(reply.body)):
                if i and stopping.wait(interval):
                    self.close_connection = True
                    return
                self.wfile.write(reply.body[i : i + 1])
        elif mode == "big":
            size = int(fault.get("bytes", DEFAULT_BIG_BYTES))
            self.server.sim._update_record(record, status=200)
            self._access(what, 200)
            self._send_head(_Reply(200, b""), size)
            for chunk in _big_body(size):
                if stopping.is_set():
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

    def _reset_connection(self) -> None:
        # SO_LINGER on with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()  # the makefile() reference would otherwise delay the real close
        self.connection.close()

    # ---- control API

    def _control(self, path: str, query: dict[str, list[str]]) -> None:
        raw = self._read_body()
        try:
            if raw is None:
                raise _ControlError(413, "request body too large")
            status, payload = self._control_route(path, query, raw)
        except _ControlError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except SimulatorConfigError as exc:
            status, payload = 400, {"error": str(exc)}
        self._access(redact(path), status)  # /_sim/partners/{token}
        self._send(_json_reply(status, payload))

    def _control_route(self, path: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any]:
        sim = self.server.sim
        verb = self.command
        instance = query.get("instance", [None])[0]
        shown = redact(path)

        def only(*verbs: str) -> None:
            if verb not in verbs:
                raise _ControlError(405, f"{verb} not allowed on {shown} (use {', '.join(verbs)})")

        if path == "/_sim/health":
            only("GET")
            return 200, {"ok": True}
        if path == "/_sim/instances":
            only("GET")
            return 200, sim.instances()
        if path.startswith("/_sim/instances/"):
            instance_id = unquote(path[len("/_sim/instances/") :])
            if not instance_id or "/" in instance_id:
                raise _ControlError(404, f"bad instance id in {path!r}")
            only("GET", "PUT", "PATCH", "DELETE")
            try:
                if verb == "PUT":
                    return 200, sim.put_instance(instance_id, _json_body(raw))
                if verb == "PATCH":
                    return 200, sim.patch_instance(instance_id, _json_body(raw))
                if verb == "DELETE":
                    sim.remove_instance(instance_id)
                    return 200, {"deleted": instance_id}
                return 200, sim.instance(instance_id)
            except KeyError:
                raise _ControlError(404, f"unknown instance {instance_id!r}") from None
        if path.startswith("/_sim/partners/"):
            return self._partner_control(path[len("/_sim/partners/") :].split("/"), raw, only)
        if path == "/_sim/requests":
            only("GET", "DELETE")
            if verb == "DELETE":
                sim.clear_records()
                return 200, {"cleared": True}
            return 200, sim.requests_log(instance, query.get("method", [None])[0])
        if path == "/_sim/messages":
            only("GET")
            return 200, sim.messages(instance)
        if path == "/_sim/reboots":
            only("GET")
            return 200, sim.reboots(instance)
        if path == "/_sim/clock":
            only("POST")
            body = _json_body(raw)
            seconds = body.get("advance") if isinstance(body, dict) else None
            try:
                sim.advance(seconds)
            except ValueError as exc:
                raise _ControlError(400, f"{exc}; send {{\"advance\": <seconds>}}") from None
            return 200, {"advanced": seconds}
        if path == "/_sim/reset":
            only("POST")
            sim.reset()
            return 200, {"reset": True}
        raise _ControlError(404, f"unknown control route {shown!r}")

    def _partner_control(self, parts: list[str], raw: bytes, only: Callable[..., None]) -> tuple[int, Any]:
        """``/_sim/partners/{token}`` and ``/_sim/partners/{token}/instances/{id}``."""
        sim = self.server.sim
        token = unquote(parts[0])
        try:
            if len(parts) == 1 and token:
                only("GET", "PUT", "PATCH", "DELETE")
                if self.command == "PUT":
                    body = _json_body(raw)
                    return 200, sim.put_partner(token, {} if body is None else body)
                if self.command == "PATCH":
                    return 200, sim.patch_partner(token, _json_body(raw))
                if self.command == "DELETE":
                    sim.remove_partner(token)
                    return 200, {"deleted": True}
                return 200, sim.partner(token)
            if len(parts) == 3 and token and parts[1] == "instances" and parts[2]:
                only("PATCH")
                return 200, sim.patch_partner_instance(token, unquote(parts[2]), _json_body(raw))
        except KeyError as exc:
            raise _ControlError(404, str(exc.args[0]) if exc.args else "unknown partner account") from None
        raise _ControlError(404, f"unknown control route {redact('/_sim/partners/' + '/'.join(parts))!r}")


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise _ControlError(400, f"body: not valid JSON ({exc})") from None


def _fault_http_reply(fault: dict[str, Any]) -> _Reply:
    status = int(fault.get("status", 500))
    body = fault.get("body")
    if body is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "simulated error"
        payload = json.dumps({"message": phrase}).encode()
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = json.dumps(body).encode()
    return _Reply(status, payload, fault.get("content_type", "application/json"))


def _big_body(size: int, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """Yield ``size`` bytes forming a valid JSON object when the size allows it."""
    head, tail = b'{"stateInstance": "authorized", "padding": "', b'"}'
    padding = size - len(head) - len(tail)
    if padding < 0:
        yield b" " * size
        return
    yield head
    filler = b"x" * chunk_size
    while padding > 0:
        n = min(padding, chunk_size)
        yield filler[:n]
        padding -= n
    yield tail


# --------------------------------------------------------------------------- CLI


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m greenapi_simulator", description="Green API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="ID:TOKEN",
        help="create an always-authorized instance (repeatable)",
    )
    parser.add_argument(
        "--partner",
        action="append",
        default=[],
        metavar="TOKEN:COUNT",
        help="create a partner account of COUNT instances (repeatable)",
    )
    parser.add_argument("--demo", action="store_true", help="create the demo instances and partner account")
    parser.add_argument(
        "--demo-scale",
        type=float,
        default=1.0,
        help="multiply the demo cycle phase lengths (e.g. 0.1 for a 2-minute cycle)",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request (no tokens)")
    args = parser.parse_args(argv)
    if args.demo_scale <= 0:
        parser.error("--demo-scale must be > 0")

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )
    sim = GreenApiSimulator(args.host, args.port)
    ids: list[str] = []
    for item in args.instance:
        instance_id, sep, token = item.partition(":")
        if not sep or not instance_id or not token:
            parser.error("--instance expects ID:TOKEN")
        try:
            sim.add_instance(instance_id, token)
        except SimulatorConfigError as exc:
            parser.error(f"--instance {instance_id}: {exc}")
        ids.append(instance_id)
    for item in args.partner:
        token, sep, count = item.rpartition(":")
        if not sep or not token or not count.isdigit():
            parser.error("--partner expects TOKEN:COUNT")
        try:
            ids.extend(sim.add_partner(token, count=int(count)))
        except SimulatorConfigError as exc:
            parser.error(f"--partner: {exc}")
    if args.demo:
        ids.extend(sim.add_demo_instances(args.demo_scale))

    # Set SIGINT too: a shell starting us in the background may have left it ignored.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        sim.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        # One line, so scripts can wait for it and parse the URL.
        listing = f"; instances: {', '.join(ids)}" if ids else ""
        print(
            f"Green API simulator listening on {sim.url} (control API {sim.url}/_sim/){listing}", flush=True
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0

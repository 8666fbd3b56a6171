"""The typed outcome of one Green API call, as the hook returns it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from greenapi.domain.codec import Record


class ResultKind(StrEnum):
    """How a call ended, before any interpretation of what it means for the instance."""

    OK = "ok"  # 2xx with a JSON object body
    NULL_BODY = "null_body"  # 2xx with the JSON literal null (instance still being created)
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    HTTP_ERROR = "http_error"  # any non-2xx answer
    MALFORMED = "malformed"  # 2xx whose body is not a JSON object


@dataclass(frozen=True)
class ApiResult(Record):
    """One call's outcome. ``error`` is safe to log: it never contains the URL or the token.

    JSON: every field below, ``kind`` as its value (``"ok"``, ``"timeout"``...)."""

    method: str
    kind: ResultKind
    response_time_ms: int
    http_status: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None  # a short, sanitised excerpt of an error body
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The call succeeded: a 2xx answer with a JSON body (``kind`` is ``ok``)."""
        return self.kind is ResultKind.OK

"""Deliver one text to one contact: each WhatsApp sender in turn, with retries, then e-mail.

Every attempt is returned (and stored by the caller). A send is retried with exponential backoff
on what may pass (429, 5xx, timeouts, connection errors); a refusal that will not pass (400, 401,
403, 466) moves on to the next sender at once. Sending is paced by the hook within the API's
sendMessage limit.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from greenapi.domain.results import ApiResult, ResultKind

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from greenapi.hooks.green_api import GreenApiHook


@dataclass(frozen=True)
class Attempt:
    channel: str  # whatsapp | email
    sender: str | None
    recipient: str
    attempt: int
    ok: bool
    id_message: str | None
    error: str | None
    at: str
    http_status: int | None = None  # the API's answer to a WhatsApp send, when it answered

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retryable(result: ApiResult) -> bool:
    if result.kind in (ResultKind.TIMEOUT, ResultKind.CONNECTION_ERROR):
        return True
    return result.kind is ResultKind.HTTP_ERROR and (result.http_status == 429 or (result.http_status or 0) >= 500)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def send_whatsapp(
    senders: Sequence[GreenApiHook],
    chat_id: str,
    text: str,
    *,
    retries: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Attempt]:
    """Try each sender until one accepts; the last attempt tells whether it was delivered."""
    attempts: list[Attempt] = []
    for sender in senders:
        for number in range(1, retries + 1):
            result = sender.send_message(chat_id, text)
            message_id = result.data.get("idMessage") if result.ok else None
            ok = bool(message_id)
            error = None if ok else (result.error or "answer without idMessage")
            attempts.append(Attempt("whatsapp", sender.green_api_conn_id, chat_id, number, ok, message_id, error, _now(),
                                    result.http_status))  # fmt: skip
            if ok:
                return attempts
            if not retryable(result) or number == retries:
                break
            sleep(backoff_seconds * 2 ** (number - 1))
    return attempts


def send_email(smtp_conn_id: str, address: str, subject: str, text: str) -> Attempt:
    """The fallback channel: Airflow's SMTP connection."""
    from html import escape

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    body = "<pre style='font-family: sans-serif'>" + escape(text) + "</pre>"
    try:
        with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
            hook.send_email_smtp(to=address, subject=subject, html_content=body)
    except Exception as exc:  # noqa: BLE001 - any failure of the fallback is recorded, not raised
        return Attempt("email", smtp_conn_id, address, 1, False, None, f"{type(exc).__name__}: {exc}"[:300], _now())
    return Attempt("email", smtp_conn_id, address, 1, True, None, None, _now())


def smtp_configured(smtp_conn_id: str) -> bool:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(smtp_conn_id)
    except AirflowNotFoundException:
        return False
    return True

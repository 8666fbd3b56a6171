"""Deliver one text to one contact: each WhatsApp sender in turn, with retries, then e-mail.

Every attempt is returned (and stored by the caller). A send is retried with exponential backoff
on what may pass (429, 5xx, timeouts, connection errors); a refusal that will not pass (400, 401,
403, 466) moves on to the next sender at once. Sending is paced by the hook within the API's
sendMessage limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from greenapi.domain.results import ApiResult, ResultKind

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from greenapi.hooks.green_api import GreenApiHook


@dataclass(frozen=True)
class Attempt:
    """One try to deliver one text to one recipient through one channel and sender."""

    channel: str  # whatsapp | email
    sender: str | None
    recipient: str
    attempt: int
    ok: bool
    id_message: str | None
    error: str | None
    at: str
    http_status: int | None = None  # the API's answer to a WhatsApp send, when it answered


def retryable(result: ApiResult) -> bool:
    """Whether a failed send may pass if tried again: a timeout, a connection error, 429 or 5xx."""
    if result.kind in (ResultKind.TIMEOUT, ResultKind.CONNECTION_ERROR):
        return True
    return result.kind is ResultKind.HTTP_ERROR and (result.http_status == 429 or (result.http_status or 0) >= 500)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _accepted(result: ApiResult) -> bool:
    return result.ok and bool(result.data.get("idMessage"))


def send_whatsapp(
    senders: Sequence[GreenApiHook],
    chat_id: str,
    text: str,
    *,
    retries: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Attempt]:
    """Try each sender until one accepts; the last attempt tells whether it was delivered.

    Each sender gets up to ``retries`` tries of a send that may pass (:func:`retryable`), waiting
    ``backoff_seconds``, then twice that, and so on, between them (tenacity)."""
    attempts: list[Attempt] = []
    for sender in senders:

        def send_once(sender: GreenApiHook = sender) -> ApiResult:
            result = sender.send_message(chat_id, text)
            message_id = result.data.get("idMessage") if result.ok else None
            error = None if _accepted(result) else (result.error or "answer without idMessage")
            tried = sum(1 for a in attempts if a.sender == sender.green_api_conn_id) + 1
            attempts.append(Attempt("whatsapp", sender.green_api_conn_id, chat_id, tried, _accepted(result), message_id,
                                    error, _now(), result.http_status))  # fmt: skip
            return result

        retrying = Retrying(
            stop=stop_after_attempt(retries),
            wait=wait_exponential(multiplier=backoff_seconds, exp_base=2, min=0),
            retry=retry_if_result(lambda r: not _accepted(r) and retryable(r)),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            sleep=sleep,
        )
        if _accepted(retrying(send_once)):
            return attempts
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
    """Whether the e-mail fallback's connection exists."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(smtp_conn_id)
    except AirflowNotFoundException:
        return False
    return True

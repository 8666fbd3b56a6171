"""Where this package's DAGs send a notice of their own failure: the route of their GreenApiNotifier.

The recipients are the active support contacts of the health database; when that database cannot
be read (it may be the very failure reported) or lists more contacts than ``max_contacts``, the
``fallback_chat_ids`` of ``green_api_settings``. The settings themselves may be what broke: then
the notice goes out with the default ones.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from greenapi.domain.config import ConfigError, Settings, parse_settings, too_many_contacts
from greenapi.notifications.green_api import NoticeRoute

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)


def notice_settings() -> Settings:
    """Variable ``green_api_settings``, or the defaults when it is broken (the failure reported
    may be that very Variable)."""
    from greenapi.tasks.context import settings_raw

    try:
        return parse_settings(settings_raw())
    except ConfigError as exc:
        log.error("GreenApiNotifier: %s; notifying with the default settings", exc)
        return Settings()


def support_chat_ids(settings: Settings) -> Sequence[str]:
    """The support contacts' numbers, else (database unreadable, too many contacts) the fallback chats."""
    try:
        from greenapi.store import HealthStore

        phones = [c.phone_number for c in HealthStore().active_contacts()]
    except Exception:  # noqa: BLE001 - the database may be the very thing that failed
        log.warning("Support contacts unreadable; using fallback_chat_ids of green_api_settings")
        return settings.fallback_chat_ids
    refused = too_many_contacts(len(phones), settings)
    if refused:
        log.error("%s; using fallback_chat_ids of green_api_settings", refused)
        return settings.fallback_chat_ids
    return phones


def support_route(context: Any = None) -> NoticeRoute:
    """The route of a notice to support, read when the notice is sent."""
    settings = notice_settings()
    return NoticeRoute(chat_ids=tuple(support_chat_ids(settings)), senders=settings.alert_senders,
                       language=settings.language, timezone=settings.message_timezone,
                       attempts=settings.send_retries, backoff_seconds=settings.send_backoff_seconds)  # fmt: skip


def support_notifier() -> Any:
    """A GreenApiNotifier that tells support (:func:`support_route`): the failure callback of this package's DAGs."""
    from greenapi.notifications import GreenApiNotifier

    return GreenApiNotifier(route=support_route)

"""Delivery of messages: WhatsApp through Green API senders, e-mail as the fallback."""

from greenapi.notifications.green_api import GreenApiNotifier

__all__ = ["GreenApiNotifier"]

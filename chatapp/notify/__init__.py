"""Notify: push notifications for recipients with no live device.

The providers (Web Push, ntfy, webhooks, a log) are its adapters, in
`chatapp.notify.providers`; only the composition root imports them.
"""

from chatapp.notify.notification import Notification
from chatapp.notify.notifier import BATCH_MOST, OBSERVED_EVENTS, Notifier, PushDirectory
from chatapp.notify.provider import DeliveryFailed, InvalidTarget, PushProvider, TargetGone
from chatapp.notify.push import Push

__all__ = [
    "BATCH_MOST",
    "OBSERVED_EVENTS",
    "DeliveryFailed",
    "InvalidTarget",
    "Notification",
    "Notifier",
    "Push",
    "PushDirectory",
    "PushProvider",
    "TargetGone",
]

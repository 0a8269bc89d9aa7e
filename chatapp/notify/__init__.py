"""Notify: push notifications for recipients with no live device."""

from chatapp.notify.notification import Notification
from chatapp.notify.notifier import LiveDevices, Notifier, PushDirectory
from chatapp.notify.provider import DeliveryFailed, InvalidTarget, PushProvider, TargetGone
from chatapp.notify.push import Push

__all__ = [
    "DeliveryFailed",
    "InvalidTarget",
    "LiveDevices",
    "Notification",
    "Notifier",
    "Push",
    "PushDirectory",
    "PushProvider",
    "TargetGone",
]

"""The contract every push provider keeps. Adding one (FCM, APNs, …) is one file.

A provider turns a `Notification` into a request to some push service for one
device. It knows two things only: what a device's registration (its *target*)
looks like, and how to deliver to it. Queueing, retries, collapsing, metrics
and choosing recipients are the notify module's job, not the provider's.

To add a provider, say `fcm`:

1. Write `chatapp/notify/providers/fcm.py` with a class that has the three
   members of `PushProvider` below and a `build(settings, context)` function
   that makes it from the settings (read your own `push_fcm_*` settings there).
2. Add one line to the `BUILDERS` table in `chatapp/notify/providers/__init__.py`
   (the module's name: it is imported only when the provider is enabled),
   add `"fcm"` to `PUSH_PROVIDERS` in `chatapp/config.py`, and add your settings
   to `Settings` and `config/chatapp.toml`.

`check_target` runs when a device registers (`PUT /me/devices/{id}/push`); raise
`InvalidTarget` to refuse it with 400. `send` runs on a worker task, inside a
timeout; raise `DeliveryFailed` (retried when `retryable`), or `TargetGone`
when the service says the target will never work again (it is then deleted).
Any other exception counts as a failure that is not retried.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import JsonValue

from chatapp.notify.notification import Notification


class InvalidTarget(Exception):
    """A registration's target does not fit the provider; the message says why."""


class DeliveryFailed(Exception):
    """The push service did not take the notification.

    `retryable` is True for what may pass later: a network error, a timeout, a
    429 or a 5xx. A refusal that will not change (a 400) is not retryable.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class TargetGone(Exception):
    """The push service says this target no longer exists (Web Push 404 or 410)."""


class PushProvider(Protocol):
    """Delivers notifications through one kind of push service."""

    name: str
    """The name devices register with (`provider` in the registration) and config enables."""

    def check_target(self, target: JsonValue) -> JsonValue:
        """Validate a device's target; return what to store. Raise InvalidTarget to refuse."""
        ...

    async def send(self, target: JsonValue, notification: Notification) -> None:
        """Deliver one notification to one device's target.

        Raise DeliveryFailed or TargetGone when it is not delivered. The caller
        bounds the time this may take; it need not set a timeout of its own.
        """
        ...

"""The `webhook` provider: a signed JSON POST to one URL the operator configures.

The receiver (a relay to FCM or APNs, a bot, a pager) gets for each
notification:

    POST <push_webhook_url>
    Content-Type: application/json
    X-Chatapp-Timestamp: <unix seconds>
    X-Chatapp-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
    X-Chatapp-Delivery: <notification id, the same on every retry>

    {"target": <the device's registered target>, "notification": {...}}

It verifies the signature over the exact body bytes, refuses old timestamps,
and answers 2xx. 410 means "this device's target is gone" (it is deleted);
408, 429 and 5xx are retried; other answers are not.

The URL is the operator's own setting, not a user's, so it is exempt from the
guard on user-registered targets (guard.py): it goes through the plain session
and may be on the server's own host or network, where a relay usually runs.
The targets users register here are only data in the body; nothing connects
to them.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import aiohttp
from pydantic import JsonValue

from chatapp.clock import Clock
from chatapp.config import Settings
from chatapp.notify.notification import Notification
from chatapp.notify.provider import InvalidTarget
from chatapp.notify.providers.context import ProviderContext
from chatapp.notify.providers.web import check_answer

TIMESTAMP_HEADER = "X-Chatapp-Timestamp"
SIGNATURE_HEADER = "X-Chatapp-Signature"
DELIVERY_HEADER = "X-Chatapp-Delivery"
MAX_TARGET_BYTES = 4096


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The value of the signature header for this body sent at this time."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookProvider:
    name = "webhook"

    def __init__(
        self, session: aiohttp.ClientSession, *, url: str, secret: bytes, clock: Clock
    ) -> None:
        self._session = session
        self._url = url
        self._secret = secret
        self._clock = clock

    def check_target(self, target: JsonValue) -> JsonValue:
        """Whatever the receiver understands (a device token, an object): any JSON but null."""
        if target is None:
            raise InvalidTarget("must not be null")
        if len(json.dumps(target).encode()) > MAX_TARGET_BYTES:
            raise InvalidTarget(f"must be at most {MAX_TARGET_BYTES} bytes of JSON")
        return target

    async def send(self, target: JsonValue, notification: Notification) -> None:
        document = {"target": target, "notification": notification.model_dump(exclude_none=True)}
        body = json.dumps(document, separators=(",", ":")).encode()
        timestamp = str(self._clock.now_ms() // 1000)
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self._secret, timestamp, body),
            DELIVERY_HEADER: notification.id,
        }
        async with self._session.post(self._url, data=body, headers=headers) as answer:
            check_answer(answer.status, answer.reason or "", gone=(410,))


def build(settings: Settings, context: ProviderContext) -> WebhookProvider:
    return WebhookProvider(
        context.session,  # not target_session: the operator chose this URL (see above)
        url=settings.push_webhook_url,
        secret=settings.push_webhook_secret.encode(),
        clock=context.clock,
    )

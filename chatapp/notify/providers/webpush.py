"""The `webpush` provider: standard Web Push, straight to the browser's push service.

RFC 8030 delivery (a POST to the subscription's endpoint with `TTL` and
`Urgency`), RFC 8291 payload encryption (aes128gcm, done by pywebpush) and
RFC 8292 VAPID (a JWT signed with the server's key, done by py_vapid). No
vendor account or relay is needed: the browser's own push service takes it.

A device registers the `PushSubscription` its browser gave it, as JSON:
`{"endpoint": "https://…", "keys": {"p256dh": "…", "auth": "…"}}`. Clients
subscribe with the key from `GET /push/config` (`webpush_public_key`) as
`applicationServerKey`. 404 and 410 mean the subscription expired. Redirects
are not followed (RFC 8030 push services do not redirect a push).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pydantic import JsonValue
from pywebpush import WebPusher

from chatapp.clock import Clock
from chatapp.config import Settings
from chatapp.notify.notification import Notification
from chatapp.notify.provider import InvalidTarget
from chatapp.notify.providers.context import ProviderContext
from chatapp.notify.providers.web import check_url, post_notification
from chatapp.notify.vapid import load_or_create_key, public_key_text

# A VAPID token may live at most 24 hours (RFC 8292 §2); a fresh one is signed
# for each delivery, so half a day is plenty.
TOKEN_LIFETIME_SECONDS = 12 * 3600


class WebPushProvider:
    name = "webpush"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        key: ec.EllipticCurvePrivateKey,
        subject: str,
        ttl_seconds: int,
        allow_http: bool,
        allow_private: bool,
        clock: Clock,
    ) -> None:
        self._session = session
        self._allow_private = allow_private
        # The subject was checked with the settings; py_vapid's own check
        # refuses some valid contacts (an https URL with a path).
        self._vapid = Vapid02(private_key=key, conf={"no-strict": True})
        self._subject = subject
        self._ttl = ttl_seconds
        self._allow_http = allow_http
        self._clock = clock
        self.public_key = public_key_text(key)

    def check_target(self, target: JsonValue) -> JsonValue:
        if not isinstance(target, dict):
            raise InvalidTarget("must be a PushSubscription object {endpoint, keys}")
        endpoint = check_url(
            target.get("endpoint"),
            allow_http=self._allow_http,
            allow_private=self._allow_private,
            field="endpoint",
        )
        keys = target.get("keys")
        if not isinstance(keys, dict):
            raise InvalidTarget("keys must be an object {p256dh, auth}")
        p256dh, auth = keys.get("p256dh"), keys.get("auth")
        try:
            point = _unbase64(p256dh, "keys.p256dh")
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            raise InvalidTarget("keys.p256dh is not a P-256 public key") from None
        if len(_unbase64(auth, "keys.auth")) != 16:
            raise InvalidTarget("keys.auth must be 16 bytes")
        return {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}

    async def send(self, target: JsonValue, notification: Notification) -> None:
        assert isinstance(target, dict)  # check_target stored a subscription
        endpoint = str(target["endpoint"])
        body = WebPusher(target).encode(notification.payload(), "aes128gcm")["body"]
        parts = urlsplit(endpoint)
        claims = {
            "sub": self._subject,
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": self._clock.now_ms() // 1000 + TOKEN_LIFETIME_SECONDS,
        }
        headers = {
            **self._vapid.sign(claims),
            "TTL": str(self._ttl),
            "Urgency": "high",
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        await post_notification(
            self._session,
            endpoint,
            data=body,
            headers=headers,
            gone=(404, 410),
            guarded=not self._allow_private,
        )


def _unbase64(value: object, field: str) -> bytes:
    if not isinstance(value, str) or len(value) > 256:
        raise InvalidTarget(f"{field} must be a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidTarget(f"{field} is not base64url") from None


def vapid_subject(settings: Settings) -> str:
    """The contact push services are given: the setting, else an https public URL."""
    if settings.push_vapid_subject:
        return settings.push_vapid_subject
    if settings.base_url.startswith("https://"):
        return settings.base_url
    return "mailto:admin@localhost"


def build(settings: Settings, context: ProviderContext) -> WebPushProvider:
    return WebPushProvider(
        context.target_session,
        key=context.vapid_key or load_or_create_key(context.data_dir),
        subject=vapid_subject(settings),
        ttl_seconds=settings.push_webpush_ttl_seconds,
        allow_http=settings.push_allow_http_targets,
        allow_private=settings.push_allow_private_targets,
        clock=context.clock,
    )

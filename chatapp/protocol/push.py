"""HTTP bodies of push registration (see docs/protocol.md, "Push notifications")."""

from __future__ import annotations

from pydantic import Field, JsonValue

from chatapp.protocol.http import Answer, Request


class PushTargetRequest(Request):
    provider: str = Field(description="an enabled provider: see GET /push/config")
    target: JsonValue = Field(
        description="provider-specific: a token, a Web Push subscription object, an ntfy topic URL"
    )


class PushConfigAnswer(Answer):
    providers: list[str] = Field(description="the providers a device may register with")
    webpush_public_key: str | None = Field(
        default=None,
        description="VAPID public key (URL-safe base64, uncompressed P-256 point) for"
        " applicationServerKey; present when webpush is enabled",
    )

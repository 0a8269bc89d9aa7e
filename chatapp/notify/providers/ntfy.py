"""The `ntfy` provider: a POST to an ntfy or UnifiedPush topic URL, for self-hosted Android push.

A device registers its topic URL as the target, e.g.
`https://ntfy.example.org/upAbC123?up=1` as its UnifiedPush distributor hands
it out. The body is the notification's JSON, which a UnifiedPush app receives
as it is (the ntfy app shows it as the message). 404 and 410 mean the topic is
gone; 408, 429 and 5xx are retried. Redirects are not followed.
"""

from __future__ import annotations

import aiohttp
from pydantic import JsonValue

from chatapp.config import Settings
from chatapp.notify.notification import Notification
from chatapp.notify.providers.context import ProviderContext
from chatapp.notify.providers.web import check_url, post_notification


class NtfyProvider:
    name = "ntfy"

    def __init__(
        self, session: aiohttp.ClientSession, *, allow_http: bool, allow_private: bool
    ) -> None:
        self._session = session
        self._allow_http = allow_http
        self._allow_private = allow_private

    def check_target(self, target: JsonValue) -> JsonValue:
        return check_url(
            target, allow_http=self._allow_http, allow_private=self._allow_private, field="target"
        )

    async def send(self, target: JsonValue, notification: Notification) -> None:
        assert isinstance(target, str)  # check_target stored a URL
        await post_notification(
            self._session,
            target,
            data=notification.payload(),
            headers={"Content-Type": "application/json"},
            gone=(404, 410),
            guarded=not self._allow_private,
        )


def build(settings: Settings, context: ProviderContext) -> NtfyProvider:
    return NtfyProvider(
        context.target_session,
        allow_http=settings.push_allow_http_targets,
        allow_private=settings.push_allow_private_targets,
    )

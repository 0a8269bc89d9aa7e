"""The `log` provider: one structured log line per notification (the default).

It delivers nowhere, so it suits development, a server without push, and
checking what would be sent. The message text is never logged: the line says
how long it was instead.
"""

from __future__ import annotations

import structlog
from pydantic import JsonValue

from chatapp.config import Settings
from chatapp.notify.notification import Notification
from chatapp.notify.provider import InvalidTarget
from chatapp.notify.providers.context import ProviderContext

log = structlog.get_logger("chatapp.notify.log")

MAX_TARGET_CHARS = 256


class LogProvider:
    name = "log"

    def check_target(self, target: JsonValue) -> JsonValue:
        """Any label a device likes (a string), to tell devices apart in the log."""
        if not isinstance(target, str) or len(target) > MAX_TARGET_CHARS:
            raise InvalidTarget(f"must be a string of at most {MAX_TARGET_CHARS} characters")
        return target

    async def send(self, target: JsonValue, notification: Notification) -> None:
        fields = notification.model_dump(exclude={"text"}, exclude_none=True)
        if notification.text is not None:
            fields["text_chars"] = len(notification.text)
        log.info("push_notification", provider=self.name, target=target, **fields)


def build(settings: Settings, context: ProviderContext) -> LogProvider:
    return LogProvider()

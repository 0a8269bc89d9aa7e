"""Push: the notify module as the rest of the server sees it.

Devices register targets here (checked by their provider, stored by
accounts); clients read which providers exist. The composition root builds
the providers, their queues and the notifier, and hands them in.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence

from pydantic import JsonValue

from chatapp.accounts import Accounts, Caller
from chatapp.errors import BadRequest, InvalidInput
from chatapp.notify.delivery import DeliveryQueue
from chatapp.notify.notifier import Notifier
from chatapp.notify.provider import InvalidTarget, PushProvider
from chatapp.protocol.push import PushConfigAnswer

MAX_TARGET_BYTES = 8192


class Push:
    def __init__(
        self,
        accounts: Accounts,
        providers: Mapping[str, PushProvider],
        queues: Mapping[str, DeliveryQueue],
        notifier: Notifier,
        *,
        webpush_public_key: str | None = None,
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self._accounts = accounts
        self._providers = providers
        self._queues = queues
        self.notifier = notifier
        self._webpush_public_key = webpush_public_key
        self._on_close = tuple(on_close)

    @property
    def enabled(self) -> bool:
        """True when some provider is enabled (otherwise nothing listens for messages)."""
        return bool(self._providers)

    def start(self) -> None:
        for queue in self._queues.values():
            queue.start()
        if self._providers:
            self.notifier.start()

    async def close(self) -> None:
        await self.notifier.close()
        for queue in self._queues.values():
            await queue.close()
        for close in self._on_close:
            await close()

    async def register(
        self, caller: Caller, device_id: int, provider_name: str, target: JsonValue
    ) -> None:
        """Set where a device of the caller's gets its notifications."""
        provider = self._providers.get(provider_name)
        if provider is None:
            enabled = ", ".join(self._providers) or "none"
            raise InvalidInput(
                "unknown_provider",
                f"provider {provider_name!r} is not enabled (enabled: {enabled})",
            )
        if len(json.dumps(target).encode()) > MAX_TARGET_BYTES:
            raise BadRequest(f"target: more than {MAX_TARGET_BYTES} bytes")
        try:
            checked = provider.check_target(target)
        except InvalidTarget as refusal:
            raise BadRequest(f"target: {refusal}") from None
        await self._accounts.set_push_target(caller, device_id, provider_name, checked)

    async def unregister(self, caller: Caller, device_id: int) -> None:
        await self._accounts.remove_push_target(caller, device_id)

    def config(self) -> PushConfigAnswer:
        return PushConfigAnswer(
            providers=list(self._providers), webpush_public_key=self._webpush_public_key
        )

"""Push: the notify module as the rest of the server sees it.

Devices register targets here (checked by their provider, stored by
accounts); clients read which providers exist; the composition root opens,
starts and closes the whole of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import aiohttp
from pydantic import JsonValue

from chatapp.accounts import Accounts, Caller, PushTarget
from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.config import Settings
from chatapp.errors import BadRequest, InvalidInput
from chatapp.notify.delivery import DeliveryQueue, RetryPolicy
from chatapp.notify.notifier import LiveDevices, Notifier
from chatapp.notify.provider import InvalidTarget, PushProvider
from chatapp.notify.providers import ProviderContext, build_providers
from chatapp.notify.providers.guard import target_session
from chatapp.notify.providers.webpush import WebPushProvider
from chatapp.observability import Metrics
from chatapp.protocol.push import PushConfigAnswer

MAX_TARGET_BYTES = 8192


class Push:
    def __init__(
        self,
        accounts: Accounts,
        providers: Mapping[str, PushProvider],
        queues: Mapping[str, DeliveryQueue],
        notifier: Notifier,
        sessions: tuple[aiohttp.ClientSession, ...],
    ) -> None:
        self._accounts = accounts
        self._providers = providers
        self._queues = queues
        self.notifier = notifier
        self._sessions = sessions

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        accounts: Accounts,
        live_devices: LiveDevices,
        bus: Bus,
        clock: Clock,
        metrics: Metrics,
    ) -> Push:
        """Build the enabled providers, their queues and the notifier; subscribe it to the bus."""
        session = aiohttp.ClientSession()
        targets = target_session(allow_private=settings.push_allow_private_targets)
        try:
            context = ProviderContext(
                session=session,
                target_session=targets,
                clock=clock,
                data_dir=settings.data_dir,
            )
            providers = build_providers(settings, context)
        except BaseException:
            await session.close()
            await targets.close()
            raise
        retry = RetryPolicy(
            retries=settings.push_retries,
            base_seconds=settings.push_retry_base_ms / 1000,
            max_seconds=settings.push_retry_max_ms / 1000,
        )

        async def forget(target: PushTarget) -> None:
            await accounts.forget_push_target(target.device_id)

        queues = {
            name: DeliveryQueue(
                provider,
                metrics,
                size=settings.push_queue_size,
                workers=settings.push_workers,
                timeout_seconds=settings.push_timeout_ms / 1000,
                retry=retry,
                on_target_gone=forget,
            )
            for name, provider in providers.items()
        }
        notifier = Notifier(
            directory=accounts,
            live_devices=live_devices,
            queues=queues,
            clock=clock,
            window_seconds=settings.push_collapse_window_ms / 1000,
            include_text=settings.push_include_text,
        )
        if providers:
            notifier.subscribe(bus)
        return cls(accounts, providers, queues, notifier, (session, targets))

    def start(self) -> None:
        for queue in self._queues.values():
            queue.start()
        if self._providers:
            self.notifier.start()

    async def close(self) -> None:
        await self.notifier.close()
        for queue in self._queues.values():
            await queue.close()
        for session in self._sessions:
            await session.close()

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
        webpush = self._providers.get("webpush")
        return PushConfigAnswer(
            providers=list(self._providers),
            webpush_public_key=webpush.public_key if isinstance(webpush, WebPushProvider) else None,
        )

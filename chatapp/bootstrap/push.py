"""Building the notify module: its providers, their queues and the notifier."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import aiohttp

from chatapp.accounts import Accounts, PushTarget
from chatapp.clock import Clock
from chatapp.config import Settings
from chatapp.notify import Notifier, Push
from chatapp.notify.delivery import DeliveryQueue, RetryPolicy
from chatapp.notify.notifier import PushLevels
from chatapp.notify.pending import PendingPushes
from chatapp.notify.provider import PushProvider
from chatapp.notify.providers import ProviderContext, build_providers
from chatapp.notify.providers.guard import target_session
from chatapp.notify.windows import MemoryWindows, PushWindows
from chatapp.observability import Metrics
from chatapp.presence import LiveDevices

if TYPE_CHECKING:
    # Web Push's key: cryptography is loaded only when Web Push is enabled.
    from cryptography.hazmat.primitives.asymmetric import ec


async def open_push(
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    *,
    accounts: Accounts,
    levels: PushLevels,
    live_devices: LiveDevices,
    clock: Clock,
    metrics: Metrics,
    windows: PushWindows | None = None,
    pending: PendingPushes | None = None,
    vapid_key: ec.EllipticCurvePrivateKey | None = None,
) -> Push:
    """The enabled providers with a delivery queue each, and the notifier that feeds them.

    Collapse windows wait in memory unless `windows` says where (a cluster's
    database); the Web Push key is the data folder's unless `vapid_key` is given.
    With `pending` (a cluster's), messages whose node died before their push work
    are taken over once stale.
    """
    session = aiohttp.ClientSession()
    stack.push_async_callback(session.close)
    targets = target_session(allow_private=settings.push_allow_private_targets)
    stack.push_async_callback(targets.close)
    context = ProviderContext(
        session=session,
        target_session=targets,
        clock=clock,
        data_dir=settings.data_dir,
        vapid_key=vapid_key,
    )
    providers = build_providers(settings, context)
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
    window_seconds = settings.push_collapse_window_ms / 1000
    notifier = Notifier(
        directory=accounts,
        levels=levels,
        live_devices=live_devices,
        queues=queues,
        windows=windows or MemoryWindows(clock, window_seconds=window_seconds),
        window_seconds=window_seconds,
        include_text=settings.push_include_text,
        pending=pending,
        sweep_seconds=sweep_seconds(settings.push_pending_lease_ms),
    )
    push = Push(
        accounts, providers, queues, notifier, webpush_public_key=_webpush_public_key(providers)
    )
    stack.push_async_callback(push.close)
    return push


def sweep_seconds(lease_ms: int) -> float:
    """How often stale pending pushes are looked for: a few times per lease, so that one is
    taken over soon after it goes stale, and at least once a second."""
    return min(lease_ms / 4000, 1.0)


def _webpush_public_key(providers: dict[str, PushProvider]) -> str | None:
    """The key browsers subscribe with, when Web Push is enabled."""
    webpush = providers.get("webpush")
    if webpush is None:
        return None
    # Imported only here: it loads pywebpush and cryptography, which only Web Push needs
    # (and which `build_providers` has just loaded to build it).
    from chatapp.notify.providers.webpush import WebPushProvider

    return webpush.public_key if isinstance(webpush, WebPushProvider) else None

"""The push providers, by the name devices register with and the settings enable."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from chatapp.config import Settings
from chatapp.notify.provider import PushProvider
from chatapp.notify.providers.context import ProviderContext

Builder = Callable[[Settings, ProviderContext], PushProvider]

# One line per provider, naming the module whose `build` makes it; see
# chatapp/notify/provider.py for adding one. A module is imported only when
# its provider is enabled: Web Push alone would bring pywebpush, requests and
# cryptography (about a tenth of the server's import time) to a server that logs.
BUILDERS: dict[str, str] = {
    "log": "chatapp.notify.providers.log",
    "webhook": "chatapp.notify.providers.webhook",
    "webpush": "chatapp.notify.providers.webpush",
    "ntfy": "chatapp.notify.providers.ntfy",
}


def builder(name: str) -> Builder:
    """The `build` function of the provider `name`, its module imported now."""
    build: Builder = importlib.import_module(BUILDERS[name]).build
    return build


def build_providers(settings: Settings, context: ProviderContext) -> dict[str, PushProvider]:
    """The providers `push_providers` enables, built from the settings."""
    return {name: builder(name)(settings, context) for name in settings.push_providers}


__all__ = ["BUILDERS", "ProviderContext", "build_providers", "builder"]

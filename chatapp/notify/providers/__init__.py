"""The push providers, by the name devices register with and the settings enable."""

from __future__ import annotations

from collections.abc import Callable

from chatapp.config import Settings
from chatapp.notify.provider import PushProvider
from chatapp.notify.providers import log as log_provider
from chatapp.notify.providers import ntfy, webhook, webpush
from chatapp.notify.providers.context import ProviderContext

Builder = Callable[[Settings, ProviderContext], PushProvider]

# One line per provider; see chatapp/notify/provider.py for adding one.
BUILDERS: dict[str, Builder] = {
    "log": log_provider.build,
    "webhook": webhook.build,
    "webpush": webpush.build,
    "ntfy": ntfy.build,
}


def build_providers(settings: Settings, context: ProviderContext) -> dict[str, PushProvider]:
    """The providers `push_providers` enables, built from the settings."""
    return {name: BUILDERS[name](settings, context) for name in settings.push_providers}


__all__ = ["BUILDERS", "ProviderContext", "build_providers"]

"""What the HTTP providers share: checking a target's URL, reading a push service's answer."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from chatapp.notify.provider import DeliveryFailed, InvalidTarget, TargetGone
from chatapp.notify.providers.guard import is_address_literal, is_public_address

MAX_URL_CHARS = 2048


def check_url(value: object, *, allow_http: bool, field: str, allow_private: bool = True) -> str:
    """An absolute https:// URL (http:// too when allowed) with a host.

    With `allow_private` false, a literal address must be a public one (names
    are checked when they are resolved: see guard.py).
    """
    if not isinstance(value, str):
        raise InvalidTarget(f"{field} must be a URL string")
    if len(value) > MAX_URL_CHARS:
        raise InvalidTarget(f"{field} is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InvalidTarget(f"{field} is not a valid URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        allowed = " or ".join(f"{scheme}://" for scheme in schemes)
        raise InvalidTarget(f"{field} must be an {allowed} URL")
    host = parts.hostname.strip("[]")
    if not allow_private and is_address_literal(host) and not is_public_address(host):
        raise InvalidTarget(f"{field} points at a private or local address")
    return value


def check_answer(status: int, reason: str, *, gone: Collection[int]) -> None:
    """Raise unless the push service took the notification (any 2xx).

    `gone` statuses mean the target will never work again. A timeout, 429 or
    5xx may pass later and is retried; any other refusal is final.
    """
    if 200 <= status < 300:
        return
    if status in gone:
        raise TargetGone(f"{status} {reason}")
    retryable = status in (408, 425, 429) or status >= 500
    raise DeliveryFailed(f"{status} {reason}", retryable=retryable)

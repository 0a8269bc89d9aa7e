"""What the HTTP providers share: checking a target's URL, posting to it, reading the answer."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from chatapp.notify.delivery import TargetRefused
from chatapp.notify.provider import DeliveryFailed, InvalidTarget, TargetGone
from chatapp.notify.providers.addresses import is_local_name, is_public, parse_address
from chatapp.notify.providers.guard import AddressRefused

MAX_URL_CHARS = 2048


def check_url(value: object, *, allow_http: bool, field: str, allow_private: bool = True) -> str:
    """An absolute https:// URL (http:// too when allowed) with a host.

    With `allow_private` false, the host must not be a private or local
    address in any spelling, nor a local name (see addresses.py); other names
    are checked when they are resolved (see guard.py).
    """
    if not isinstance(value, str):
        raise InvalidTarget(f"{field} must be a URL string")
    if len(value) > MAX_URL_CHARS:
        raise InvalidTarget(f"{field} is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
        # The host as the HTTP client will read it (IDNA mapping, IPv6 form).
        host = URL(value).raw_host
    except ValueError:
        raise InvalidTarget(f"{field} is not a valid URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname or not host:
        allowed = " or ".join(f"{scheme}://" for scheme in schemes)
        raise InvalidTarget(f"{field} must be an {allowed} URL")
    if not allow_private:
        _check_host(host, field)
    return value


def _check_host(host: str, field: str) -> None:
    address = parse_address(host)
    local = is_local_name(host) if address is None else not is_public(address)
    if local:
        raise InvalidTarget(f"{field} points at a private or local address")
    if _looks_numeric(host) and not _is_canonical_address(host):
        # The HTTP client refuses any other numeric form, so it could never be delivered to.
        raise InvalidTarget(f"{field} must write an IPv4 address as four decimal numbers")


def _looks_numeric(host: str) -> bool:
    return host.replace(".", "").isdigit()


def _is_canonical_address(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)  # refuses leading zeros, short and long forms
    except ValueError:
        return False
    return True


async def post_notification(
    session: aiohttp.ClientSession,
    url: str,
    *,
    data: bytes,
    headers: Mapping[str, str],
    gone: Collection[int],
    guarded: bool,
) -> None:
    """POST one notification to a user's target URL; raise unless the service took it.

    With `guarded`, a URL whose host is a private or local address (in any
    spelling) is refused before anything is sent: it may have been stored
    before the registration check existed, or while private targets were
    allowed. The guarded session also refuses such an address, literal or
    resolved, as it connects. Either way TargetRefused, which is never retried.

    Redirects are not followed: a push service answers at the URL it handed
    out, and following a 307 or 308 would post the body again to a place no
    one checked. A 3xx is a failure that is not retried (see `check_answer`).
    """
    if guarded:
        _refuse_private_literal(url)
    try:
        async with session.post(url, data=data, headers=headers, allow_redirects=False) as answer:
            status, reason = answer.status, answer.reason or ""
    except aiohttp.ClientConnectorError as error:  # the DNS error too
        if isinstance(error.os_error, AddressRefused):
            raise TargetRefused(str(error.os_error)) from error
        raise
    check_answer(status, reason, gone=gone)


def _refuse_private_literal(url: str) -> None:
    try:
        host = URL(url).raw_host or ""
    except ValueError:
        return  # the client refuses it as it posts (InvalidURL, not retried)
    address = parse_address(host)
    if address is not None and not is_public(address):
        raise TargetRefused(f"{host} is a private or local address")


def check_answer(status: int, reason: str, *, gone: Collection[int]) -> None:
    """Raise unless the push service took the notification (any 2xx).

    `gone` statuses mean the target will never work again. A timeout, 429 or
    5xx may pass later and is retried; any other refusal is final, redirects
    included (they are not followed).
    """
    if 200 <= status < 300:
        return
    if status in gone:
        raise TargetGone(f"{status} {reason}")
    if 300 <= status < 400:
        raise DeliveryFailed(f"{status} {reason}: redirects are not followed", retryable=False)
    retryable = status in (408, 425, 429) or status >= 500
    raise DeliveryFailed(f"{status} {reason}", retryable=retryable)

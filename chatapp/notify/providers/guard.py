"""Keeping user-supplied push URLs away from the server's own network.

A Web Push endpoint or an ntfy topic is a URL a user registers, and the server
POSTs to it. Without a guard, any user could make the server reach services
that only trust its own network (127.0.0.1, 10.0.0.0/8, cloud metadata at
169.254.169.254). The guarded session checks each address where it is used,
on every attempt:

- a name, when it is resolved (so one that is later rebound to a private
  address gains nothing);
- every address, literal or resolved, when a socket is opened for it, so a
  target stored before the guard existed, or while `push_allow_private_targets`
  was on, is refused too.

Registration refuses what can be known then (see `web.check_url`), so a user
hears of it with a 400 instead of a silent drop.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from chatapp.notify.providers.addresses import is_public_address


class AddressRefused(OSError):
    """The guard will not connect to this private or local address (see `web.post_notification`)."""


class PublicOnlyResolver(AbstractResolver):
    """Resolves names as `resolver` does (the system's by default), keeping public addresses."""

    def __init__(self, resolver: AbstractResolver | None = None) -> None:
        self._resolver = resolver or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        public = [result for result in found if is_public_address(result["host"])]
        if not public:
            raise AddressRefused(f"{host} resolves only to private or local addresses")
        return public

    async def close(self) -> None:
        await self._resolver.close()


def open_public_socket(addr_info: aiohttp.AddrInfoType) -> socket.socket:
    """The socket for one connection attempt, refused unless its address is public.

    The HTTP client connects to a literal address in a URL without asking the
    resolver, so this is where literals are checked (resolved ones again).
    """
    family, kind, proto, _, address = addr_info
    if not is_public_address(str(address[0])):
        raise AddressRefused(f"{address[0]} is a private or local address")
    return socket.socket(family, kind, proto)


def target_session(*, allow_private: bool, **session_options: Any) -> aiohttp.ClientSession:
    """The HTTP client for user-supplied URLs: public addresses only, unless allowed."""
    if allow_private:
        return aiohttp.ClientSession(**session_options)
    connector = aiohttp.TCPConnector(
        resolver=PublicOnlyResolver(), socket_factory=open_public_socket
    )
    return aiohttp.ClientSession(connector=connector, **session_options)

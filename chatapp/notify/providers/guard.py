"""Keeping user-supplied push URLs away from the server's own network.

A Web Push endpoint or an ntfy topic is a URL a user registers, and the server
POSTs to it. Without a guard, any user could make the server reach services
that only trust its own network (127.0.0.1, 10.0.0.0/8, cloud metadata at
169.254.169.254). Names are checked when they are resolved, on every
connection, so a name that later resolves elsewhere (DNS rebinding) gains
nothing; literal addresses are checked when the target is registered.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult


def is_public_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return False


def is_address_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class PublicOnlyResolver(AbstractResolver):
    """Resolves names as usual, then keeps only globally routable addresses."""

    def __init__(self) -> None:
        self._resolver = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        public = [result for result in found if is_public_address(result["host"])]
        if not public:
            raise OSError(f"{host} resolves only to private or local addresses")
        return public

    async def close(self) -> None:
        await self._resolver.close()


def target_session(*, allow_private: bool, **session_options: Any) -> aiohttp.ClientSession:
    """The HTTP client for user-supplied URLs: public addresses only, unless allowed."""
    if allow_private:
        return aiohttp.ClientSession(**session_options)
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver())
    return aiohttp.ClientSession(connector=connector, **session_options)

"""Who is calling, by address, when the server sits behind a reverse proxy.

Per-address limits (logins, signups) need the client's address. Behind a
proxy every request comes from the proxy; only when it is a proxy we trust do
we believe its X-Forwarded-For, reading from the right (the hop nearest to us)
past every trusted proxy, since a client can write anything on the left.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def client_address(remote: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    if not trusted or not _is_trusted(remote, trusted):
        return remote
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else remote


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)

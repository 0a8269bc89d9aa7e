"""Which hosts are the server's own network: addresses in every spelling, and local names.

A URL's host names an address in more spellings than the dotted quad. The
HTTP client reads `[::ffff:127.0.0.1]` as an IPv6 literal; the OS reads
`127.1`, `2130706433`, `0x7f.1` and `017700000001` as 127.0.0.1 (inet_aton's
old forms, which the resolver still accepts). `parse_address` reads a host as
either of them would, so the guard judges the address a connection would
reach, whatever the spelling.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import unquote

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64 (RFC 6052): the last 32 bits are the IPv4 address a packet is sent on to.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# Top-level labels no public push service can have: `localhost` (RFC 6761),
# mDNS `.local` (RFC 6762), `.arpa` (reverse zones, `.home.arpa` of RFC 8375),
# `.internal` (reserved for private use, as in metadata.google.internal), and
# the undelegated suffixes private networks and /etc/hosts files use.
LOCAL_TOP_LABELS = frozenset(
    {"localhost", "local", "arpa", "internal"}
    | {"localdomain", "lan", "home", "corp", "intranet", "private"}
)

# One part of an inet_aton address: hex (0x…), octal (a leading 0) or decimal.
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def parse_address(host: str) -> IPAddress | None:
    """The address `host` stands for, as the HTTP client or the OS would read it; None for a name.

    `host` may keep a URL's brackets, percent-escapes and a trailing dot.
    """
    bare = unquote(host).strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    return _inet_aton(bare) or _numeric_by_os(bare)


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address.

    An IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64) is judged
    by the IPv4 address, which is where its packets end up.
    """
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour
        if carried is None and address in NAT64:
            carried = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if carried is not None:
            return is_public(carried)
        if address.is_site_local:
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


def is_public_address(host: str) -> bool:
    """True when `host` is an address (any spelling) and a public one; False for a name."""
    address = parse_address(host)
    return address is not None and is_public(address)


def is_local_name(host: str) -> bool:
    """True for a name only this host or its own network can answer.

    A name without a dot is completed from the resolver's search domains (a
    container's neighbours, `metadata`), so it counts as local too.
    """
    name = host.lower().rstrip(".")
    return "." not in name or name.rsplit(".", 1)[1] in LOCAL_TOP_LABELS


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """inet_aton's forms: one to four numbers, the last filling the bytes that are left."""
    parts = text.split(".")
    if len(parts) > 4 or not all(_NUMBER.fullmatch(part) for part in parts):
        return None
    *leading, last = [_number(part) for part in parts]
    if any(value > 0xFF for value in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for index, byte in enumerate(leading):
        value |= byte << (24 - 8 * index)
    return ipaddress.IPv4Address(value)


def _number(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:], 16)
    return int(part, 8 if part.startswith("0") else 10)


def _numeric_by_os(text: str) -> IPAddress | None:
    """What this OS's resolver takes `text` for as a number (no lookup is made), if anything."""
    try:
        found = socket.getaddrinfo(text, None, flags=socket.AI_NUMERICHOST)
        return ipaddress.ip_address(found[0][4][0])
    except (OSError, ValueError, IndexError):
        return None

"""A bus message on Redis: who sent it, then the event as `EventCodec` encodes it.

    <origin> "\n" <{"type": ..., "event": {...}}>

`origin` is the sending process's `NodeIdentity.tag`, or `*` for an event a
Lua script published atomically with the change it reports (`PresenceChanged`):
such an event is delivered by every node, the one that ran the script
included, so that all of them see the changes in the order Redis made them.
"""

from __future__ import annotations

EVERYONE = "*"
_SEPARATOR = b"\n"


def wrap(origin: str, payload: bytes) -> bytes:
    return origin.encode() + _SEPARATOR + payload


def prefix(origin: str) -> bytes:
    """What a Lua script puts before the event it publishes."""
    return origin.encode() + _SEPARATOR


def unwrap(message: bytes) -> tuple[str, bytes]:
    """The origin and the payload; the origin is "" when the message has none."""
    origin, separator, payload = message.partition(_SEPARATOR)
    if not separator:
        return "", message
    return origin.decode(errors="replace"), payload

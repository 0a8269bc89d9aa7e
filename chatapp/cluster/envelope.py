"""A bus message on Redis: who sent it, then one event or more as `EventCodec` encodes them.

    <origin> "\n" <{"type": ..., "event": {...}}> ( "\n" <{"type": ...}> )*

An encoded event is compact JSON, which never holds a raw newline, so the
events a node sends together travel as one message: a receiving node reads
one message from Redis, not one each. (A node older than this format takes
such a message for one bad event and drops it; the store fills the gaps.)

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


def wrap_many(origin: str, payloads: list[bytes]) -> bytes:
    """One message of several events, read back in order by `unwrap_many`."""
    return _SEPARATOR.join([origin.encode(), *payloads])


def prefix(origin: str) -> bytes:
    """What a Lua script puts before the event it publishes."""
    return origin.encode() + _SEPARATOR


def unwrap(message: bytes) -> tuple[str, bytes]:
    """The origin and the payload; the origin is "" when the message has none."""
    origin, separator, payload = message.partition(_SEPARATOR)
    if not separator:
        return "", message
    return origin.decode(errors="replace"), payload


def unwrap_many(message: bytes) -> tuple[str, list[bytes]]:
    """The origin and each event's payload, in order; the origin is "" when there is none."""
    origin, separator, payload = message.partition(_SEPARATOR)
    if not separator:
        return "", [message]
    return origin.decode(errors="replace"), payload.split(_SEPARATOR)

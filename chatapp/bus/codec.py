"""Events as JSON lines: how an event leaves one process and arrives in another."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from pydantic import BaseModel, ValidationError


class UnknownEvent(ValueError):
    """A line that is not JSON, names no known event type, or does not fit it."""


class EventCodec:
    """Encodes an event with its type's name; decodes only the types it was given.

    A peer can therefore make this process publish only events the server
    defines, each validated by its own model.
    """

    def __init__(self, event_types: Iterable[type[BaseModel]]) -> None:
        self._types = {event_type.__name__: event_type for event_type in event_types}

    @property
    def names(self) -> list[str]:
        return sorted(self._types)

    def encode(self, event: BaseModel) -> bytes:
        name = type(event).__name__
        if self._types.get(name) is not type(event):
            raise UnknownEvent(f"{name} is not an event this bus carries")
        # The event's JSON straight from pydantic-core, and the envelope around it as
        # bytes: a cluster node encodes every event it publishes, so no dict between.
        return b'{"type":"%s","event":%s}' % (name.encode(), event.model_dump_json().encode())

    def decode(self, line: bytes) -> BaseModel:
        try:
            # msgspec parses in C: every node decodes every other node's events.
            document = msgspec.json.decode(line)
        except (msgspec.DecodeError, ValueError, RecursionError):
            raise UnknownEvent("not a JSON line") from None
        if not isinstance(document, dict):
            raise UnknownEvent("not a JSON object")
        event_type = self._types.get(str(document.get("type")))
        if event_type is None:
            raise UnknownEvent(f"unknown event type {document.get('type')!r}")
        try:
            return event_type.model_validate(document.get("event"))
        except ValidationError as error:
            raise UnknownEvent(f"{event_type.__name__}: {error.error_count()} bad fields") from None

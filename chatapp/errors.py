"""Refusals a module can give. Each carries the protocol's error code.

Modules raise these; the HTTP API and the WebSocket gateway turn them into the
protocol's error envelope or `error` frame. The class says what kind of refusal
it is, so the edges can choose a status without a table of codes.
"""

from __future__ import annotations


class Refused(Exception):
    """Base of every expected refusal; never a bug."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidInput(Refused):
    """A value broke one of the protocol's named limits (422)."""


class BadRequest(Refused):
    """The request is malformed: a field missing or of the wrong type (400)."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_request", message)


class Unauthorized(Refused):
    """No valid credentials (401)."""


class Forbidden(Refused):
    """Known caller, not allowed to do this (403)."""


class NotFound(Refused):
    """No such object, or the caller may not know it exists (404)."""


class Conflict(Refused):
    """The request clashes with what exists (409)."""


class RateLimited(Refused):
    """Too many attempts; try again after `retry_after` seconds (429)."""

    def __init__(self, retry_after: float, message: str = "too many attempts") -> None:
        super().__init__("rate_limited", message)
        self.retry_after = retry_after


class Unavailable(Refused):
    """A store could not do its part now; nothing was changed (503)."""


class StoreFailed(Exception):
    """A store could not do its part now (a disk, a lock, a lost connection).

    Each module's store raises its own subclass, never its engine's exception
    type, so that the edges can answer 503 whatever engine is behind a store.
    """


class StartupRefused(Exception):
    """The server cannot start as configured; the message says why, in one line."""

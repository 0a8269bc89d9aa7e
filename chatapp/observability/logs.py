"""structlog set-up: JSON lines for machines, readable lines for a terminal."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Literal, TextIO, cast

import structlog

_SECRET_KEYS = frozenset({"password", "token", "authorization", "password_hash", "token_hash"})


def _drop_secrets(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Last line of defence: a secret passed by mistake is never written out."""
    for key in _SECRET_KEYS.intersection(event):
        event[key] = "[redacted]"
    return event


class _LossyStream:
    """stderr that drops a line it cannot write (full disk, closed pipe).

    A log line is never worth failing the request or the send it describes.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return 0

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()


def configure_logging(
    level: str = "info", log_format: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Send structured events to stderr. Called once by the process entry point."""
    use_console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # PrintLogger only calls write() and flush(), which _LossyStream has.
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _LossyStream(sys.stderr))),
        cache_logger_on_first_use=False,
    )

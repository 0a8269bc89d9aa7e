"""structlog set-up: JSON lines for machines, readable lines for a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_SECRET_KEYS = frozenset({"password", "token", "authorization", "password_hash", "token_hash"})


def _drop_secrets(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Last line of defence: a secret passed by mistake is never written out."""
    for key in _SECRET_KEYS.intersection(event):
        event[key] = "[redacted]"
    return event


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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )

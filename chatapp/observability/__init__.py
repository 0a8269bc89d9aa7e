"""Logs and metrics: how the process tells operators what it is doing."""

from chatapp.observability.logs import configure_logging
from chatapp.observability.loop_lag import LoopLag
from chatapp.observability.metrics import Metrics

__all__ = ["LoopLag", "Metrics", "configure_logging"]

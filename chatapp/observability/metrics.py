"""Prometheus metrics, one registry per application so several apps can share a process."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class BusFigures(Protocol):
    """What the bus reports (`chatapp.bus.BusStats`)."""

    @property
    def sent(self) -> int: ...

    @property
    def received(self) -> int: ...

    @property
    def backlog(self) -> int: ...


class CollectorFigures(Protocol):
    """What the garbage collector's watch reports (`bootstrap.collector.CollectorPauses`),
    each by generation, 0 to 2."""

    @property
    def collections(self) -> Sequence[int]: ...

    @property
    def seconds(self) -> Sequence[float]: ...


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The process's counters. Modules receive this object; none creates metrics of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "chatapp_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "chatapp_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.open_connections = Gauge(
            "chatapp_open_connections",
            "Connections open now: HTTP requests in flight and WebSockets, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "chatapp_rate_limited_total",
            "Requests refused by an abuse limit, by limit.",
            ["limit"],
            registry=self.registry,
        )
        self.push_notifications = Counter(
            "chatapp_push_notifications_total",
            "Push notifications by provider and outcome: sent, failed (given up), retried,"
            " dropped (the provider's queue was full).",
            ["provider", "outcome"],
            registry=self.registry,
        )

        self.outgoing_bytes = Gauge(
            "chatapp_outgoing_bytes",
            "Bytes queued for WebSockets and not yet written, all connections together.",
            registry=self.registry,
        )
        self.messages_expired = Counter(
            "chatapp_messages_expired_total",
            "Messages that message_retention_days turned into deleted messages.",
            registry=self.registry,
        )
        self.retention_sweeps = Counter(
            "chatapp_retention_sweeps_total",
            "Retention sweeps by outcome: done, failed, or elsewhere (another node's turn).",
            ["outcome"],
            registry=self.registry,
        )
        self.event_loop_lag = Gauge(
            "chatapp_event_loop_lag_seconds",
            "How late the event loop ran a timer in the last second: work that held it.",
            registry=self.registry,
        )

    def watch_bus(self, stats: Callable[[], BusFigures]) -> None:
        """Report the bus's figures, read from `stats` at each scrape."""
        self.registry.register(_BusCollector(stats))

    def watch_collector(self, figures: CollectorFigures) -> None:
        """Report the garbage collector's collections and pauses, read at each scrape."""
        self.registry.register(_CollectorCollector(figures))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _BusCollector(Collector):
    def __init__(self, stats: Callable[[], BusFigures]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        yield CounterMetricFamily(
            "chatapp_bus_events_sent",
            "Events this node handed to the other nodes (cluster mode).",
            value=stats.sent,
        )
        yield CounterMetricFamily(
            "chatapp_bus_events_received",
            "Events from other nodes handed to this node's subscribers (cluster mode).",
            value=stats.received,
        )
        yield GaugeMetricFamily(
            "chatapp_bus_backlog",
            "Events queued or being handled here, or waiting to be sent: a backlog that"
            " grows means a subscriber cannot keep up.",
            value=stats.backlog,
        )


class _CollectorCollector(Collector):
    def __init__(self, figures: CollectorFigures) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        collections = CounterMetricFamily(
            "chatapp_gc_collections",
            "Collections of the cyclic garbage collector, by generation.",
            labels=["generation"],
        )
        pauses = CounterMetricFamily(
            "chatapp_gc_pause_seconds",
            "Time the cyclic garbage collector held the process, by generation: every"
            " request and socket waits while it runs.",
            labels=["generation"],
        )
        for generation in range(3):
            label = [str(generation)]
            collections.add_metric(label, self._figures.collections[generation])
            pauses.add_metric(label, self._figures.seconds[generation])
        yield collections
        yield pauses

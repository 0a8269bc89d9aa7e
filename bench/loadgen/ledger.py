"""What the generator sent, what was acknowledged, and what each connection received.

Every message text starts with `t=<perf_counter_ns>;`, the moment the
generator wrote it to the socket. The recipient reads the clock when the
`message` frame arrives, in the same process, so send-to-delivery latency
needs no clock shared between machines.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MessageKey = tuple[int, int]
"""(channel_id, message_id): how the server names a stored message."""


def stamped_text(now_ns: int, chars: int) -> str:
    """A message text carrying its send time, padded to `chars` characters."""
    head = f"t={now_ns};"
    return head + "x" * max(0, chars - len(head))


def sent_at(text: str) -> int | None:
    """The send time stamped into a text by `stamped_text`, or None for a text without it."""
    if not text.startswith("t="):
        return None
    end = text.find(";")
    return int(text[2:end]) if end > 2 else None


@dataclass
class Ledger:
    """Counts for one phase of a scenario; `measure_from_ns` starts the latency samples.

    `recipients` maps a channel to the indices of the connections that should
    receive its messages (the sending connection is skipped: it gets `ack`).
    Against a cluster, each send and receipt names the node of its
    connection: a delivery whose sender sat on another node crossed the
    cluster (through Redis), and is counted and timed apart as well.
    """

    recipients: Mapping[int, Sequence[int]] = field(default_factory=dict)
    measure_from_ns: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    """client_msg_id -> send time (ns)."""
    acked: dict[MessageKey, int] = field(default_factory=dict)
    """Acknowledged message -> the index of the connection that sent it."""
    received: dict[int, set[MessageKey]] = field(default_factory=dict)
    """Connection index -> messages it received as `message` frames."""
    ack_latency_ns: list[int] = field(default_factory=list)
    delivery_latency_ns: list[int] = field(default_factory=list)
    sent_from: dict[str, int] = field(default_factory=dict)
    """client_msg_id -> the node its sender's connection was on (cluster only)."""
    cross_node_latency_ns: list[int] = field(default_factory=list)
    cross_node_deliveries: int = 0
    same_node_deliveries: int = 0
    acks: int = 0
    owed: int = 0
    """Deliveries owed for the acknowledged messages."""
    deliveries: int = 0
    duplicates: int = 0
    stray_acks: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    first_send_ns: int = 0
    last_ack_ns: int = 0
    last_delivery_ns: int = 0

    def on_send(self, client_msg_id: str, now_ns: int, node: int | None = None) -> None:
        self.sent[client_msg_id] = now_ns
        if node is not None:
            self.sent_from[client_msg_id] = node
        if not self.first_send_ns:
            self.first_send_ns = now_ns

    def on_ack(
        self, link_index: int, client_msg_id: str, channel_id: int, message_id: int, now_ns: int
    ) -> None:
        started = self.sent.get(client_msg_id)
        if started is None:
            self.stray_acks += 1
            return
        self.acked[(channel_id, message_id)] = link_index
        self.acks += 1
        members = self.recipients.get(channel_id, ())
        self.owed += len(members) - (link_index in members)
        self.last_ack_ns = now_ns
        if started >= self.measure_from_ns:
            self.ack_latency_ns.append(now_ns - started)

    def on_message(
        self,
        link_index: int,
        channel_id: int,
        message_id: int,
        text: str | None,
        client_msg_id: str | None,
        now_ns: int,
        node: int | None = None,
    ) -> None:
        key = (channel_id, message_id)
        seen = self.received.get(link_index)
        if seen is None:
            seen = self.received[link_index] = set()
        if key in seen:
            self.duplicates += 1
            return
        seen.add(key)
        self.deliveries += 1
        self.last_delivery_ns = now_ns
        started = sent_at(text) if text is not None else None
        latency = None
        if started is not None and started >= self.measure_from_ns:
            latency = now_ns - started
            self.delivery_latency_ns.append(latency)
        if node is None:
            return
        sender_node = self.sent_from.get(client_msg_id or "")
        if sender_node is None:
            return
        if sender_node == node:
            self.same_node_deliveries += 1
            return
        self.cross_node_deliveries += 1
        if latency is not None:
            self.cross_node_latency_ns.append(latency)

    def on_refusal(self, code: str) -> None:
        self.refusals[code] += 1

    def unacknowledged(self) -> int:
        return len(self.sent) - self.acks - sum(self.refusals.values())

    def settled(self) -> bool:
        """Every send answered and every owed delivery made (or as many deliveries)."""
        return self.unacknowledged() <= 0 and self.deliveries >= self.owed

    def lost(self) -> int:
        """Deliveries owed for acknowledged messages that never arrived."""
        return sum(self.missing().values())

    def missing(self) -> Counter[int]:
        """Connection index -> deliveries owed to it that never arrived."""
        missing: Counter[int] = Counter()
        for key, sender in self.acked.items():
            for link in self.recipients.get(key[0], ()):
                if link != sender and key not in self.received.get(link, ()):
                    missing[link] += 1
        return missing


def percentiles_ms(samples_ns: Iterable[int]) -> dict[str, float | int]:
    """p50, p95, p99 and max in milliseconds (nearest rank), with the sample count."""
    ordered = sorted(samples_ns)
    if not ordered:
        return {"count": 0}

    def rank(fraction: float) -> float:
        index = min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.5) - 1))
        return round(ordered[index] / 1e6, 3)

    return {
        "count": len(ordered),
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": round(ordered[-1] / 1e6, 3),
    }


def now_ns() -> int:
    return time.perf_counter_ns()


def summarise(ledger: Ledger) -> dict[str, Any]:
    """The phase's counts, rates and latency percentiles, ready for JSON."""
    ack_span = (ledger.last_ack_ns - ledger.first_send_ns) / 1e9
    delivery_span = (ledger.last_delivery_ns - ledger.first_send_ns) / 1e9
    missing = ledger.missing()
    return {
        "sent": len(ledger.sent),
        "acked": ledger.acks,
        "unacknowledged": max(0, ledger.unacknowledged()),
        "refused": dict(ledger.refusals),
        "delivered": ledger.deliveries,
        "owed": ledger.owed,
        "lost": sum(missing.values()),
        "lost_by_connection": dict(missing.most_common(5)),
        "duplicated": ledger.duplicates,
        "acked_per_s": round(ledger.acks / ack_span, 1) if ack_span > 0 else 0.0,
        "delivered_per_s": round(ledger.deliveries / delivery_span, 1)
        if delivery_span > 0
        else 0.0,
        "ack_latency_ms": percentiles_ms(ledger.ack_latency_ns),
        "delivery_latency_ms": percentiles_ms(ledger.delivery_latency_ns),
        **_cross_node(ledger),
    }


def _cross_node(ledger: Ledger) -> dict[str, Any]:
    """Against a cluster: deliveries whose sender was on another node, and their latency."""
    if not ledger.sent_from:
        return {}
    return {
        "cross_node": {
            "delivered": ledger.cross_node_deliveries,
            "same_node_delivered": ledger.same_node_deliveries,
            "latency_ms": percentiles_ms(ledger.cross_node_latency_ns),
        }
    }

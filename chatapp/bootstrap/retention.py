"""Retention as the composition root builds it: the ledger and the turn of the engine in use."""

from __future__ import annotations

import contextlib
from typing import Any

from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.config import Settings
from chatapp.messaging import MessageStore
from chatapp.messaging.adapters import LevelDBMessageStore
from chatapp.messaging.adapters.leveldb_retention import LevelDBRetentionLedger
from chatapp.messaging.retention import Members, Retention, RetentionLedger, RetentionTurn
from chatapp.observability import Metrics


async def start_retention(
    settings: Settings,
    messages: MessageStore,
    *,
    members: Members,
    bus: Bus,
    clock: Clock,
    metrics: Metrics,
    stack: contextlib.AsyncExitStack,
    pool: Any = None,
) -> Retention | None:
    """Start sweeping when `message_retention_days` is set; None when messages are kept.

    `pool` is the cluster's PostgreSQL pool, in cluster mode.
    """
    if not settings.message_retention_days:
        return None
    ledger: RetentionLedger
    turn: RetentionTurn | None = None
    if pool is not None:
        # Imported here: the embedded default never loads a cluster driver.
        from chatapp.messaging.adapters.postgres_retention import PostgresRetention

        ledger = turn = PostgresRetention(pool)
    else:
        if not isinstance(messages, LevelDBMessageStore):
            raise TypeError(f"no retention ledger for {type(messages).__name__}")
        ledger = LevelDBRetentionLedger(messages)
    retention = Retention(
        messages,
        ledger,
        members,
        bus,
        clock,
        days=settings.message_retention_days,
        turn=turn,
        on_expired=metrics.messages_expired.inc,
        on_sweep=lambda outcome: metrics.retention_sweeps.labels(outcome).inc(),
    )
    retention.start()
    stack.push_async_callback(retention.close)
    return retention

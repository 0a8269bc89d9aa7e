"""The audit log as the other parts of the module write and read it."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from chatapp.clock import Clock
from chatapp.errors import StoreFailed
from chatapp.operators.models import AuditAction, AuditEntry, AuditEvent, AuditTarget
from chatapp.operators.store import AuditLog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    has_more: bool


class AuditTrail:
    """Records what operators did, after they did it.

    An action is recorded once it has taken effect. A line the store cannot
    write does not undo the action nor fail it (it is done, and repeating it
    would change nothing): it is logged as `audit_not_recorded` with every
    field instead, so the server's log keeps it.
    """

    def __init__(self, audit_log: AuditLog, clock: Clock) -> None:
        self._log = audit_log
        self._clock = clock

    async def record(
        self,
        actor_id: int | None,
        action: AuditAction,
        target: AuditTarget,
        *,
        reason: str | None = None,
    ) -> AuditEvent | None:
        """The recorded event; None when the store could not write it (logged instead)."""
        entry = AuditEntry(
            at=self._clock.now_ms(), actor_id=actor_id, action=action, target=target, reason=reason
        )
        try:
            event = await self._log.append(entry)
        except StoreFailed as failure:
            # The line's only copy then: every field, the target's id (an invite's code) too.
            log.error(
                "audit_not_recorded",
                actor_id=actor_id,
                action=action,
                target=target.model_dump(),
                reason=reason,
                error=str(failure),
            )
            return None
        # Not the target's id: an invite's code is a secret the store keeps well enough.
        log.info(
            "audit_recorded",
            event_id=event.event_id,
            actor_id=actor_id,
            action=action,
            target_kind=target.kind,
        )
        return event

    async def page(self, *, after: int, limit: int) -> AuditPage:
        """Events after the event id `after`, oldest first."""
        events = await self._log.events(after=after, limit=limit + 1)
        return AuditPage(events=events[:limit], has_more=len(events) > limit)

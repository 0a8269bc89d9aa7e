"""Read receipts: how far the members of a channel have read, shown to the members who share.

Sharing is reciprocal. A user who shares lets the other members see their read
marker and sees the markers of the others who share; a user who does not
share is shown no one's but their own. The setting belongs to the accounts
module (`ReceiptSharing`); the markers are social's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import structlog
from pydantic import BaseModel, ConfigDict

from chatapp.bus import Bus
from chatapp.errors import StoreFailed
from chatapp.social.events import ReceiptShared
from chatapp.social.sender_reads import SenderReadMarks
from chatapp.social.store import ChannelStore

log = structlog.get_logger(__name__)


class ReceiptSharing(Protocol):
    """Who lets others see how far they have read."""

    async def receipt_sharers(self, user_ids: Iterable[int]) -> set[int]:
        """The subset of these users who share their read receipts."""
        ...


class Receipt(BaseModel):
    """How far one member has read a channel (0: nothing yet)."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    read_message_id: int


class Receipts:
    """Lists the receipts a member may see, and announces a sharer's moved marker."""

    def __init__(
        self,
        store: ChannelStore,
        sharing: ReceiptSharing,
        sender_reads: SenderReadMarks,
        bus: Bus,
    ) -> None:
        self._store = store
        self._sharing = sharing
        self._sender_reads = sender_reads
        self._bus = bus

    async def visible_to(
        self, viewer_id: int, channel_id: int, members: frozenset[int]
    ) -> list[Receipt]:
        """The receipts `viewer_id` (a member) may see, by user id: every sharing member's,
        the viewer's own included; only the viewer's own when the viewer does not share."""
        sharers = await self._sharing.receipt_sharers(members)
        shown = sharers if viewer_id in sharers else {viewer_id}
        markers = await self._store.read_markers(channel_id)
        return [
            Receipt(
                user_id=user_id,
                read_message_id=self._sender_reads.merged(channel_id, user_id, markers[user_id]),
            )
            # A member who left since `members` was read has no marker, and no receipt.
            for user_id in sorted(shown)
            if user_id in markers
        ]

    async def share(
        self, reader_id: int, channel_id: int, message_id: int, members: frozenset[int]
    ) -> None:
        """Tell the other sharing members that `reader_id` has read up to `message_id`,
        when the reader shares.

        The marker has moved already: a user store that cannot answer costs the
        receipt, never the read itself.
        """
        try:
            sharers = await self._sharing.receipt_sharers(members)
        except StoreFailed:
            log.exception("receipt_not_shared", channel_id=channel_id, user_id=reader_id)
            return
        if reader_id not in sharers:
            return
        viewers = tuple(sorted(sharers - {reader_id}))
        if viewers:
            self._bus.publish(
                ReceiptShared(
                    channel_id=channel_id,
                    user_id=reader_id,
                    message_id=message_id,
                    viewer_ids=viewers,
                )
            )

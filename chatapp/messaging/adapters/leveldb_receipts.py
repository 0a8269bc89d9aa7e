"""The idempotency records of the latest sends, kept in memory as well as on disk.

Every send is looked up twice: `LevelDBMessageStore.original` answers a
repeat before the send is checked, and `form_batch` makes sure, at the only
moment it can be sure, that nothing stored the same send in between. A miss
costs a LevelDB read each time (a few microseconds, and the GIL handed to the
writer's thread). The second read adds nothing when the first found nothing
and every send stored since is known here: only those could hold the key.
"""

from __future__ import annotations

from typing import Final

Receipt = tuple[int, int, int]
"""`(channel_id, message_id, sender's seq)` of a stored send, as on disk."""

RECENT_RECEIPTS: Final = 8192
"""At most this many of the latest receipts are kept, and at least half as many: well
over the sends that can be in flight between the first lookup and the batch (two
batches of `MAX_BATCH_SENDS`), at about 200 bytes each."""


class RecentReceipts:
    """The receipts of the last sends stored, and a mark that says how many ever were.

    A lookup that found a key absent from disk at `mark()` stays true for as
    long as `covers(mark)`: every receipt added since is still here. They are
    kept in two generations, the newer filled while the older is kept whole,
    because dropping the oldest entry of one dict one at a time makes finding
    the next oldest slower with every entry dropped.
    """

    __slots__ = ("_added", "_half", "_kept_from", "_newer", "_older")

    def __init__(self, capacity: int = RECENT_RECEIPTS) -> None:
        self._half = max(1, capacity // 2)
        self._newer: dict[bytes, Receipt] = {}
        self._older: dict[bytes, Receipt] = {}
        self._added = 0
        # How many had been added before the oldest receipt kept.
        self._kept_from = 0

    def mark(self) -> int:
        """Where the receipts stand now; take it before reading the disk."""
        return self._added

    def covers(self, mark: int) -> bool:
        """Whether every receipt added since `mark` is still kept."""
        return mark >= self._kept_from

    def get(self, key: bytes) -> Receipt | None:
        receipt = self._newer.get(key)
        return self._older.get(key) if receipt is None else receipt

    def add(self, key: bytes, receipt: Receipt) -> None:
        """A send whose batch has landed; the older generation goes when the newer is full."""
        if len(self._newer) >= self._half:
            self._older, self._newer = self._newer, {}
            self._kept_from = self._added - len(self._older)
        self._newer[key] = receipt
        self._added += 1

    def forget(self) -> None:
        """The disk may differ from what was seen (reopened after a failed write): no
        mark taken before covers anything any more."""
        self._newer, self._older = {}, {}
        self._added += 1
        self._kept_from = self._added

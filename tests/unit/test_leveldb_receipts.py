"""The writer's receipts of the latest sends: what a mark taken before a disk read covers."""

from __future__ import annotations

from chatapp.messaging.adapters.leveldb_receipts import RecentReceipts


def test_a_mark_covers_the_receipts_added_since_while_all_of_them_are_kept() -> None:
    receipts = RecentReceipts(capacity=2)
    mark = receipts.mark()
    receipts.add(b"a", (1, 1, 1))
    receipts.add(b"b", (1, 2, 2))

    assert receipts.covers(mark)
    assert receipts.get(b"a") == (1, 1, 1)

    receipts.add(b"c", (1, 3, 3))

    assert not receipts.covers(mark), "a, added since the mark, was dropped"
    assert receipts.get(b"a") is None
    assert receipts.covers(mark + 1)
    assert receipts.get(b"c") == (1, 3, 3)


def test_forget_drops_every_receipt_and_every_mark_taken_before() -> None:
    receipts = RecentReceipts(capacity=8)
    receipts.add(b"a", (1, 1, 1))
    mark = receipts.mark()

    receipts.forget()

    assert receipts.get(b"a") is None
    assert not receipts.covers(mark)
    assert receipts.covers(receipts.mark())

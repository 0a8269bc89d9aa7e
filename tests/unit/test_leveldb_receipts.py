"""The writer's receipts of the latest sends: what a mark taken before a disk read covers."""

from __future__ import annotations

from chatapp.messaging.adapters.leveldb_receipts import RecentReceipts


def test_a_mark_covers_the_receipts_added_since_while_all_of_them_are_kept() -> None:
    receipts = RecentReceipts(capacity=4)
    mark = receipts.mark()
    for n in range(4):
        receipts.add(b"k%d" % n, (1, n, n))

    assert receipts.covers(mark)
    assert [receipts.get(b"k%d" % n) for n in range(4)] == [(1, n, n) for n in range(4)]

    receipts.add(b"k4", (1, 4, 4))

    assert not receipts.covers(mark), "k0 and k1, added since the mark, were dropped"
    assert receipts.get(b"k0") is None
    assert receipts.get(b"k1") is None
    assert not receipts.covers(mark + 1)
    assert receipts.covers(mark + 2)
    assert [receipts.get(b"k%d" % n) for n in range(2, 5)] == [(1, n, n) for n in range(2, 5)]


def test_forget_drops_every_receipt_and_every_mark_taken_before() -> None:
    receipts = RecentReceipts(capacity=8)
    receipts.add(b"a", (1, 1, 1))
    mark = receipts.mark()

    receipts.forget()

    assert receipts.get(b"a") is None
    assert not receipts.covers(mark)
    after = receipts.mark()
    assert receipts.covers(after)
    receipts.add(b"b", (1, 2, 2))
    assert receipts.covers(after)
    assert receipts.get(b"b") == (1, 2, 2)

"""The LevelDB store's counters in memory: what a read from disk may add to them."""

from __future__ import annotations

from chatapp.messaging.adapters.leveldb_batch import Counters


def test_a_counter_read_from_disk_is_kept_unless_one_is_known_or_forgotten_since() -> None:
    """learn_last_message_id keeps a read counter; one the writer keeps wins; a read begun
    before `forget` is answered but not kept, since the disk may have changed under it."""
    counters = Counters(last_message_ids={1: 9})

    assert counters.learn_last_message_id(1, 7, read_after=counters.forgotten) == 9
    assert counters.learn_last_message_id(2, 5, read_after=counters.forgotten) == 5
    assert counters.last_message_ids == {1: 9, 2: 5}

    before = counters.forgotten
    counters.forget()

    assert counters.learn_last_message_id(3, 4, read_after=before) == 4
    assert counters.last_message_ids == {}
    assert counters.learn_last_message_id(3, 4, read_after=counters.forgotten) == 4
    assert counters.last_message_ids == {3: 4}

"""How far a device has processed its inbox, and which incoming messages are news to it."""

from __future__ import annotations


class InboxPosition:
    """`last_seq`, the highest inbox seq processed, and this client's own sends above it.

    `last_seq=None` means nothing was processed yet (a new device: no replay).
    """

    def __init__(self, last_seq: int | None) -> None:
        self.last_seq = last_seq
        # Seqs of this client's own acknowledged sends above last_seq: a replay
        # brings them back as `message` frames, which are not news to it.
        self._acked_seqs: set[int] = set()

    def is_news(self, seq: int) -> bool:
        return seq > (self.last_seq or 0) and seq not in self._acked_seqs

    def acknowledged(self, seq: int) -> None:
        """One of this client's sends was stored at `seq`."""
        # Not a step of last_seq: acks and `message` frames are not ordered
        # between themselves, so a message with a lower seq may still be coming.
        if seq > (self.last_seq or 0):
            self._acked_seqs.add(seq)

    def advance(self, seq: int) -> None:
        if self.last_seq is None or seq > self.last_seq:
            self.last_seq = seq
            if self._acked_seqs:
                self._acked_seqs = {acked for acked in self._acked_seqs if acked > seq}

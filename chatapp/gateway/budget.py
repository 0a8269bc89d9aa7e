"""How much outgoing data the server holds for its sockets: per connection and in all.

A client that does not read makes the server hold what it sends it. Each
connection may hold `per_connection` bytes; all connections together
`total`. When the total is reached, the connection holding the most is
closed (1013, it comes back and syncs from the store), so that one account
with many stalled sockets cannot make the server hold more and more memory.
"""

from __future__ import annotations

from typing import Protocol


class Holder(Protocol):
    """A connection, as the budget sees it."""

    def close(self, code: int, reason: str = "") -> None: ...


class OutgoingBudget:
    def __init__(self, *, per_connection: int, total: int) -> None:
        self.per_connection = per_connection
        self.total = total
        self.held = 0
        self._by_holder: dict[Holder, int] = {}

    def reserve(self, holder: Holder, size: int) -> bool:
        """Count `size` bytes as held by `holder`; False when that would pass the total."""
        if self.held + size > self.total:
            return False
        self.held += size
        self._by_holder[holder] = self._by_holder.get(holder, 0) + size
        return True

    def release(self, holder: Holder, size: int) -> None:
        if holder not in self._by_holder:  # forgotten already: it closed
            return
        held = self._by_holder[holder] - size
        self.held -= size
        if held > 0:
            self._by_holder[holder] = held
        else:
            self._by_holder.pop(holder, None)

    def forget(self, holder: Holder) -> None:
        """Everything `holder` held is dropped (it closed)."""
        self.held -= self._by_holder.pop(holder, 0)

    def largest(self) -> Holder | None:
        """Who holds the most (scanned only when the total is reached, which is rare)."""
        if not self._by_holder:
            return None
        return max(self._by_holder, key=lambda holder: self._by_holder[holder])


def frame_bytes(frame: str) -> int:
    """The frame's size on the wire (UTF-8); cheap for the usual ASCII frames."""
    return len(frame) if frame.isascii() else len(frame.encode("utf-8", "surrogatepass"))

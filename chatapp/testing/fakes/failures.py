"""Telling a fake store to fail the way its engine can: the next call, or every call."""

from __future__ import annotations

from typing import ClassVar

from chatapp.errors import StoreFailed


class CanFail:
    """A fake whose calls raise its store's error when a test says so.

    - `fail_next = True`: the next call raises, then the switch turns itself off;
    - `failing = True`: every call raises until the test sets it back;
    - `fail_only = {"advance_read_marker"}`: both switches apply to these
      method names alone (empty, the default, means every method).

    A failed call changes nothing, as the protocols promise of a failed write.
    `failures` counts the calls failed so far.
    """

    error: ClassVar[type[StoreFailed]] = StoreFailed

    def __init__(self) -> None:
        self.failing = False
        self.fail_next = False
        self.fail_only: set[str] = set()
        self.failures = 0

    def _should_fail(self, operation: str) -> bool:
        if self.fail_only and operation not in self.fail_only:
            return False
        if not (self.failing or self.fail_next):
            return False
        self.fail_next = False
        self.failures += 1
        return True

    def _fail_if_told(self, operation: str) -> None:
        """Raise the store's error when a switch is on for `operation`."""
        if self._should_fail(operation):
            raise self._failure(operation)

    def _failure(self, operation: str) -> StoreFailed:
        return self.error(f"{operation}: failing because the test said so")

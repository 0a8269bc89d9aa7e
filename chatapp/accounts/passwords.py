"""How accounts hashes and checks passwords; argon2id is the embedded implementation."""

from __future__ import annotations

from typing import Protocol


class PasswordHashing(Protocol):
    """Slow, salted password hashes, computed off the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches; with no hash, spends the same time and says False."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with weaker parameters than today's."""
        ...

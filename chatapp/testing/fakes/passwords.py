"""Password hashing for tests: instant and deterministic, and for that reason NOT secure."""

from __future__ import annotations

import hashlib


class FakePasswordHasher:
    """`PasswordHashing` with one unsalted SHA-256: never use it for real passwords.

    It is fast (no thread, no work factor) and deterministic (the same
    password always gives the same hash), so tests of accounts run in
    microseconds. Raising `version` makes every hash made before it "weaker
    than today's" (`needs_rehash`), to test rehash on login. `hashed` counts
    the calls of `hash`, `verified` those of `verify`.
    """

    def __init__(self, *, version: int = 1) -> None:
        self.version = version
        self.hashed = 0
        self.verified = 0

    async def hash(self, password: str) -> str:
        self.hashed += 1
        return self._hash(password, self.version)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches; False with no hash (at the same, tiny, cost)."""
        self.verified += 1
        version = _version_of(password_hash) if password_hash is not None else None
        expected = self._hash(password, version if version is not None else self.version)
        return password_hash is not None and password_hash == expected

    def needs_rehash(self, password_hash: str) -> bool:
        return _version_of(password_hash) != self.version

    @staticmethod
    def _hash(password: str, version: int) -> str:
        digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).hexdigest()
        return f"fake-sha256-v{version}${digest}"


def _version_of(password_hash: str) -> int | None:
    """The version in a hash made here; None for anything else."""
    prefix, _, _ = password_hash.partition("$")
    head, _, version = prefix.rpartition("-v")
    if head != "fake-sha256" or not version.isdigit():
        return None
    return int(version)

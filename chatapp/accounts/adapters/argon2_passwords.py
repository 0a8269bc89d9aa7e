"""argon2id hashing in a bounded thread pool.

A hash takes tens of milliseconds of CPU on purpose. Doing it on the event loop
would let a login storm stall message delivery, and an unbounded pool would let
it take every core; a small pool caps the damage.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2PasswordHasher:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, threads: int) -> None:
        self._argon2 = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Its threads start with the first hash, not here.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="password-hash")
        # Verifying against this when a username is unknown makes a wrong
        # username take as long as a wrong password, so timing reveals nothing.
        # Made on the pool by the first such login rather than at start-up,
        # where a hash at the default cost is tens of milliseconds on the loop.
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._argon2.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches; with no hash, spends the same time and says False."""
        loop = asyncio.get_running_loop()
        matched = await loop.run_in_executor(self._pool, self._check, password_hash, password)
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _check(self, password_hash: str | None, password: str) -> bool:
        if password_hash is None:
            password_hash = self._decoy_hash()
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _decoy_hash(self) -> str:
        # Two threads may both make one the first time; either hash serves.
        if self._decoy is None:
            self._decoy = self._argon2.hash("decoy password never used")
        return self._decoy

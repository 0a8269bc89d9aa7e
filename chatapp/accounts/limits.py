"""The abuse limits of logins and signups: guessing is slow, and nobody can lock an owner out."""

from __future__ import annotations

import json
from dataclasses import dataclass

from chatapp.clock import Clock
from chatapp.errors import RateLimited
from chatapp.ratelimit import LimiterFactory, RateLimiter, local_limiters

# The failed logins allowed for one username from all addresses together, as a
# multiple of those allowed from one address (a setting would be better:
# `login_failures_per_username`).
USERNAME_FAILURE_MULTIPLE = 10


class AccountLimits:
    """The abuse limits the accounts module enforces (counted per process, or per cluster).

    Logins are limited so that guessing is slow but a stranger cannot lock an
    owner out:

    - every attempt from one address counts (`logins_per_address`): it bounds the
      password hashing an address can ask for, and spraying many names from it;
    - *failures* for one username from one address count (`logins_per_username`):
      a guesser at one address gets that many tries per window, and the owner,
      whose address is another, is not affected;
    - failures for one username from every address together count, with a budget
      `USERNAME_FAILURE_MULTIPLE` times larger: a guesser with many
      addresses is slowed down too.

    What an attacker with many addresses can still do: guess at most that shared
    budget per window for one name (100 a minute by default), and, while they
    keep spending it, make the owner's logins wait too, from any address. That
    lockout takes at least `USERNAME_FAILURE_MULTIPLE` addresses guessing
    without pause, lasts only while they do, and never touches devices already
    logged in. In cluster mode each node may also let one more guess per name per
    window through before it learns the budget is spent (see `FailureLimit`).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        logins_per_username: int,
        logins_per_address: int,
        signups_per_address: int,
        window_seconds: float,
        limiters: LimiterFactory | None = None,
    ) -> None:
        make = limiters or local_limiters(clock)
        self.login_by_address = make("login_address", logins_per_address, window_seconds)
        self.login_failures_by_pair = FailureLimit(
            make,
            "login_failure_username_address",
            logins_per_username,
            window_seconds,
            clock=clock,
            what="failed logins for this username from this address",
        )
        self.login_failures_by_username = FailureLimit(
            make,
            "login_failure_username",
            logins_per_username * USERNAME_FAILURE_MULTIPLE,
            window_seconds,
            clock=clock,
            what="failed logins for this username",
        )
        self.signup_by_address = make("signup_address", signups_per_address, window_seconds)

    async def begin_login(self, username: str, address: str) -> LoginAttempt:
        """Claim a login attempt for `username` from `address`; RateLimited if its failures
        are used up. Use the attempt as `async with`, and call `failed()` on a wrong password."""
        await enforce(self.login_by_address, address, "login attempts from this address")
        # The address's own budget first: an address already refused for this name
        # must not go on spending the budget every address shares.
        # JSON, since a name (unchecked at login) may hold any separator.
        pair = await self.login_failures_by_pair.begin(json.dumps([username, address]))
        try:
            everyone = await self.login_failures_by_username.begin(username)
        except BaseException:
            self.login_failures_by_pair.release(pair)
            raise
        return LoginAttempt((pair, everyone))


class FailureLimit:
    """Failures per key, counted by a `RateLimiter` (perhaps shared by a cluster): once
    they are used up attempts are refused, and an attempt that succeeds costs nothing.

    A limiter can only take tokens, so asking it whether any are left takes one.
    So each process keeps its own estimate of every bucket, counting what it
    took: while that shows a token left (and the limiter has not refused this
    key within the window), an attempt goes ahead unchecked and takes a real
    token only if it fails (the estimate counts it meanwhile, and gets it back
    if it succeeds). Otherwise the attempt takes its token before the password
    is checked, first paying for the unchecked attempts still in flight, and is
    refused unanswered when none is left.

    In one process the estimate is exact, so the budget holds exactly and only a
    success after the budget ran out (within the window) costs a token. In a
    cluster the other nodes' failures are invisible to the estimate: a node
    answers one attempt for a key whose shared budget is spent before the
    limiter refuses it, so each node gives at most one guess per key and window
    beyond the budget.
    """

    _PRUNE_AT = 10_000

    def __init__(
        self,
        make: LimiterFactory,
        limit: str,
        capacity: int,
        window_seconds: float,
        *,
        clock: Clock,
        what: str,
    ) -> None:
        self._limiter = make(limit, capacity, window_seconds)
        self._clock = clock
        self._capacity = float(capacity)
        self._per_second = capacity / window_seconds
        self._window = window_seconds
        self._what = what
        self._estimates: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._unchecked: dict[str, list[FailureClaim]] = {}
        self._refused_at: dict[str, float] = {}

    async def begin(self, key: str) -> FailureClaim:
        """Start an attempt for `key`; RateLimited if its failures are used up.
        `release` the claim when the attempt ends."""
        now = self._clock.monotonic()
        claim = FailureClaim(self, key)
        if not self._refused_lately(key, now) and self._tokens(key, now) >= 1:
            self._spend(key, now, 1)
            self._unchecked.setdefault(key, []).append(claim)
            return claim
        owed = [*self._unchecked.pop(key, []), claim]
        for n, each in enumerate(owed):
            retry_after = await self._limiter.acquire(key)
            if retry_after is not None:
                self._refused(key, now, retry_after, still_unchecked=owed[n:-1])
                raise RateLimited(retry_after, f"too many {self._what}; try again later")
            each.reserved = True
        self._spend(key, now, 1)
        return claim

    async def fail(self, claim: FailureClaim) -> float | None:
        """Count the attempt as failed; seconds to wait if it found the budget spent."""
        if claim.reserved or not self._forget_unchecked(claim):
            return None
        retry_after = await self._limiter.acquire(claim.key)
        if retry_after is not None:
            self._refused(claim.key, self._clock.monotonic(), retry_after, still_unchecked=[])
        return retry_after

    def release(self, claim: FailureClaim) -> None:
        """The attempt ended; one that went unchecked and did not fail costs nothing."""
        if self._forget_unchecked(claim):
            self._spend(claim.key, self._clock.monotonic(), -1)

    def _refused(
        self, key: str, now: float, retry_after: float, *, still_unchecked: list[FailureClaim]
    ) -> None:
        self._refused_at[key] = now
        if still_unchecked:
            self._unchecked.setdefault(key, []).extend(still_unchecked)
        # What the limiter said is left, less what the unchecked attempts may take.
        left = 1 - retry_after * self._per_second - len(self._unchecked.get(key, ()))
        self._estimates[key] = (min(self._tokens(key, now), left), now)
        if len(self._refused_at) > self._PRUNE_AT:
            old = [k for k in self._refused_at if not self._refused_lately(k, now)]
            for k in old:
                del self._refused_at[k]

    def _forget_unchecked(self, claim: FailureClaim) -> bool:
        unchecked = self._unchecked.get(claim.key, [])
        if claim not in unchecked:
            return False
        unchecked.remove(claim)
        if not unchecked:
            del self._unchecked[claim.key]
        return True

    def _refused_lately(self, key: str, now: float) -> bool:
        refused_at = self._refused_at.get(key)
        return refused_at is not None and now - refused_at < self._window

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._estimates.get(key, (self._capacity, now))
        return min(self._capacity, tokens + (now - at) * self._per_second)

    def _spend(self, key: str, now: float, tokens: float) -> None:
        self._estimates[key] = (self._tokens(key, now) - tokens, now)
        if len(self._estimates) > self._PRUNE_AT:
            full = [k for k in self._estimates if self._tokens(k, now) >= self._capacity]
            for k in full:
                del self._estimates[k]


@dataclass(eq=False)
class FailureClaim:
    """One attempt's hold on one key of a `FailureLimit`; `reserved` once a token is
    taken for it."""

    limit: FailureLimit
    key: str
    reserved: bool = False


class LoginAttempt:
    """One login's claims on the failure limits, released when its `async with` ends."""

    def __init__(self, claims: tuple[FailureClaim, ...]) -> None:
        self._claims = claims

    async def failed(self) -> None:
        """Count a wrong password; RateLimited if it was a failure past a budget."""
        waits = [await claim.limit.fail(claim) for claim in self._claims]
        retry_after = max((wait for wait in waits if wait is not None), default=None)
        if retry_after is not None:
            raise RateLimited(retry_after, "too many failed logins; try again later")

    async def __aenter__(self) -> LoginAttempt:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for claim in self._claims:
            claim.limit.release(claim)


async def enforce(limiter: RateLimiter, key: str, what: str) -> None:
    retry_after = await limiter.acquire(key)
    if retry_after is not None:
        raise RateLimited(retry_after, f"too many {what}; try again later")

"""Failed-login limits on fakes: guessing is slowed, but a stranger cannot lock an owner out."""

from __future__ import annotations

import asyncio

import pytest

from chatapp.accounts import AccountLimits, Accounts
from chatapp.accounts.limits import USERNAME_FAILURE_MULTIPLE
from chatapp.bootstrap.modules import build_accounts
from chatapp.clock import ManualClock
from chatapp.config import Settings
from chatapp.errors import RateLimited, Unauthorized
from chatapp.ratelimit import KeyedRateLimiter, LimiterFactory, RateLimiter
from chatapp.testing.fakes import (
    FAKE_PASSWORD,
    FakePasswordHasher,
    FakePushTargetStore,
    FakeUserStore,
    ModulesOnFakes,
    RecordingBus,
    build_modules_on_fakes,
)

PER_ADDRESS = 3  # failures for one name from one address, per window
WINDOW = 60.0
OWNER_HOME = "203.0.113.7"
STRANGER = "198.51.100.66"


async def with_owner(*, logins_per_address: int = 50) -> ModulesOnFakes:
    modules = build_modules_on_fakes(
        Settings(
            login_attempts_per_username=PER_ADDRESS,
            login_attempts_per_address=logins_per_address,
            rate_limit_window_seconds=WINDOW,
        )
    )
    await modules.accounts.signup("alice", FAKE_PASSWORD, address=OWNER_HOME)
    return modules


async def fail_login(accounts: Accounts, address: str) -> None:
    with pytest.raises(Unauthorized):
        await accounts.login("alice", "not the password", address=address)


async def test_a_strangers_wrong_passwords_do_not_lock_the_owner_out() -> None:
    """A stranger who used up their failures for 'alice' is refused; alice, at another
    address, logs in at once."""
    modules = await with_owner()
    for _ in range(PER_ADDRESS):
        await fail_login(modules.accounts, STRANGER)
    with pytest.raises(RateLimited):
        await modules.accounts.login("alice", "not the password", address=STRANGER)

    login = await modules.accounts.login("alice", FAKE_PASSWORD, address=OWNER_HOME)
    assert login.user.username == "alice"


async def test_one_address_is_stopped_after_its_failures_for_a_name() -> None:
    """After N failures for one name from one address, even the right password from there
    waits (and is not checked, so it tells a guesser nothing); other names are free."""
    modules = await with_owner()
    await modules.accounts.signup("bob", FAKE_PASSWORD, address=OWNER_HOME)
    for _ in range(PER_ADDRESS):
        await fail_login(modules.accounts, STRANGER)
    checked = modules.hasher.verified

    with pytest.raises(RateLimited) as limited:
        await modules.accounts.login("alice", FAKE_PASSWORD, address=STRANGER)

    assert modules.hasher.verified == checked
    assert limited.value.retry_after == pytest.approx(WINDOW / PER_ADDRESS)
    await modules.accounts.login("bob", FAKE_PASSWORD, address=STRANGER)


async def test_the_window_passes_with_the_clock() -> None:
    """A refused address may try again once its retry_after has passed, and has its whole
    budget back after a window."""
    modules = await with_owner()
    for _ in range(PER_ADDRESS):
        await fail_login(modules.accounts, STRANGER)
    with pytest.raises(RateLimited) as limited:
        await modules.accounts.login("alice", "not the password", address=STRANGER)

    modules.clock.advance(limited.value.retry_after)
    await fail_login(modules.accounts, STRANGER)
    with pytest.raises(RateLimited):
        await modules.accounts.login("alice", "not the password", address=STRANGER)

    modules.clock.advance(WINDOW)
    for _ in range(PER_ADDRESS):
        await fail_login(modules.accounts, STRANGER)
    modules.clock.advance(WINDOW / PER_ADDRESS)
    await modules.accounts.login("alice", FAKE_PASSWORD, address=STRANGER)


async def test_successful_logins_do_not_spend_the_failure_budget() -> None:
    """Logging in many more times than N from one address, even between failures, leaves
    all N failures."""
    modules = await with_owner(logins_per_address=1000)
    for _ in range(5 * PER_ADDRESS):
        await modules.accounts.login("alice", FAKE_PASSWORD, address=OWNER_HOME)
    await fail_login(modules.accounts, OWNER_HOME)
    for _ in range(5 * PER_ADDRESS):
        await modules.accounts.login("alice", FAKE_PASSWORD, address=OWNER_HOME)
    for _ in range(PER_ADDRESS - 1):
        await fail_login(modules.accounts, OWNER_HOME)
    with pytest.raises(RateLimited):
        await modules.accounts.login("alice", "not the password", address=OWNER_HOME)


async def test_a_distributed_guess_hits_the_backoff_per_username() -> None:
    """Guessers at many addresses, each within its own budget, are stopped together after
    USERNAME_FAILURE_MULTIPLE x N failures for the name; that backoff passes with the window.

    While it lasts the owner waits too: the price of bounding a distributed guess."""
    modules = await with_owner(logins_per_address=1000)
    shared_budget = PER_ADDRESS * USERNAME_FAILURE_MULTIPLE
    for n in range(shared_budget):
        await fail_login(modules.accounts, f"10.0.{n // 250}.{n % 250}")
    checked = modules.hasher.verified

    with pytest.raises(RateLimited) as limited:
        await modules.accounts.login("alice", FAKE_PASSWORD, address="10.9.9.9")
    with pytest.raises(RateLimited):
        await modules.accounts.login("alice", FAKE_PASSWORD, address=OWNER_HOME)
    assert modules.hasher.verified == checked
    assert limited.value.retry_after == pytest.approx(WINDOW / shared_budget)

    modules.clock.advance(WINDOW)
    await modules.accounts.login("alice", FAKE_PASSWORD, address=OWNER_HOME)


async def test_an_address_refused_for_a_name_does_not_spend_the_shared_budget() -> None:
    """Hammering on after its own budget is spent costs the name's shared budget nothing,
    so one address cannot bring on the backoff that every address shares."""
    modules = await with_owner(logins_per_address=10_000)
    for _ in range(PER_ADDRESS * USERNAME_FAILURE_MULTIPLE * 2):
        with pytest.raises((Unauthorized, RateLimited)):
            await modules.accounts.login("alice", "not the password", address=STRANGER)
    # The stranger spent PER_ADDRESS of the shared budget: one token is left, and the
    # owner's login does not take it.
    for n in range(PER_ADDRESS * USERNAME_FAILURE_MULTIPLE - PER_ADDRESS - 1):
        await fail_login(modules.accounts, f"10.1.0.{n}")
    await modules.accounts.login("alice", FAKE_PASSWORD, address=OWNER_HOME)
    await fail_login(modules.accounts, "10.2.0.1")
    with pytest.raises(RateLimited):
        await modules.accounts.login("alice", "not the password", address="10.2.0.2")


class TakingTurnsHasher(FakePasswordHasher):
    """Verifying yields to the loop, as a real hasher's thread pool does."""

    async def verify(self, password_hash: str | None, password: str) -> bool:
        await asyncio.sleep(0)
        return await super().verify(password_hash, password)


async def test_concurrent_guesses_get_no_more_answers_than_the_budget() -> None:
    """Many wrong passwords sent at once for a name nobody tried lately: N are answered
    Unauthorized, the others RateLimited unchecked."""
    clock = ManualClock()
    hasher = TakingTurnsHasher()
    users = FakeUserStore()
    settings = Settings(login_attempts_per_username=PER_ADDRESS, rate_limit_window_seconds=WINDOW)
    accounts = build_accounts(
        settings, users, FakePushTargetStore(users), hasher=hasher, clock=clock, bus=RecordingBus()
    )
    await accounts.signup("alice", FAKE_PASSWORD, address=OWNER_HOME)
    outcomes = await asyncio.gather(
        *(accounts.login("alice", "not the password", address=STRANGER) for _ in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, Unauthorized) for o in outcomes) == PER_ADDRESS
    assert sum(isinstance(o, RateLimited) for o in outcomes) == 20 - PER_ADDRESS
    assert hasher.verified == PER_ADDRESS


def shared_buckets(clock: ManualClock) -> LimiterFactory:
    """One bucket per limit name for every node, as Redis gives a cluster."""
    made: dict[str, RateLimiter] = {}

    def make(limit: str, capacity: int, window_seconds: float) -> RateLimiter:
        return made.setdefault(
            limit, KeyedRateLimiter(clock, capacity=capacity, window_seconds=window_seconds)
        )

    return make


async def test_in_a_cluster_another_node_answers_at_most_one_guess_more() -> None:
    """With the buckets shared, a budget spent on one node holds on another: that node
    checks one password more before it knows, then refuses unchecked."""
    clock, users, hasher = ManualClock(), FakeUserStore(), FakePasswordHasher()
    buckets = shared_buckets(clock)

    def node() -> Accounts:
        limits = AccountLimits(
            clock,
            logins_per_username=PER_ADDRESS,
            logins_per_address=1000,
            signups_per_address=1000,
            window_seconds=WINDOW,
            limiters=buckets,
        )
        return Accounts(users, hasher, clock, RecordingBus(), limits, FakePushTargetStore(users))

    first, second = node(), node()
    await first.signup("alice", FAKE_PASSWORD)
    for _ in range(PER_ADDRESS):
        await fail_login(first, STRANGER)
    checked = hasher.verified

    for _ in range(5):
        with pytest.raises(RateLimited):
            await second.login("alice", "not the password", address=STRANGER)
    assert hasher.verified == checked + 1
    await second.login("alice", FAKE_PASSWORD, address=OWNER_HOME)


def test_every_limit_is_made_through_the_factory_under_its_own_name() -> None:
    """Cluster mode shares limits by name (Redis keys): each limit has its own, with the
    shared per-username budget USERNAME_FAILURE_MULTIPLE times the per-address one."""
    made: dict[str, int] = {}

    def make(limit: str, capacity: int, window_seconds: float) -> RateLimiter:
        made[limit] = capacity
        return KeyedRateLimiter(ManualClock(), capacity=capacity, window_seconds=window_seconds)

    AccountLimits(
        ManualClock(),
        logins_per_username=PER_ADDRESS,
        logins_per_address=50,
        signups_per_address=20,
        window_seconds=WINDOW,
        limiters=make,
    )
    assert made == {
        "login_address": 50,
        "login_failure_username_address": PER_ADDRESS,
        "login_failure_username": PER_ADDRESS * USERNAME_FAILURE_MULTIPLE,
        "signup_address": 20,
    }

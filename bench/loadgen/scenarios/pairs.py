"""Users in direct-message pairs, one device each: the cast of scenarios A and B."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from bench.loadgen.backend import Backend, Target
from bench.loadgen.fleet import connect_all, new_session
from bench.loadgen.ledger import Ledger
from bench.loadgen.link import Link


@dataclass
class Pairs:
    links: list[Link]
    channel_of: list[int]
    """The channel each link sends to (its pair's)."""
    recipients: dict[int, list[int]]
    session: aiohttp.ClientSession
    connect_failures: list[str]

    def use(self, ledger: Ledger) -> None:
        for link in self.links:
            link.ledger = ledger

    def ledger(self, measure_from_ns: int = 0) -> Ledger:
        """A fresh ledger for the next phase, given to every link."""
        ledger = Ledger(recipients=self.recipients, measure_from_ns=measure_from_ns)
        self.use(ledger)
        return ledger


async def connect_pairs(backend: Backend, target: Target, users: int, prefix: str) -> Pairs:
    """`users` (even) new users, paired 0-1, 2-3, …; each pair's direct channel; one link each.

    Link `i` is on node `i % nodes`, so against a cluster the two sides of a pair are
    always on different nodes: every delivery crosses the cluster.
    """
    accounts = await backend.accounts(users - users % 2, prefix)
    channel_of: list[int] = []
    recipients: dict[int, list[int]] = {}
    for index in range(0, len(accounts), 2):
        channel = await backend.direct(accounts[index], accounts[index + 1])
        channel_of += [channel, channel]
        recipients[channel] = [index, index + 1]
    ledger = Ledger(recipients=recipients)
    links = []
    for index, account in enumerate(accounts):
        (token,) = await backend.device_tokens(account, 1)
        links.append(Link(index, account.user_id, token, ledger))
    session = new_session()
    failures = await connect_all(links, session, target)
    return Pairs(links, channel_of, recipients, session, failures)

"""Questions asked in one turn of the event loop, sent to a store together after that turn.

Some questions are asked for every message and cannot be answered from
memory in a cluster (is there a block between these two, may this user
send, is this user connected anywhere): each was a network round trip.
`PerTurn` collects the questions asked while the loop runs one turn of
callbacks and sends them as one query, right after. Each question is still
answered by a read made after it was asked; under load, dozens share a trip,
and a question asked alone waits one turn of the loop more than before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class PerTurn(Generic[K, V]):
    """Answers `ask(key)` through `answer_all(keys)`, which gets the keys of one turn in the
    order asked (repeats included) and returns one answer each, in that order.

    At most `most` keys go in one call; the rest go in the next turn's. An
    exception from `answer_all` is raised to every question of that call.
    """

    def __init__(
        self, answer_all: Callable[[list[K]], Awaitable[Sequence[V]]], *, most: int
    ) -> None:
        self._answer_all = answer_all
        self._most = most
        self._asked: list[tuple[K, asyncio.Future[V]]] = []
        self._scheduled = False
        self._calls: set[asyncio.Task[None]] = set()

    async def ask(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        # A future per question: one caller giving up must not cancel the others' answers.
        answer: asyncio.Future[V] = loop.create_future()
        self._asked.append((key, answer))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._send)
        return await answer

    def _send(self) -> None:
        taken, self._asked = self._asked[: self._most], self._asked[self._most :]
        loop = asyncio.get_running_loop()
        self._scheduled = bool(self._asked)
        if self._asked:
            loop.call_soon(self._send)
        call = loop.create_task(self._answer(taken))
        self._calls.add(call)  # the loop keeps only a weak reference
        call.add_done_callback(self._calls.discard)

    async def _answer(self, taken: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            answers = await self._answer_all([key for key, _ in taken])
            if len(answers) != len(taken):
                raise RuntimeError(f"{len(answers)} answers to {len(taken)} questions")
        except Exception as failure:
            for _, answer in taken:
                if not answer.done():
                    answer.set_exception(failure)
            return
        for (_, answer), value in zip(taken, answers, strict=True):
            if not answer.done():
                answer.set_result(value)

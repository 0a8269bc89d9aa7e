"""Properties of the LevelDB message store under random sends, repeats and restarts."""

from __future__ import annotations

import asyncio
import collections
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from chatapp.messaging import AcceptedMessage, StoredMessage
from chatapp.messaging.adapters import LevelDBMessageStore

USERS = (1, 2, 3, 4)
# The member lists repeat a user and leave senders out on purpose: the store dedupes
# them and always gives the sender an inbox entry.
CHANNEL_MEMBERS = {10: (1, 2), 11: (2, 3, 4, 3), 12: (4,)}


@dataclass(frozen=True)
class Send:
    sender_id: int
    channel_id: int
    client_msg_id: str
    text: str


sends = st.builds(
    Send,
    sender_id=st.sampled_from(USERS),
    channel_id=st.sampled_from(sorted(CHANNEL_MEMBERS)),
    # A handful of ids, so repeats of one (sender, client_msg_id) are frequent.
    client_msg_id=st.sampled_from(["a", "b", "c", "d", "e"]),
    text=st.text(max_size=12),
)


@dataclass
class Model:
    """What the store must hold: lists whose positions are the ids."""

    channels: dict[int, list[StoredMessage]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    inboxes: dict[int, list[StoredMessage]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    originals: dict[tuple[int, str], tuple[StoredMessage, int]] = field(default_factory=dict)

    def accept(self, send: Send) -> AcceptedMessage:
        original = self.originals.get((send.sender_id, send.client_msg_id))
        if original is not None:
            message, seq = original
            return AcceptedMessage(
                message=message, seq=seq, inbox_seqs={send.sender_id: seq}, duplicate=True
            )
        history = self.channels[send.channel_id]
        message = StoredMessage(
            channel_id=send.channel_id,
            message_id=len(history) + 1,
            sender_id=send.sender_id,
            text=send.text,
            created_at=0,
            client_msg_id=send.client_msg_id,
        )
        history.append(message)
        inbox_seqs = {}
        for user_id in dict.fromkeys((*CHANNEL_MEMBERS[send.channel_id], send.sender_id)):
            self.inboxes[user_id].append(message)
            inbox_seqs[user_id] = len(self.inboxes[user_id])
        self.originals[(send.sender_id, send.client_msg_id)] = (message, inbox_seqs[send.sender_id])
        return AcceptedMessage(
            message=message,
            seq=inbox_seqs[send.sender_id],
            inbox_seqs=inbox_seqs,
            duplicate=False,
        )


class MessageStoreMachine(RuleBasedStateMachine):
    """Drives a real store and the model side by side."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.runner = asyncio.Runner()
        self.store = self.runner.run(LevelDBMessageStore.open(folder))
        self.model = Model()

    async def _append_all(self, batch: list[Send]) -> list[AcceptedMessage]:
        return await asyncio.gather(
            *(
                self.store.append(
                    sender_id=send.sender_id,
                    channel_id=send.channel_id,
                    client_msg_id=send.client_msg_id,
                    text=send.text,
                    member_ids=CHANNEL_MEMBERS[send.channel_id],
                    created_at=0,
                )
                for send in batch
            )
        )

    @rule(batch=st.lists(sends, min_size=1, max_size=8))
    def append_concurrently(self, batch: list[Send]) -> None:
        # Concurrent sends are taken in the order they were queued, so the
        # model applies them in list order.
        results = self.runner.run(self._append_all(batch))
        assert results == [self.model.accept(send) for send in batch]

    @rule(send=sends)
    def append_alone(self, send: Send) -> None:
        (result,) = self.runner.run(self._append_all([send]))
        assert result == self.model.accept(send)

    @rule()
    def reopen(self) -> None:
        self.runner.run(self.store.close())
        self.store = self.runner.run(LevelDBMessageStore.open(self.folder))

    @invariant()
    def store_matches_model(self) -> None:
        self.runner.run(self._check())

    async def _check(self) -> None:
        stored: list[StoredMessage] = []
        for channel_id in CHANNEL_MEMBERS:
            page = await self.store.history(channel_id, limit=1_000)
            assert page.messages == self.model.channels[channel_id]
            assert await self.store.last_message_id(channel_id) == len(page.messages)
            stored += page.messages
        for user_id in USERS:
            inbox = await self.store.inbox(user_id, since=0, limit=1_000)
            assert [entry.seq for entry in inbox.entries] == list(range(1, len(inbox.entries) + 1))
            assert [entry.message for entry in inbox.entries] == self.model.inboxes[user_id]
            assert await self.store.max_seq(user_id) == len(inbox.entries)
        # Texts up to 12 characters, previews of 5: some are cut, some whole.
        previews = await self.store.last_messages([*CHANNEL_MEMBERS, 99], max_chars=5)
        assert {
            c: (p.message_id, p.sender_id, p.text, p.truncated) for c, p in previews.items()
        } == {
            c: (m[-1].message_id, m[-1].sender_id, m[-1].text[:5], len(m[-1].text) > 5)
            for c, m in self.model.channels.items()
            if m
        }
        sends_stored = collections.Counter((m.sender_id, m.client_msg_id) for m in stored)
        assert all(count == 1 for count in sends_stored.values())

    def teardown(self) -> None:
        try:
            self.runner.run(self.store.close())
        finally:
            self.runner.close()


def test_any_interleaving_of_sends_and_restarts_matches_the_model(tmp_path: Path) -> None:
    """Random sends, repeats and reopens keep ids and seqs contiguous and each send stored once.

    Every answer (ids, seqs, duplicate flag) and the whole stored state are
    compared with an in-memory model after each step.
    """
    folders = (tmp_path / f"run{n}" for n in itertools.count())

    class MachineInFreshFolder(MessageStoreMachine):
        def __init__(self) -> None:
            super().__init__(next(folders))

    run_state_machine_as_test(
        MachineInFreshFolder,
        settings=settings(max_examples=40, stateful_step_count=20, deadline=None),
    )

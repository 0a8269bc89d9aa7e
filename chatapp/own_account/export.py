"""`GET /me/export`: the caller's own data as JSON lines, produced a page at a time.

Each line is `{"type": T, T: object}` (protocol-additions.md §11), in this order:

- `user`: the caller's own user object, as `GET /me` shows it;
- `device`: each signed-in device, as `GET /me/devices` lists it;
- `friend`: `{user, status}` for each friend (`accepted`) and pending request
  (`incoming` or `outgoing`), as `GET /friends` and `GET /friends/requests` show them;
- `channel`: each channel the caller is in, as `GET /channels` shows it (the membership:
  read marker, unread count, notification level);
- then every inbox entry in seq order, as `GET /sync` replays them: a delivered message as
  a `message` line (the message object as it is now, plus its `seq`), a change as an
  `inbox` line (`{seq, update}`);
- `end`: `{inbox_entries}`, the last line, so that an export cut short is told from a
  whole one.

The inbox is read a page at a time (`Messaging.inbox`, within the page budget), so
memory holds one page whatever the history's size; the other kinds are bounded by what
a user can have (their devices, friends and channels).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Final

from pydantic import BaseModel

from chatapp.accounts import Accounts, Caller
from chatapp.conversations import Conversations
from chatapp.messaging import InboxEntry, Messaging
from chatapp.messaging.updates import update_object
from chatapp.protocol.http import DeviceInfo, MessageOut, OwnUser, UpdateOut, User
from chatapp.social import Friends

INBOX_PAGE: Final = 500
"""Inbox entries read per page of the export."""


class OwnExport:
    def __init__(
        self,
        accounts: Accounts,
        friends: Friends,
        conversations: Conversations,
        messaging: Messaging,
    ) -> None:
        self._accounts = accounts
        self._friends = friends
        self._conversations = conversations
        self._messaging = messaging

    async def lines(self, caller: Caller) -> AsyncIterator[str]:
        """The caller's export (their calling device marked `current`), one JSON line at a
        time, each ending with a newline."""
        user_id = caller.user_id
        user = await self._accounts.get_user(user_id)
        yield _line("user", OwnUser.model_validate(user))
        for device in await self._accounts.list_devices(caller):
            info = DeviceInfo(
                device_id=device.device_id,
                name=device.name,
                created_at=device.created_at,
                last_seen_at=device.last_seen_at,
                current=device.device_id == caller.device_id,
            )
            yield _line("device", info)
        async for friend in self._friend_lines(user_id):
            yield friend
        for channel in await self._conversations.list_for(user_id):
            yield _line("channel", channel)
        entries = 0
        async for entry in self._inbox(user_id):
            entries += 1
            yield _entry_line(entry)
        # Last, so that a reader can tell a whole export from one cut short.
        yield _line("end", {"inbox_entries": entries})

    async def _friend_lines(self, user_id: int) -> AsyncIterator[str]:
        incoming, outgoing = await self._friends.requests_of(user_id)
        groups = (
            ("accepted", sorted(await self._friends.friends_of(user_id))),
            ("incoming", incoming),
            ("outgoing", outgoing),
        )
        for status, user_ids in groups:
            for user in await self._accounts.get_users(user_ids):
                yield _line("friend", {"user": User.model_validate(user), "status": status})

    async def _inbox(self, user_id: int) -> AsyncIterator[InboxEntry]:
        since = 0
        while True:
            page = await self._messaging.inbox(user_id, since=since, limit=INBOX_PAGE)
            for entry in page.entries:
                yield entry
            if not page.entries or not page.has_more:
                return
            since = page.entries[-1].seq


def _entry_line(entry: InboxEntry) -> str:
    if entry.update is None:
        message = MessageOut.model_validate(entry.message.model_dump())
        return _line("message", {**message.model_dump(mode="json"), "seq": entry.seq})
    update = UpdateOut.model_validate(update_object(entry.update, entry.message))
    return _line("inbox", {"seq": entry.seq, "update": update})


def _line(kind: str, value: BaseModel | dict[str, Any]) -> str:
    body = value.model_dump(mode="json") if isinstance(value, BaseModel) else _plain(value)
    return json.dumps({"type": kind, kind: body}, ensure_ascii=False, separators=(",", ":")) + "\n"


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    return {
        key: item.model_dump(mode="json") if isinstance(item, BaseModel) else item
        for key, item in value.items()
    }

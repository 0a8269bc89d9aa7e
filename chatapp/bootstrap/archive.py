"""A whole deployment as JSON lines: written by `chatapp export`, read by `chatapp import`.

Every line is `{"type": T, T: object}`, in this order of T: `user` (with
the users it blocks, `blocks`, when there are any), `device`, `push_target`,
`friend`, `channel` (with its members and each one's notification level),
`read_marker`, `message`, `inbox`, `idempotency`, `invite`, `audit`. The objects keep every id,
seq, time and hash, so an imported deployment hands out the ids after the
imported ones, every device token still works and every inbox continues
where the device left it. Both ends hold one page of rows at a time.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TextIO, TypeVar

from pydantic import BaseModel, ValidationError

from chatapp.bootstrap.archive_tables import (
    AUDIT_EVENTS,
    BLOCKS,
    CHANNELS,
    DEVICES,
    FRIENDSHIPS,
    INVITES,
    MEMBERS,
    PAGE_ROWS,
    PUSH_TARGETS,
    USERS,
    Table,
    TableReader,
    TableRows,
    walk,
)
from chatapp.errors import StartupRefused
from chatapp.messaging import InboxRecord, SendRecord, StoredMessage

KINDS: Final = (
    "user",
    "device",
    "push_target",
    "friend",
    "channel",
    "read_marker",
    "message",
    "inbox",
    "idempotency",
    "invite",
    "audit",
)
_ROW_TABLES: Final = {
    "user": USERS,
    "device": DEVICES,
    "push_target": PUSH_TARGETS,
    "friend": FRIENDSHIPS,
}
_LAST_TABLES: Final = {"invite": INVITES, "audit": AUDIT_EVENTS}
"""Written after the messages: what operators made, and what they did."""
_JSON_COLUMNS: Final = {"target"}
_BOOL_COLUMNS: Final = {"share_read_receipts"}
"""SQLite keeps these as 0 or 1, PostgreSQL as booleans: the file holds JSON's true or false."""
_ADDED_COLUMNS: Final[dict[str, Any]] = {
    "share_read_receipts": True,
    "deactivated_at": None,
    "deactivation_reason": None,
    "deleted_at": None,
    "deletion_unfinished": None,
    "group_adds": "everyone",
    "notification_level": "all",
}
"""Columns added after the file format was first used, and what an older file means by them."""
_CHOICE_COLUMNS: Final[dict[str, tuple[str | None, ...]]] = {
    "group_adds": ("everyone", "friends"),
    "notification_level": ("all", "mentions", "none"),
    "deletion_unfinished": (None, "erase", "keep"),
}
"""Columns that hold one of a few words: anything else stops the import with its line."""
_READ_MARKER: Final = ("channel_id", "user_id", "read_message_id")
"""What a `read_marker` line holds of a member's row."""

ModelT = TypeVar("ModelT", bound=BaseModel)


class MessageSource(Protocol):
    """What an export reads messages, inbox entries and idempotency records from."""

    async def scan_messages(
        self, *, after: tuple[int, int] = (0, 0), limit: int
    ) -> list[StoredMessage]: ...

    async def scan_inbox(
        self, *, after: tuple[int, int] = (0, 0), limit: int
    ) -> list[InboxRecord]: ...

    async def scan_sends(
        self, *, after: tuple[int, str] | None = None, limit: int
    ) -> list[SendRecord]: ...


class MessageTarget(Protocol):
    """Where an import puts messages, inbox entries and idempotency records."""

    async def put_messages(self, messages: list[StoredMessage]) -> None: ...

    async def put_inbox(self, entries: list[InboxRecord]) -> None: ...

    async def put_sends(self, sends: list[SendRecord]) -> None: ...

    async def finish(self) -> None:
        """Make the counters follow what was put (called once, after the last line)."""
        ...


class Progress:
    """A line on stderr, rewritten as records pass, when stderr is a terminal."""

    def __init__(self, verb: str, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._verb = verb
        self._shown = self._stream.isatty()
        self.counts: Counter[str] = Counter()
        self._last = 0.0

    def tick(self, kind: str, count: int = 1) -> None:
        self.counts[kind] += count
        now = time.monotonic()
        if self._shown and now - self._last >= 0.2:
            self._last = now
            self._stream.write(f"\r{self.summary()}")
            self._stream.flush()

    def done(self) -> None:
        if self._shown:
            self._stream.write(f"\r{self.summary()}\n")
            self._stream.flush()

    def summary(self) -> str:
        parts = ", ".join(f"{self.counts[kind]:,} {kind}" for kind in KINDS if self.counts[kind])
        return f"{self._verb}: {parts or 'nothing yet'}"


def _line(kind: str, value: dict[str, Any]) -> str:
    return json.dumps({"type": kind, kind: value}, ensure_ascii=False, separators=(",", ":"))


async def export_lines(
    rows: TableReader, messages: MessageSource, out: TextIO, progress: Progress
) -> None:
    """Write the whole deployment to `out`, one page of rows in memory at a time."""

    def write(kind: str, value: dict[str, Any]) -> None:
        out.write(_line(kind, value) + "\n")
        progress.tick(kind)

    await _export_rows(rows, _ROW_TABLES, write)
    async for channel in _channels(rows):
        write("channel", channel)
    async for member in walk(rows, MEMBERS):
        if member["read_message_id"]:
            write("read_marker", {key: member[key] for key in _READ_MARKER})
    await _export_messages(messages, write)
    await _export_rows(rows, _LAST_TABLES, write)


async def _export_rows(
    rows: TableReader, tables: dict[str, Table], write: Callable[[str, dict[str, Any]], None]
) -> None:
    for kind, table in tables.items():
        async for row in _users(rows) if kind == "user" else walk(rows, table):
            for column in _JSON_COLUMNS & row.keys():
                row[column] = json.loads(row[column])
            for column in _BOOL_COLUMNS & row.keys():
                row[column] = bool(row[column])
            write(kind, row)


async def _users(rows: TableReader) -> AsyncIterator[dict[str, Any]]:
    """Each user with the users it blocks (`blocks`, left out when none), by merging two walks
    in user order."""
    blocks = walk(rows, BLOCKS)
    pending: dict[str, Any] | None = await anext(blocks, None)
    async for user in walk(rows, USERS):
        found: list[dict[str, Any]] = []
        while pending is not None and pending["blocker_id"] <= user["user_id"]:
            if pending["blocker_id"] == user["user_id"]:
                found.append(
                    {"user_id": pending["blocked_id"], "created_at": pending["created_at"]}
                )
            pending = await anext(blocks, None)
        yield (user | {"blocks": found}) if found else user


async def _channels(rows: TableReader) -> AsyncIterator[dict[str, Any]]:
    """Each channel with its members, by merging two walks in channel order."""
    members = walk(rows, MEMBERS)
    pending: dict[str, Any] | None = await anext(members, None)
    async for channel in walk(rows, CHANNELS):
        found: list[dict[str, Any]] = []
        while pending is not None and pending["channel_id"] <= channel["channel_id"]:
            if pending["channel_id"] == channel["channel_id"]:
                found.append(
                    {
                        "user_id": pending["user_id"],
                        "joined_at": pending["joined_at"],
                        "notification_level": pending["notification_level"],
                    }
                )
            pending = await anext(members, None)
        yield {**channel, "members": found}


async def _export_messages(
    messages: MessageSource, write: Callable[[str, dict[str, Any]], None]
) -> None:
    after: tuple[int, int] = (0, 0)
    while page := await messages.scan_messages(after=after, limit=PAGE_ROWS):
        for message in page:
            # Who deleted a message is not in the message object, but restoring needs it.
            write("message", message.model_dump() | {"deleted_by": message.deleted_by})
        after = (page[-1].channel_id, page[-1].message_id)
    after = (0, 0)
    while entries := await messages.scan_inbox(after=after, limit=PAGE_ROWS):
        for entry in entries:
            write("inbox", entry.model_dump())
        after = (entries[-1].user_id, entries[-1].seq)
    sent: tuple[int, str] | None = None
    while sends := await messages.scan_sends(after=sent, limit=PAGE_ROWS):
        for send in sends:
            write("idempotency", send.model_dump())
        sent = (sends[-1].sender_id, sends[-1].client_msg_id)


@dataclass
class _Batch:
    kind: str
    first_line: int
    values: list[dict[str, Any]]


async def import_lines(
    lines: Iterable[str], rows: TableRows, target: MessageTarget, progress: Progress
) -> None:
    """Write every line's record into the (empty) target, in batches of one kind."""
    batch: _Batch | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        kind, value = _parse(line, number)
        if batch is None or batch.kind != kind or len(batch.values) >= PAGE_ROWS:
            if batch is not None:
                await _flush(batch, rows, target, progress)
            batch = _Batch(kind, number, [])
        batch.values.append(value)
        # Reading the file is synchronous: let the loop breathe between lines.
        if number % PAGE_ROWS == 0:
            await asyncio.sleep(0)
    if batch is not None:
        await _flush(batch, rows, target, progress)
    await target.finish()


def _parse(line: str, number: int) -> tuple[str, dict[str, Any]]:
    try:
        record = json.loads(line)
    except ValueError as failure:
        raise StartupRefused(f"line {number} is not JSON: {failure}") from None
    kind = record.get("type") if isinstance(record, dict) else None
    value = record.get(kind) if kind in KINDS else None
    if not isinstance(value, dict):
        raise StartupRefused(f"line {number} is not an export line of a known type")
    return str(kind), value


async def _flush(batch: _Batch, rows: TableRows, target: MessageTarget, progress: Progress) -> None:
    try:
        await _write(batch.kind, batch.values, rows, target)
    except (KeyError, ValidationError, TypeError) as failure:
        raise StartupRefused(
            f"a {batch.kind} line from line {batch.first_line} on lacks a field: {failure}"
        ) from None
    progress.tick(batch.kind, len(batch.values))


async def _write(
    kind: str, values: list[dict[str, Any]], rows: TableRows, target: MessageTarget
) -> None:
    if kind in _ROW_TABLES or kind in _LAST_TABLES:
        table = {**_ROW_TABLES, **_LAST_TABLES}[kind]
        await rows.insert(table, [_row(table, value) for value in values])
        if kind == "user":
            blocks = [
                (value["user_id"], block["user_id"], block["created_at"])
                for value in values
                for block in value.get("blocks", ())
            ]
            await rows.insert(BLOCKS, blocks)
    elif kind == "channel":
        await rows.insert(CHANNELS, [_row(CHANNELS, value) for value in values])
        members = [
            (
                value["channel_id"],
                member["user_id"],
                member["joined_at"],
                0,
                _cell("notification_level", (_ADDED_COLUMNS | member)["notification_level"]),
            )
            for value in values
            for member in value["members"]
        ]
        await rows.insert(MEMBERS, members)
    elif kind == "read_marker":
        await rows.execute_many(
            "UPDATE channel_members SET read_message_id = ? WHERE channel_id = ? AND user_id = ?",
            [(v["read_message_id"], v["channel_id"], v["user_id"]) for v in values],
        )
    elif kind == "message":
        await target.put_messages(_models(StoredMessage, values))
    elif kind == "inbox":
        await target.put_inbox(_models(InboxRecord, values))
    else:
        await target.put_sends(_models(SendRecord, values))


def _row(table: Table, value: dict[str, Any]) -> list[Any]:
    """The line's values in `table.columns` order (KeyError when the line lacks one)."""
    complete = _ADDED_COLUMNS | value
    return [_cell(column, complete[column]) for column in table.columns]


def _cell(column: str, cell: Any) -> Any:
    """One column's value as the engine takes it."""
    if column in _JSON_COLUMNS:
        return json.dumps(cell)
    if column in _BOOL_COLUMNS and not isinstance(cell, bool):
        # Not converted: "false" would read as true. (SQLite stores a bool as 0 or 1.)
        raise TypeError(f"{column} must be true or false, not {cell!r}")
    if column in _CHOICE_COLUMNS and cell not in _CHOICE_COLUMNS[column]:
        raise TypeError(
            f"{column} must be one of {', '.join(map(json.dumps, _CHOICE_COLUMNS[column]))},"
            f" not {json.dumps(cell)}"
        )
    return cell


def _models(model: type[ModelT], values: list[dict[str, Any]]) -> list[ModelT]:
    return [model.model_validate(value) for value in values]

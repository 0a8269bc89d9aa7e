"""The stores checked against each other before a server serves, in a few milliseconds.

SQLite hands out a new user or channel id as one above its highest row. When
it loses its newest rows (a WAL lost after a crash), it would hand their ids
out again, and a newcomer would be shown the lost user's inbox, or a new
channel the lost channel's history. So LevelDB's highest channel and user
ids must never be above SQLite's. The message store checks itself at the
same time (`leveldb_survey`: the ends of every range and the watermark).

Any problem refuses the start with one line naming it and the commands that
check and repair the folder: a damaged store is never served as whole.
"""

from __future__ import annotations

import aiosqlite

from chatapp.errors import StartupRefused
from chatapp.messaging import MessageStoreError
from chatapp.messaging.adapters.leveldb_store import LevelDBMessageStore

REMEDY = "stop here and run `chatapp check`, then `chatapp repair` (see docs/operations.md)"


def refusal(problem: str) -> StartupRefused:
    """The one-line refusal for a damaged data folder."""
    return StartupRefused(f"{problem}; {REMEDY}")


async def top_ids(connection: aiosqlite.Connection) -> tuple[int, int]:
    """SQLite's highest user id and channel id (0 when it has none)."""
    found: list[int] = []
    for query in ("SELECT MAX(user_id) FROM users", "SELECT MAX(channel_id) FROM channels"):
        rows = await connection.execute_fetchall(query)
        row = next(iter(rows), None)
        found.append(int(row[0]) if row is not None and row[0] is not None else 0)
    return found[0], found[1]


async def count_channels(connection: aiosqlite.Connection) -> int:
    rows = await connection.execute_fetchall("SELECT COUNT(*) FROM channels")
    row = next(iter(rows), None)
    return int(row[0]) if row is not None else 0


async def refuse_unless_consistent(
    messages: LevelDBMessageStore, connection: aiosqlite.Connection
) -> None:
    """Raise `StartupRefused` naming the first problem between or inside the stores."""
    try:
        survey = await messages.survey()
    except MessageStoreError as exc:
        raise refusal(f"the message store is damaged: {exc}") from None
    problems = list(survey.problems)
    top_user, top_channel = await top_ids(connection)
    if survey.top_user_id > top_user:
        problems.append(
            f"users.sqlite3 lost users: the message store has messages of user "
            f"{survey.top_user_id}, above its highest user id {top_user}, which would be "
            f"handed out again"
        )
    if survey.top_channel_id > top_channel:
        problems.append(
            f"users.sqlite3 lost channels: the message store has messages of channel "
            f"{survey.top_channel_id}, above its highest channel id {top_channel}, which "
            f"would be handed out again"
        )
    if messages.created and await count_channels(connection):
        problems.append(
            "the message store is missing: its folder was empty although users.sqlite3 has channels"
        )
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise refusal(problems[0] + more)

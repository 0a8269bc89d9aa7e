"""A few sends alone, stored by one PostgreSQL statement: one round trip, committed.

When traffic is light, a batch is a send or two and nothing else.
`postgres_batch` stores any batch in a transaction of seven statements, each
a round trip during which the counter rows stay locked; this module stores a
small batch of sends with one statement outside any transaction block, so
PostgreSQL commits it before it answers and the counters are held for that
statement alone. Which batches come here is `postgres_messages`'s choice
(`ONE_STATEMENT_MOST`).

The statement keeps `postgres_batch`'s rules:
- sends already stored (their key has a `sends` row) are left out, and
  their originals are read afterwards, by a second statement;
- locks are taken in the same order: channel counters, then inbox counters,
  each in ascending key order. The inbox counters' rows come out of an
  aggregate over the numbered messages, and numbering sorts by the channel
  counters' answers, so no inbox counter is touched before every channel
  counter is held;
- ids and seqs are given in the order the sends were queued;
- a `sends` row another node stored meanwhile fails the statement with a
  unique violation, and the batch is retried, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from chatapp.messaging.adapters.postgres_batch import Send, as_duplicate, originals_of
from chatapp.messaging.models import AcceptedMessage
from chatapp.messaging.store import MessageStoreError

_GIVEN: Final = """
given AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bigint[], $5::text[],
                         $6::bigint[], $7::text[])
        WITH ORDINALITY AS g(c, s, b, t, k, r, n, ord)
),
originals AS (
    SELECT g.ord, x.seq FROM given AS g
    JOIN sends AS x ON x.sender_id = g.s AND x.client_msg_id = g.k
),
fresh AS (
    SELECT * FROM given WHERE ord NOT IN (SELECT ord FROM originals)
),
channels AS (
    INSERT INTO channel_counters (channel_id, last_message_id)
    SELECT c, count(*) FROM fresh GROUP BY c ORDER BY c
    ON CONFLICT (channel_id) DO UPDATE
        SET last_message_id = channel_counters.last_message_id + EXCLUDED.last_message_id
    RETURNING channel_id, last_message_id
),
numbered AS (
    SELECT f.*, h.last_message_id - count(*) OVER (PARTITION BY f.c)
                + row_number() OVER (PARTITION BY f.c ORDER BY f.ord) AS m
    FROM fresh AS f JOIN channels AS h ON h.channel_id = f.c
),
stored AS (
    INSERT INTO messages (channel_id, message_id, sender_id, body, created_at, client_msg_id,
                          reply_to, mentions)
    SELECT c, m, s, b, t, k, r, n::bigint[] FROM numbered
),
"""
_PENDING: Final = """
pending AS (
    INSERT INTO push_pending (channel_id, message_id, created_at) SELECT c, m, t FROM numbered
),
"""
_ENTRIES: Final = """
members AS (
    SELECT u.ord, u.user_id, n.c, n.m
    FROM unnest($8::bigint[], $9::bigint[]) AS u(ord, user_id) JOIN numbered AS n USING (ord)
),
inboxes AS (
    INSERT INTO inbox_counters (user_id, max_seq)
    SELECT user_id, count(*) FROM members GROUP BY user_id ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET max_seq = inbox_counters.max_seq + EXCLUDED.max_seq
    RETURNING user_id, max_seq
),
entries AS (
    SELECT e.ord, e.user_id, e.c, e.m,
           i.max_seq - count(*) OVER (PARTITION BY e.user_id)
           + row_number() OVER (PARTITION BY e.user_id ORDER BY e.ord) AS seq
    FROM members AS e JOIN inboxes AS i USING (user_id)
),
appended AS (
    INSERT INTO inbox (user_id, seq, channel_id, message_id, update_kind)
    SELECT user_id, seq, c, m, NULL FROM entries
),
recorded AS (
    INSERT INTO sends (sender_id, client_msg_id, channel_id, message_id, seq)
    SELECT n.s, n.k, n.c, n.m, e.seq
    FROM numbered AS n JOIN entries AS e ON e.ord = n.ord AND e.user_id = n.s
)
SELECT ord, m AS message_id, user_id, seq FROM entries
UNION ALL
SELECT ord, NULL, NULL, seq FROM originals
"""
STORE_SENDS: Final = f"WITH {_GIVEN}{_ENTRIES}"
STORE_SENDS_AND_PENDING: Final = f"WITH {_GIVEN}{_PENDING}{_ENTRIES}"
"""The same, and each new message's `push_pending` row (`migrations/postgresql/015_*`)."""


async def store_sends(
    connection: asyncpg.Connection, sends: Sequence[Send], *, pending_pushes: bool = False
) -> list[AcceptedMessage | MessageStoreError]:
    """Store the sends with one statement, outside any transaction; one answer per send.

    A repeated send whose original message cannot be read (a `sends` row
    without its message: the tables have no foreign keys, so that they can be
    partitioned apart) is answered with the error alone."""
    first_of: dict[tuple[int, str], int] = {}
    candidates: list[Send] = []
    for send in sends:
        key = (send.draft.sender_id, send.draft.client_msg_id)
        if key not in first_of:
            first_of[key] = len(candidates)
            candidates.append(send)
    member_ords = [ord_ for ord_, send in enumerate(candidates, 1) for _ in send.member_ids]
    member_ids = [member for send in candidates for member in send.member_ids]
    drafts = [send.draft for send in candidates]
    rows = await connection.fetch(
        STORE_SENDS_AND_PENDING if pending_pushes else STORE_SENDS,
        [draft.channel_id for draft in drafts],
        [draft.sender_id for draft in drafts],
        [draft.text.encode("utf-8") for draft in drafts],
        [draft.created_at for draft in drafts],
        [draft.client_msg_id for draft in drafts],
        [draft.reply_to for draft in drafts],
        # A text literal per row: unnest would flatten an array of arrays.
        ["{" + ",".join(map(str, draft.mentions)) + "}" for draft in drafts],
        member_ords,
        member_ids,
    )
    message_ids: dict[int, int] = {}
    seqs: list[dict[int, int]] = [{} for _ in candidates]
    for row in rows:
        if row[1] is not None:
            message_ids[row[0] - 1] = row[1]
            seqs[row[0] - 1][row[2]] = row[3]
    repeated = [send for index, send in enumerate(candidates) if index not in message_ids]
    originals = await originals_of(connection, repeated)
    answers: list[AcceptedMessage | MessageStoreError] = []
    for index, send in enumerate(candidates):
        key = (send.draft.sender_id, send.draft.client_msg_id)
        if index in message_ids:
            message = send.draft.model_copy(update={"message_id": message_ids[index]})
            seq = seqs[index][send.draft.sender_id]
            answers.append(AcceptedMessage(message, seq, seqs[index], duplicate=False))
        elif key in originals:
            answers.append(originals[key])
        else:
            answers.append(MessageStoreError(f"the original of {key} has no message"))
    return [_answer_to(send, candidates, answers, first_of) for send in sends]


def _answer_to(
    send: Send,
    candidates: list[Send],
    answers: list[AcceptedMessage | MessageStoreError],
    first_of: dict[tuple[int, str], int],
) -> AcceptedMessage | MessageStoreError:
    """A send's answer; a later send of the same key in the batch repeats the first."""
    index = first_of[(send.draft.sender_id, send.draft.client_msg_id)]
    answer = answers[index]
    if candidates[index] is send or isinstance(answer, MessageStoreError):
        return answer
    return as_duplicate(answer)

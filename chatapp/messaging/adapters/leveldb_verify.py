"""Every message's idempotency record checked against its message, while the server serves.

The start-up check reads only the ends of the ranges (`leveldb_survey`), so
that a big store is ready at once. This walk then reads every message in the
background, a piece at a time on a reader thread with a pause between
pieces, and checks that its idempotency record names it and that the
sender's inbox entry points back (as `chatapp check` does). A record that
does not is damage, reported as a failed read would be: logged, and
`/readyz` answers 503 until the stopped folder is repaired. Without the
record, a client's retry of that message would be stored twice.
"""

from __future__ import annotations

from typing import Any, Final

from chatapp.messaging.adapters.leveldb_audit import receipt_names
from chatapp.messaging.adapters.leveldb_layout import (
    MESSAGE,
    U64,
    DamagedStore,
    decode_message,
    id_at_end,
)

PIECE: Final = 512
"""Messages checked per trip to a reader thread."""
_END: Final = bytes([MESSAGE[0] + 1])


def verify_piece(db: Any, after: bytes | None) -> tuple[bytes | None, int, str | None]:
    """Check up to PIECE messages after the key `after` (from the first when None).

    Returns the key to go on after (None at the end), how many were checked,
    and the first problem found (None while all is well).
    """
    checked, last = 0, None
    start = after if after is not None else MESSAGE
    with db.iterator(
        start=start, stop=_END, include_start=after is None, verify_checksums=True
    ) as rows:
        for key, value in rows:
            channel_id, message_id = int(U64.unpack_from(key, 1)[0]), id_at_end(key)
            try:
                message = decode_message(value, channel_id=channel_id, message_id=message_id)
            except DamagedStore as damage:
                return None, checked, str(damage)
            if not receipt_names(db, message.sender_id, message.client_msg_id, key):
                return (
                    None,
                    checked,
                    (
                        f"the idempotency record of message ({channel_id}, {message_id}) is"
                        " missing or names another"
                    ),
                )
            checked += 1
            last = key
            if checked == PIECE:
                return last, checked, None
    return None, checked, None

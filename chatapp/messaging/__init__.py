"""Messaging: message ids, the message store, inboxes, idempotency, history and sync.

The LevelDB store is in `chatapp.messaging.adapters`, which only the
composition root imports.
"""

from chatapp.messaging.events import MessageAccepted
from chatapp.messaging.models import (
    AcceptedMessage,
    InboxEntry,
    InboxPage,
    InboxRecord,
    MessagePage,
    MessagePreview,
    SendRecord,
    StoredMessage,
)
from chatapp.messaging.service import CheckedSend, Membership, Messaging
from chatapp.messaging.store import MessageStore, MessageStoreError

__all__ = [
    "AcceptedMessage",
    "CheckedSend",
    "InboxEntry",
    "InboxPage",
    "InboxRecord",
    "Membership",
    "MessageAccepted",
    "MessagePage",
    "MessagePreview",
    "MessageStore",
    "MessageStoreError",
    "Messaging",
    "SendRecord",
    "StoredMessage",
]

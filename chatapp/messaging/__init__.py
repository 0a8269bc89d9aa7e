"""Messaging: message ids, the message store, inboxes, idempotency, history and sync.

The LevelDB store is in `chatapp.messaging.adapters`, which only the
composition root imports.
"""

from chatapp.messaging.events import MessageAccepted, MessageUpdated
from chatapp.messaging.models import (
    AcceptedMessage,
    InboxEntry,
    InboxPage,
    InboxRecord,
    MessagePage,
    MessagePreview,
    Reaction,
    SendRecord,
    StoredMessage,
    UpdateKind,
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
    "MessageUpdated",
    "Messaging",
    "Reaction",
    "SendRecord",
    "StoredMessage",
    "UpdateKind",
]

"""Messaging: message ids, the message store, inboxes, idempotency, history and sync."""

from chatapp.messaging.leveldb_store import LevelDBMessageStore
from chatapp.messaging.models import (
    AcceptedMessage,
    InboxEntry,
    InboxPage,
    MessagePage,
    StoredMessage,
)
from chatapp.messaging.store import MessageStore, MessageStoreError

__all__ = [
    "AcceptedMessage",
    "InboxEntry",
    "InboxPage",
    "LevelDBMessageStore",
    "MessagePage",
    "MessageStore",
    "MessageStoreError",
    "StoredMessage",
]

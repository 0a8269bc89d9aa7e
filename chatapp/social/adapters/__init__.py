"""Channels, friendships and blocks on SQLite: the embedded default, for the composition root
only."""

from chatapp.social.adapters.sqlite_blocks import SqliteBlockStore
from chatapp.social.adapters.sqlite_channels import SqliteChannelStore
from chatapp.social.adapters.sqlite_friends import SqliteFriendStore

__all__ = ["SqliteBlockStore", "SqliteChannelStore", "SqliteFriendStore"]

"""Presence on LevelDB: the embedded default, imported only by the composition root."""

from chatapp.presence.adapters.leveldb_presence import LevelDBPresenceStore

__all__ = ["LevelDBPresenceStore"]

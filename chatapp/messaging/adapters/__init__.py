"""The message store on LevelDB: the embedded default, imported only by the composition root."""

from chatapp.messaging.adapters.leveldb_store import LevelDBMessageStore

__all__ = ["LevelDBMessageStore"]

"""The search index's engines, imported only by the composition root.

`SqliteSearchIndex` is the embedded default (its own file, FTS5); the
PostgreSQL one (`postgres_index`) is imported only in cluster mode.
"""

from chatapp.search.adapters.sqlite_index import SqliteSearchIndex

__all__ = ["SqliteSearchIndex"]

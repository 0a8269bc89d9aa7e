"""Search: the messages of the caller's channels that a query finds, newest first.

`Search` answers queries from a `SearchIndex` (the protocol in `index`), which
the `Indexer` keeps up to date from the bus, off the send path. The index's
engines (SQLite FTS5 in a file of its own, PostgreSQL full-text search) are
in `chatapp.search.adapters`, which only the composition root imports.
"""

from chatapp.search.index import IndexChanges, SearchIndex, SearchIndexError
from chatapp.search.indexer import OBSERVED_EVENTS, Indexer
from chatapp.search.models import Buried, Document, MessageKey, SortKey
from chatapp.search.service import Memberships, MessageReader, Search, SearchPage
from chatapp.search.source import MessageSource

__all__ = [
    "OBSERVED_EVENTS",
    "Buried",
    "Document",
    "IndexChanges",
    "Indexer",
    "Memberships",
    "MessageKey",
    "MessageReader",
    "MessageSource",
    "Search",
    "SearchIndex",
    "SearchIndexError",
    "SearchPage",
    "SortKey",
]

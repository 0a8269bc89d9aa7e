"""The search file's schema (`search.sqlite3`), versioned by its own table.

The file holds nothing that cannot be made again from the message store, so
a file of another schema or words version, or one SQLite cannot read, is
replaced by a new one, which the indexer then fills from the store.

Each message is a row of `documents`; its words are the row's `words`, which
the FTS5 table `word_index` indexes (an external-content table, kept in step
by triggers, so the words are stored once). A deleted message keeps its row
with `words` and `digest` NULL: it is known to be gone, and nothing of its
text is left in the row.

A row's `doc_id` is also its FTS5 rowid: `(created_at << 21) | n`, `n` counting
the messages indexed in that millisecond. FTS5 walks its matches in rowid
order, so the newest matches come first without sorting them all; only the
messages of one millisecond are sorted by channel and message id.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

SCHEMA_VERSION: Final = 1
BUCKET_BITS: Final = 21
"""Low bits of a doc_id: up to 2,097,152 messages indexed per millisecond."""
MAX_BUCKET: Final = 2**42 - 1
"""The last millisecond a doc_id orders exactly (the year 2109); later ones share it."""

SCHEMA: Final = f"""
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES ({SCHEMA_VERSION});

CREATE TABLE run (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    clean INTEGER NOT NULL,
    words_version TEXT NOT NULL
);

CREATE TABLE documents (
    doc_id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    digest BLOB,
    words TEXT,
    UNIQUE (channel_id, message_id)
);

CREATE TABLE channels (
    channel_id INTEGER PRIMARY KEY,
    indexed_through INTEGER NOT NULL
);

CREATE VIRTUAL TABLE word_index USING fts5(
    words, content = 'documents', content_rowid = 'doc_id',
    tokenize = 'ascii', prefix = '1 2 3', columnsize = 0
);

CREATE TRIGGER documents_added AFTER INSERT ON documents WHEN new.words IS NOT NULL BEGIN
    INSERT INTO word_index (rowid, words) VALUES (new.doc_id, new.words);
END;
CREATE TRIGGER documents_removed AFTER DELETE ON documents WHEN old.words IS NOT NULL BEGIN
    INSERT INTO word_index (word_index, rowid, words) VALUES ('delete', old.doc_id, old.words);
END;
-- One trigger, so that the old words go before the new ones come (triggers of one
-- event fire in no order to rely on, and a word in both texts must stay).
CREATE TRIGGER documents_reworded AFTER UPDATE OF words ON documents BEGIN
    INSERT INTO word_index (word_index, rowid, words)
        SELECT 'delete', old.doc_id, old.words WHERE old.words IS NOT NULL;
    INSERT INTO word_index (rowid, words)
        SELECT new.doc_id, new.words WHERE new.words IS NOT NULL;
END;
"""

PRAGMAS: Final = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=5000",
    # Every commit durable: the run's mark must not claim a clean stop that a
    # power loss undid. Writes come in batches, so this costs one fsync a batch.
    "PRAGMA synchronous=FULL",
    # Freed pages and cells are zeroed, so a deleted text does not linger in them.
    "PRAGMA secure_delete=ON",
    "PRAGMA temp_store=MEMORY",
)


def bucket(created_at: int) -> int:
    """The millisecond a message's doc_id is counted in."""
    return min(max(created_at, 0), MAX_BUCKET)


def prepare_file(path: Path, words_version: str) -> bool:
    """Make `path` a search file of this schema; True when it was made new.

    A file of another version, of other words, or that cannot be read as
    one is removed first (with its WAL): the index is made again from the
    store. Blocking: run it off the event loop.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and _usable(path, words_version):
        return False
    remove_file(path)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in PRAGMAS:
            connection.execute(pragma)
        connection.executescript(f"BEGIN;{SCHEMA}COMMIT;")
        connection.execute(
            "INSERT INTO run (only, clean, words_version) VALUES (1, 0, ?)", (words_version,)
        )
    finally:
        connection.close()
    return True


def remove_file(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _usable(path: Path, words_version: str) -> bool:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        connection.execute("PRAGMA busy_timeout=5000")
        (version,) = connection.execute("SELECT version FROM schema_version").fetchone()
        (words,) = connection.execute("SELECT words_version FROM run").fetchone()
        connection.execute("SELECT count(*) FROM word_index WHERE word_index MATCH 'a'").fetchone()
    except (sqlite3.Error, TypeError):
        return False
    finally:
        connection.close()
    return bool(version == SCHEMA_VERSION and words == words_version)

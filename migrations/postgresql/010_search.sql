-- Message search (protocol-additions.md §6) for cluster mode.
--
-- Derived data, kept beside the messages by each node's indexer, never on the
-- send path, and rebuilt from `messages` by `chatapp reindex`. The words are
-- the server's own (`chatapp.search.words`): lower-cased, NFKC, split on
-- anything that is not a letter, digit or mark, so a tsvector is written as a
-- literal and no text search configuration takes part.

-- One row per message. `digest` is a hash of the text the words came from,
-- compared when the index is checked against the messages; NULL for a
-- deleted message, whose row stays without words so that a late write
-- cannot bring its text back.
CREATE TABLE search_documents (
    channel_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    digest BYTEA,
    words TSVECTOR NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);

CREATE INDEX search_documents_words ON search_documents USING GIN (words);

-- The order results are given in, newest first: a common word is answered by
-- walking this index down to the page's end.
CREATE INDEX search_documents_newest
    ON search_documents (created_at DESC, channel_id DESC, message_id DESC);

-- Every message of the channel up to `indexed_through` has its row: where a
-- catch-up starts reading the channel again.
CREATE TABLE search_channels (
    channel_id BIGINT PRIMARY KEY,
    indexed_through BIGINT NOT NULL
);

-- One row per node whose indexer is running, or stopped without writing all
-- it heard (a kill, events dropped under load). `seen_at` (milliseconds, the
-- database's clock) is refreshed while it runs; a row left behind is claimed
-- by a live node, which then checks every message against the index. The
-- first row stands for the index as made here: nobody has read the messages
-- into it yet.
CREATE TABLE search_writers (
    writer TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);

INSERT INTO search_writers (writer, started_at, seen_at) VALUES ('', 0, 0);

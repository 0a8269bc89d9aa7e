-- Channels (direct and group), their members and each member's read marker.
-- No foreign keys to users: social owns these tables and reaches users only
-- through the accounts module, so the two can live in separate databases later.
CREATE TABLE channels (
    channel_id INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('direct', 'group')),
    name       TEXT    NOT NULL DEFAULT '',
    owner_id   INTEGER,
    -- "low:high" user ids of a direct channel: one channel per pair, even under races.
    direct_key TEXT    UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE channel_members (
    channel_id      INTEGER NOT NULL REFERENCES channels (channel_id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL,
    joined_at       INTEGER NOT NULL,
    read_message_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;

CREATE INDEX channel_members_by_user ON channel_members (user_id, channel_id);

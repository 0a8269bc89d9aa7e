-- What people decide about each other (protocol-additions.md §5): each member's notification
-- level in a channel, whom a user has blocked, and who may add a user to a group.
--
-- Rows made before these existed mean what a new one does: every message is pushed, nobody
-- is blocked, and everyone may add the user to a group.
ALTER TABLE channel_members ADD COLUMN notification_level TEXT NOT NULL DEFAULT 'all'
    CHECK (notification_level IN ('all', 'mentions', 'none'));

ALTER TABLE users ADD COLUMN group_adds TEXT NOT NULL DEFAULT 'everyone'
    CHECK (group_adds IN ('everyone', 'friends'));

-- One row per user and user they block; blocking is one-way, so two users may block each
-- other. No foreign keys to users, as for friendships: social owns this table.
CREATE TABLE blocks (
    blocker_id INTEGER NOT NULL,
    blocked_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
) WITHOUT ROWID;

-- "Who has blocked this user?", asked when the user opens, sends, adds or looks.
CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id);

-- Notification levels, blocks and who may add a user to a group, as in
-- migrations/0009_people_controls.sql.
--
-- A constant default adds each column without rewriting the table, and the checks are
-- NOT VALID: every existing row has the default, so they need not read the whole of
-- channel_members under ALTER TABLE's lock; they hold for every row written from now on.
ALTER TABLE channel_members ADD COLUMN notification_level TEXT NOT NULL DEFAULT 'all';
ALTER TABLE channel_members ADD CONSTRAINT channel_members_notification_level_known
    CHECK (notification_level IN ('all', 'mentions', 'none')) NOT VALID;

ALTER TABLE users ADD COLUMN group_adds TEXT NOT NULL DEFAULT 'everyone';
ALTER TABLE users ADD CONSTRAINT users_group_adds_known
    CHECK (group_adds IN ('everyone', 'friends')) NOT VALID;

-- One row per user and user they block (one-way). The key starts with the blocker, the
-- index with the blocked user: both questions are asked.
CREATE TABLE blocks (
    blocker_id BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT blocks_pkey PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT blocks_not_self CHECK (blocker_id <> blocked_id)
);

CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id);

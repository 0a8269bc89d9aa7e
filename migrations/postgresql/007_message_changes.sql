-- Edits, deletions, reactions, replies and mentions (protocol-additions.md §1-§3).
--
-- Every added column is nullable or has a constant default, so none of these
-- statements rewrites `messages` or `inbox`, the two largest tables.

-- A message is deleted when `deleted_by` is set; its body is then '' and its
-- mentions and reactions are gone. `edited_at` is the last edit's time.
ALTER TABLE messages
    ADD COLUMN edited_at BIGINT,
    ADD COLUMN deleted_by BIGINT,
    ADD COLUMN reply_to BIGINT,
    ADD COLUMN mentions BIGINT[] NOT NULL DEFAULT '{}';

-- Reactions live apart from their message, so reacting never writes the
-- message's row (whose text may be 100,000 characters). One row per user and
-- emoji. Positions count up per message as reactions are made: `user_position`
-- is this reaction's, `emoji_position` the one its emoji took when it joined
-- the list (kept by every row of that emoji). Emoji are listed by
-- `emoji_position`, each emoji's users by `user_position`; an emoji whose last
-- row goes leaves the list, and comes back at the end. The emoji is UTF-8 in a
-- BYTEA, like the message body: TEXT cannot hold U+0000.
CREATE TABLE message_reactions (
    channel_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    emoji BYTEA NOT NULL,
    user_id BIGINT NOT NULL,
    emoji_position BIGINT NOT NULL,
    user_position BIGINT NOT NULL,
    PRIMARY KEY (channel_id, message_id, emoji, user_id)
);

-- NULL for the entry that delivered a message; else the kind of the update
-- entry: 1 edited, 2 deleted, 3 reactions. NOT VALID: every existing row is
-- NULL, so the check need not read the whole inbox under ALTER TABLE's lock;
-- it still holds for every row written from now on.
ALTER TABLE inbox ADD COLUMN update_kind SMALLINT;
ALTER TABLE inbox ADD CONSTRAINT inbox_update_kind_known
    CHECK (update_kind IN (1, 2, 3)) NOT VALID;

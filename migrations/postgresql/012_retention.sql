-- How far `message_retention_days` got in each channel: every message of the channel up to
-- `message_id` had expired and is deleted. Written only after those deletions committed, so
-- it is never ahead of them; a channel without a row is walked from its first message.
CREATE TABLE retention_cursors (
    channel_id BIGINT PRIMARY KEY,
    message_id BIGINT NOT NULL
);

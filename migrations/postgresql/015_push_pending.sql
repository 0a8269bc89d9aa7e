-- Messages whose push work is not done yet (chatapp/notify/pending.py). A row is written in the
-- transaction that stores its message, so an acknowledged message always has one until a
-- notifier has handled it: the statement that opens its collapse windows deletes it, or the
-- notifier deletes it in a batch when nobody needed a push. A row older than the lease is a
-- node that died before doing that work: a sweeper on another node claims it and does it.
--
-- The table holds only the last moments' messages, so it stays small whatever the traffic:
-- no index but the key, which starts with channel_id like `messages` so that it partitions
-- the same way. created_at is the message's (the node's clock, in ms).
CREATE TABLE push_pending (
    channel_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    claimed_by TEXT,
    lease_until BIGINT,
    PRIMARY KEY (channel_id, message_id)
);

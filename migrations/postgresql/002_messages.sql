-- Messages, inboxes and idempotency records, for cluster mode.
-- Every primary key starts with the column the table partitions by later
-- (channel_id for messages, user_id for inboxes, sender_id for sends), so
-- declarative partitioning or Citus can take them without a change to the code.

CREATE TABLE channel_counters (
    channel_id BIGINT PRIMARY KEY,
    last_message_id BIGINT NOT NULL
);

CREATE TABLE inbox_counters (
    user_id BIGINT PRIMARY KEY,
    max_seq BIGINT NOT NULL
);

-- body is the text as UTF-8: TEXT cannot hold U+0000, which a message may contain.
CREATE TABLE messages (
    channel_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    sender_id BIGINT NOT NULL,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    client_msg_id TEXT NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);

CREATE TABLE inbox (
    user_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, seq)
);

CREATE TABLE sends (
    sender_id BIGINT NOT NULL,
    client_msg_id TEXT NOT NULL,
    channel_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (sender_id, client_msg_id)
);

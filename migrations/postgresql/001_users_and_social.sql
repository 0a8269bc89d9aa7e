-- Cluster mode's schema for users, devices, push targets, channels and
-- friendships: the tables of migrations/0001-0004 (SQLite), shaped for many
-- nodes writing at once.
--
-- Ids are identity columns that only the database assigns (GENERATED ALWAYS),
-- capped at 2^53 - 1 so that JavaScript clients read them exactly.
-- Times are milliseconds since the epoch, as in SQLite.
--
-- Each table's primary key starts with the key it will be partitioned by
-- (user_id or channel_id). PostgreSQL enforces a unique constraint on a
-- partitioned table only when it includes the partition key, so the global
-- uniques below (username, token_hash, direct_key) move to lookup tables of
-- their own in the migration that partitions.

CREATE TABLE users (
    user_id       BIGINT GENERATED ALWAYS AS IDENTITY (MAXVALUE 9007199254740991),
    -- Byte order, as SQLite's: the search's ordering matches, and the unique
    -- index also serves `LIKE 'prefix%'`.
    username      TEXT COLLATE "C" NOT NULL,
    display_name  TEXT   NOT NULL,
    about         TEXT   NOT NULL DEFAULT '',
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_username_unique UNIQUE (username)
);

CREATE TABLE devices (
    user_id      BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    device_id    BIGINT GENERATED ALWAYS AS IDENTITY (MAXVALUE 9007199254740991),
    name         TEXT   NOT NULL,
    -- SHA-256 of the token, hex: a stolen database does not yield usable tokens.
    token_hash   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    revoked_at   BIGINT,
    CONSTRAINT devices_pkey PRIMARY KEY (user_id, device_id),
    CONSTRAINT devices_token_hash_unique UNIQUE (token_hash)
);

-- Some calls name a device without its user (touch, push target removal).
CREATE INDEX devices_by_id ON devices (device_id);

-- Where to send a device's push notifications: one target per device. A
-- revoked device's row is deleted; `json` keeps the provider's text as sent.
CREATE TABLE push_targets (
    user_id    BIGINT NOT NULL,
    device_id  BIGINT NOT NULL,
    provider   TEXT   NOT NULL,
    target     JSON   NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT push_targets_pkey PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);

CREATE INDEX push_targets_by_device ON push_targets (device_id);

-- No foreign keys from social's tables to users: social reaches users only
-- through the accounts module, so the two can live in separate databases.
CREATE TABLE channels (
    channel_id BIGINT GENERATED ALWAYS AS IDENTITY (MAXVALUE 9007199254740991),
    kind       TEXT   NOT NULL CHECK (kind IN ('direct', 'group')),
    name       TEXT   NOT NULL DEFAULT '',
    owner_id   BIGINT,
    -- "low:high" user ids of a direct channel: one channel per pair, even under races.
    direct_key TEXT,
    created_at BIGINT NOT NULL,
    CONSTRAINT channels_pkey PRIMARY KEY (channel_id),
    CONSTRAINT channels_direct_key_unique UNIQUE (direct_key)
);

CREATE TABLE channel_members (
    channel_id      BIGINT NOT NULL REFERENCES channels (channel_id) ON DELETE CASCADE,
    user_id         BIGINT NOT NULL,
    joined_at       BIGINT NOT NULL,
    read_message_id BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT channel_members_pkey PRIMARY KEY (channel_id, user_id)
);

CREATE INDEX channel_members_by_user ON channel_members (user_id, channel_id);

-- One row per pair, the lower user id first. A request is 'pending' from
-- `requested_by`; it becomes 'accepted' when the other side asks too.
CREATE TABLE friendships (
    user_low     BIGINT NOT NULL,
    user_high    BIGINT NOT NULL,
    requested_by BIGINT NOT NULL,
    status       TEXT   NOT NULL CHECK (status IN ('pending', 'accepted')),
    created_at   BIGINT NOT NULL,
    accepted_at  BIGINT,
    CONSTRAINT friendships_pkey PRIMARY KEY (user_low, user_high),
    CHECK (user_low < user_high)
);

CREATE INDEX friendships_by_high ON friendships (user_high, user_low);

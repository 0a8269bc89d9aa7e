-- Friendships and friend requests. One row per pair, the lower user id first.
-- A request is 'pending' from `requested_by`; it becomes 'accepted' when the
-- other side asks too.
CREATE TABLE friendships (
    user_low     INTEGER NOT NULL,
    user_high    INTEGER NOT NULL,
    requested_by INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'accepted')),
    created_at   INTEGER NOT NULL,
    accepted_at  INTEGER,
    PRIMARY KEY (user_low, user_high),
    CHECK (user_low < user_high)
) WITHOUT ROWID;

CREATE INDEX friendships_by_high ON friendships (user_high, user_low);

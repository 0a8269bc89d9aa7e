-- What operators decide: deactivated accounts, invite codes, and the audit log of admin actions.
--
-- A deactivated user keeps every row (profile, channels, messages); logins are refused while
-- deactivated_at is set. Users made before deactivation existed are active.
ALTER TABLE users ADD COLUMN deactivated_at INTEGER;
ALTER TABLE users ADD COLUMN deactivation_reason TEXT;

-- The admin list shows when each user's devices last called, revoked ones too.
CREATE INDEX devices_by_user_seen ON devices (user_id, last_seen_at);

-- A code lets uses_left more people sign up while registration is by invite. A signup
-- takes a use with one UPDATE ... WHERE uses_left > 0, so racing signups cannot overspend
-- it. created_by is the admin's user id, NULL for the command line.
CREATE TABLE invites (
    invite_id  INTEGER PRIMARY KEY,
    code       TEXT    NOT NULL UNIQUE,
    uses_left  INTEGER NOT NULL CHECK (uses_left >= 0),
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    created_by INTEGER
);

-- Oldest first by event_id; rows are never deleted, so ids only grow. `target` is the
-- event's target object as JSON text ({"kind": ..., "id": ...}). actor_id NULL: the
-- command line. `action` is checked by the code, not here, so that a new kind of action
-- needs no rebuild of the table.
CREATE TABLE audit_events (
    event_id INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor_id INTEGER,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    reason   TEXT
);

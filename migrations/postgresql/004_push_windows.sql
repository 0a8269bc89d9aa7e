-- Collapse windows of push notifications, shared by every node (chatapp/notify/windows.py).
-- A window is open while claimed_by is NULL: at most one per device and channel, which new
-- messages join. A node that takes a due window claims it until lease_until; it deletes the
-- window once the notification is delivered or given up, and a window whose node died is
-- claimed again by another once the lease has run out.
CREATE TABLE push_windows (
    notification_id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    sender_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- UTF-8 bytes: TEXT cannot hold U+0000, which a message may contain.
    text BYTEA,
    text_truncated BOOLEAN,
    count INTEGER NOT NULL,
    due_at BIGINT NOT NULL,
    claimed_by TEXT,
    lease_until BIGINT
);
CREATE UNIQUE INDEX push_windows_open ON push_windows (device_id, channel_id)
    WHERE claimed_by IS NULL;
CREATE INDEX push_windows_due ON push_windows (due_at);
CREATE INDEX push_windows_device ON push_windows (device_id);

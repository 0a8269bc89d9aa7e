-- Where to send a device's push notifications: one target per device, chosen
-- by the device. `target` is the provider's JSON (a token, a Web Push
-- subscription, an ntfy topic URL). A revoked device's row is deleted.
CREATE TABLE push_targets (
    device_id  INTEGER PRIMARY KEY REFERENCES devices (device_id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL,
    provider   TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX push_targets_by_user ON push_targets (user_id);

-- Secrets every node must share, made once by the first node that needs them.
-- `vapid_private_key`: the Web Push key (PEM), to which browsers tie their subscriptions.
CREATE TABLE cluster_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

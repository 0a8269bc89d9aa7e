-- A user's role on this server: 'member', or 'admin' (may also use the admin API).
-- Users made before roles existed are members; the CLI grants and revokes admin.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
    CHECK (role IN ('member', 'admin'));

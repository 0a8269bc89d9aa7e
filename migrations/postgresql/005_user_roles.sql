-- A user's role on this server: 'member', or 'admin' (may also use the admin API), as in
-- migrations/0005_user_roles.sql. Users made before roles existed are members.
--
-- A constant default adds the column without rewriting the table; the check reads
-- every row once, under the lock that ALTER TABLE takes anyway.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
    CONSTRAINT users_role_known CHECK (role IN ('member', 'admin'));

-- Account deletions not known to be finished, as in migrations/0010_unfinished_deletions.sql.
ALTER TABLE users ADD COLUMN deletion_unfinished TEXT;
UPDATE users SET deletion_unfinished = 'keep' WHERE deleted_at IS NOT NULL;
-- Read at every start; holds only the deletions in progress.
CREATE INDEX users_unfinished_deletions ON users (user_id) WHERE deletion_unfinished IS NOT NULL;

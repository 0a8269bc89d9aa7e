-- An account deletion whose work after the deleted mark (revoking devices, erasing the
-- user's messages when asked, leaving groups and friendships) is not known to be done:
-- 'erase' or 'keep' (the messages), set in the same write as deleted_at and cleared once
-- the work is done. A server that stopped in the middle finishes it when it next starts.
-- Deletions made before this column existed are finished again, once, keeping the messages:
-- every step is safe to repeat, but whether an old deletion asked to erase was never
-- recorded, so an old one cut short during its erase stays half erased.
ALTER TABLE users ADD COLUMN deletion_unfinished TEXT;
UPDATE users SET deletion_unfinished = 'keep' WHERE deleted_at IS NOT NULL;
-- Read at every start; holds only the deletions in progress.
CREATE INDEX users_unfinished_deletions ON users (user_id) WHERE deletion_unfinished IS NOT NULL;

-- The provider a collapse window's notification goes through, so that a node claims only the
-- windows it can deliver: nodes may enable different providers. NULL (a window opened before
-- this column) is delivered by any node, as before.
ALTER TABLE push_windows ADD COLUMN provider TEXT;

-- Whether the user lets the other members of their channels see how far they have read
-- (read receipts). Sharing is reciprocal: one who does not share sees no one else's.
-- Users made before receipts existed share, as a new signup does.
ALTER TABLE users ADD COLUMN share_read_receipts INTEGER NOT NULL DEFAULT 1
    CHECK (share_read_receipts IN (0, 1));

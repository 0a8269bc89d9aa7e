-- Whether the user lets the other members of their channels see how far they have read
-- (read receipts), as in migrations/0006_read_receipts.sql. Users made before receipts
-- existed share, as a new signup does.
--
-- A constant default adds the column without rewriting the table.
ALTER TABLE users ADD COLUMN share_read_receipts BOOLEAN NOT NULL DEFAULT TRUE;

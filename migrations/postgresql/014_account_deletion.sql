-- Accounts their owners deleted, as in migrations/0009_account_deletion.sql.
--
-- A nullable column without a default is added without rewriting the table.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;

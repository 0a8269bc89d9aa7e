-- Accounts their owners deleted (protocol-additions.md §7). A deleted account keeps its row,
-- so the username stays reserved and the user id its messages name still resolves (to the
-- profile `Deleted user`); deleted_at set means logins are refused as for an unknown name.
-- It is distinct from deactivated_at, which an admin sets and may clear again: a deletion
-- sets both, and nothing clears deleted_at. Users made before this existed are not deleted.
ALTER TABLE users ADD COLUMN deleted_at INTEGER;

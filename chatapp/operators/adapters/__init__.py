"""The operators module on SQLite: the embedded default, imported only by the composition root.

The PostgreSQL stores (`postgres_operators`) are imported by cluster mode alone.
"""

from chatapp.operators.adapters.sqlite_operators import SqliteAuditLog, SqliteInviteStore

__all__ = ["SqliteAuditLog", "SqliteInviteStore"]

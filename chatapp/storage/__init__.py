"""Opening the embedded databases. Modules get connections from here, never open their own."""

from chatapp.storage.migrations import Migration, apply_migrations, find_migrations
from chatapp.storage.sqlite import open_sqlite

__all__ = ["Migration", "apply_migrations", "find_migrations", "open_sqlite"]

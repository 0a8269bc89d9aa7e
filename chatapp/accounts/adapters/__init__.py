"""Accounts on SQLite and argon2: the embedded default, imported only by the composition root."""

from chatapp.accounts.adapters.argon2_passwords import Argon2PasswordHasher
from chatapp.accounts.adapters.sqlite_push_targets import SqlitePushTargetStore
from chatapp.accounts.adapters.sqlite_users import SqliteUserStore

__all__ = ["Argon2PasswordHasher", "SqlitePushTargetStore", "SqliteUserStore"]

"""Accounts: users, password hashes, devices, their tokens and push targets.

The package exports the module's public interface. Its engines (SQLite,
argon2) are in `chatapp.accounts.adapters`, which only the composition root
imports.
"""

from chatapp.accounts.events import DeviceRevoked
from chatapp.accounts.limits import AccountLimits
from chatapp.accounts.models import (
    Account,
    Caller,
    Device,
    GroupAdds,
    LoginResult,
    Role,
    User,
)
from chatapp.accounts.passwords import PasswordHashing
from chatapp.accounts.push_targets import PushTarget, PushTargetStore
from chatapp.accounts.service import Accounts
from chatapp.accounts.store import UsernameTaken, UserStore, UserStoreError

__all__ = [
    "Account",
    "AccountLimits",
    "Accounts",
    "Caller",
    "Device",
    "DeviceRevoked",
    "GroupAdds",
    "LoginResult",
    "PasswordHashing",
    "PushTarget",
    "PushTargetStore",
    "Role",
    "User",
    "UserStore",
    "UserStoreError",
    "UsernameTaken",
]

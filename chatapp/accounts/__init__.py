"""Accounts: users, password hashes, devices, their tokens and push targets."""

from chatapp.accounts.events import DeviceRevoked
from chatapp.accounts.models import Caller, Device, LoginResult, User
from chatapp.accounts.passwords import PasswordHasher
from chatapp.accounts.push_targets import PushTarget, PushTargetStore, SqlitePushTargetStore
from chatapp.accounts.service import AccountLimits, Accounts
from chatapp.accounts.sqlite_store import SqliteUserStore
from chatapp.accounts.store import UsernameTaken, UserStore

__all__ = [
    "AccountLimits",
    "Accounts",
    "Caller",
    "Device",
    "DeviceRevoked",
    "LoginResult",
    "PasswordHasher",
    "PushTarget",
    "PushTargetStore",
    "SqlitePushTargetStore",
    "SqliteUserStore",
    "User",
    "UserStore",
    "UsernameTaken",
]

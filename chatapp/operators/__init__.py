"""Operators: who may sign up (the registration setting and invites), what admins do to
accounts (deactivation, roles) and the audit log of it all.

The package exports the module's public interface. Its engines (SQLite,
PostgreSQL) are in `chatapp.operators.adapters`, which only the composition
root imports.
"""

from chatapp.operators.audit import AuditPage, AuditTrail
from chatapp.operators.invites import Invites
from chatapp.operators.models import (
    AuditAction,
    AuditEntry,
    AuditEvent,
    AuditTarget,
    Invite,
    RegistrationPolicy,
)
from chatapp.operators.moderation import AccountPage, Moderation
from chatapp.operators.registration import Registration
from chatapp.operators.server_state import ServerSnapshot, ServerState
from chatapp.operators.service import Operators
from chatapp.operators.store import AuditLog, InviteStore, OperatorStoreError

__all__ = [
    "AccountPage",
    "AuditAction",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "AuditPage",
    "AuditTarget",
    "AuditTrail",
    "Invite",
    "InviteStore",
    "Invites",
    "Moderation",
    "OperatorStoreError",
    "Operators",
    "Registration",
    "RegistrationPolicy",
    "ServerSnapshot",
    "ServerState",
]

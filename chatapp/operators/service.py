"""The operators module as the rest of the server receives it."""

from __future__ import annotations

from dataclasses import dataclass

from chatapp.operators.audit import AuditTrail
from chatapp.operators.invites import Invites
from chatapp.operators.moderation import Moderation
from chatapp.operators.registration import Registration


@dataclass(frozen=True)
class Operators:
    """Registration, invites, moderation and the audit log, built together by the
    composition root (`chatapp.bootstrap.modules.build_operators`)."""

    registration: Registration
    invites: Invites
    moderation: Moderation
    audit: AuditTrail

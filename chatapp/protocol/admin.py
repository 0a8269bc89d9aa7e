"""HTTP bodies of the admin API, `/api/v1/admin/...` (see docs/protocol.md, "Admin API")."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import ConfigDict, Field

from chatapp.protocol.http import Answer, Cursor, Query, Request, User

ADMIN_PAGE_MAX: Final = 200
INVITE_USES_MAX: Final = 10_000
INVITE_EXPIRES_IN_S_MAX: Final = 10 * 365 * 24 * 3600
REASON_MAX: Final = 500


class NodeOut(Answer):
    """A live node of the deployment; times in ms."""

    # Read from discovery's NodeInfo (any object with these attributes).
    model_config = ConfigDict(frozen=True, from_attributes=True)

    node_id: str = Field(description="the node's name (its CHATAPP_NODE_ID)")
    ws_url: str = Field(description="where clients open their WebSockets on this node")
    connections: int = Field(description="its live WebSockets, as of last_seen_at")
    started_at: int = Field(description="when the node started")
    last_seen_at: int = Field(
        description="when the node last reported itself alive (now, on a single node)"
    )


class ClusterAnswer(Answer):
    nodes: list[NodeOut] = Field(description="every live node, by node_id")


class ServerAnswer(Answer):
    """Added: the deployment at a glance, for the admin page; per node, see /admin/cluster."""

    version: str = Field(description="the answering node's chatapp version")
    node_id: str = Field(description="the node that answered")
    started_at: int = Field(description="when the answering node started, in ms")
    uptime_s: int = Field(description="seconds since started_at")
    nodes: int = Field(description="live nodes of the deployment (1 on a single server)")
    connections: int = Field(
        description="live WebSockets, every live node's together (each as it last reported)"
    )
    messages_stored: int | None = Field(
        description="messages the store holds, deleted ones (kept as placeholders) included;"
        " read from the store's counters, null when unknown (a store older than its counter,"
        " until `chatapp repair`)"
    )
    disk_bytes: int | None = Field(
        description="bytes under the answering node's data folder, measured at most once a"
        " minute; null when it cannot be read"
    )
    registration: Literal["open", "invite", "closed"] = Field(
        description="who may sign up (the `registration` setting)"
    )


# -- users ------------------------------------------------------------------------------


class AdminUserOut(User):
    """A user as the admin list shows it: the user object and what only admins see."""

    model_config = ConfigDict(
        frozen=True, from_attributes=True, json_schema_serialization_defaults_required=True
    )

    deactivated: bool = Field(
        default=False, description="whether an admin deactivated the account (logins refused)"
    )
    deactivated_at: int | None = Field(
        default=None, description="added: when it was deactivated; null while active"
    )
    deactivation_reason: str | None = Field(
        default=None, description="added: the reason the admin gave, if any"
    )
    deleted: bool = Field(
        default=False,
        description="added: whether the owner deleted the account (DELETE /me); a deleted"
        " account is deactivated too, shows `Deleted user`, and cannot be reactivated",
    )
    deleted_at: int | None = Field(
        default=None, description="added: when the owner deleted it; null otherwise"
    )
    last_seen_at: int | None = Field(
        default=None,
        description="the last call of any of the user's devices (revoked ones too), to the"
        " minute; null when the user never logged in",
    )


class AdminUsersQuery(Query):
    query: str = Field(default="", max_length=100, description="a username prefix; empty: all")
    after: Cursor = Field(default=0, description="a user_id: the page starts above it")
    limit: int = Field(default=50, ge=1, le=ADMIN_PAGE_MAX)


class AdminUsersAnswer(Answer):
    users: list[AdminUserOut] = Field(description="by user_id, ascending")
    has_more: bool


class RoleRequest(Request):
    role: Literal["member", "admin"] = Field(
        description="`admin` grants the admin API, `member` takes it back"
    )


class DeactivateRequest(Request):
    reason: str | None = Field(
        default=None,
        max_length=REASON_MAX,
        description="why, for the audit log and the admin list",
    )


# -- invites ----------------------------------------------------------------------------


class InviteRequest(Request):
    uses: int = Field(default=1, ge=1, le=INVITE_USES_MAX, description="signups it allows")
    expires_in_s: int | None = Field(
        default=None,
        ge=1,
        le=INVITE_EXPIRES_IN_S_MAX,
        description="seconds it works for; absent or null: it never expires",
    )


class InviteOut(Answer):
    # Read from the operators module's Invite (any object with these attributes).
    model_config = ConfigDict(frozen=True, from_attributes=True)

    code: str = Field(description="what a signup gives as `invite_code`")
    uses_left: int = Field(description="signups it still allows; 0 when used up")
    expires_at: int | None = Field(description="when it stops working; null: never")
    created_at: int = Field(description="added: when it was made")
    created_by: int | None = Field(
        description="added: the admin who made it; null when made with `chatapp invite create`"
    )


class InvitesAnswer(Answer):
    invites: list[InviteOut] = Field(
        description="every invite not revoked, oldest first, used-up and expired ones too"
    )


# -- the audit log ----------------------------------------------------------------------


class AuditQuery(Query):
    after: Cursor = Field(default=0, description="an event_id: the page starts after it")
    limit: int = Field(default=50, ge=1, le=ADMIN_PAGE_MAX)


class AuditTargetOut(Answer):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    kind: Literal["user", "message", "invite"]
    id: int | str = Field(
        description="a user's user_id, a message's message_id, or an invite's code"
    )
    channel_id: int | None = Field(
        default=None, description="added: the message's channel (kind message only)"
    )


class AuditEventOut(Answer):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    event_id: int
    at: int
    actor_id: int | None = Field(
        description="the admin (or group owner, for delete_message) who acted; null for the"
        " operator at the command line"
    )
    action: Literal[
        "deactivate",
        "reactivate",
        "grant_admin",
        "revoke_admin",
        "delete_message",
        "invite_create",
        "invite_revoke",
    ]
    target: AuditTargetOut
    reason: str | None = Field(default=None, description="added: a deactivation's reason")


class AuditAnswer(Answer):
    events: list[AuditEventOut] = Field(description="oldest first, by event_id")
    has_more: bool

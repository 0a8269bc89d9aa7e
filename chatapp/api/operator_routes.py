"""HTTP routes of the admin API for operators: accounts, invites and the audit log.

Declared with `admin_endpoint` (see `admin_routes`): a member gets 403
`forbidden` before any body is read.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from chatapp.accounts import Account
from chatapp.api.admin_routes import admin_endpoint
from chatapp.api.call import Call
from chatapp.api.endpoint import json_answer, no_content
from chatapp.errors import NotFound
from chatapp.protocol.admin import (
    AdminUserOut,
    AdminUsersAnswer,
    AdminUsersQuery,
    AuditAnswer,
    AuditEventOut,
    AuditQuery,
    DeactivateRequest,
    InviteOut,
    InviteRequest,
    InvitesAnswer,
    RoleRequest,
)
from chatapp.protocol.http import Request

RequestT = TypeVar("RequestT", bound=Request)


async def admin_users(call: Call) -> web.Response:
    query = call.query(AdminUsersQuery)
    page = await call.services.operators.moderation.accounts_page(
        query=query.query, after=query.after, limit=query.limit
    )
    users = [admin_user_out(account) for account in page.accounts]
    return json_answer(AdminUsersAnswer(users=users, has_more=page.has_more))


async def deactivate_user(call: Call) -> web.Response:
    body = await _body_or_none(call, DeactivateRequest)
    await call.services.operators.moderation.deactivate(
        call.path_id("user_id"), actor_id=call.caller.user_id, reason=body.reason
    )
    return no_content()


async def reactivate_user(call: Call) -> web.Response:
    await call.services.operators.moderation.reactivate(
        call.path_id("user_id"), actor_id=call.caller.user_id
    )
    return no_content()


async def set_role(call: Call) -> web.Response:
    body = await call.body(RoleRequest)
    await call.services.operators.moderation.set_role_of(
        call.path_id("user_id"), body.role, actor_id=call.caller.user_id
    )
    return no_content()


async def create_invite(call: Call) -> web.Response:
    body = await _body_or_none(call, InviteRequest)
    invite = await call.services.operators.invites.create(
        actor_id=call.caller.user_id, uses=body.uses, expires_in_s=body.expires_in_s
    )
    return json_answer(InviteOut.model_validate(invite), status=201)


async def list_invites(call: Call) -> web.Response:
    invites = await call.services.operators.invites.list_invites()
    return json_answer(InvitesAnswer(invites=[InviteOut.model_validate(i) for i in invites]))


async def revoke_invite(call: Call) -> web.Response:
    code = call.request.match_info.get("code")
    if not code:
        raise NotFound("not_found", "no such invite")
    await call.services.operators.invites.revoke(code, actor_id=call.caller.user_id)
    return no_content()


async def audit_events(call: Call) -> web.Response:
    query = call.query(AuditQuery)
    page = await call.services.operators.audit.page(after=query.after, limit=query.limit)
    events = [AuditEventOut.model_validate(event) for event in page.events]
    return json_answer(AuditAnswer(events=events, has_more=page.has_more))


def admin_user_out(account: Account) -> AdminUserOut:
    return AdminUserOut(
        **account.user.model_dump(include=set(AdminUserOut.model_fields)),
        deactivated=account.deactivated,
        deactivated_at=account.deactivated_at,
        deactivation_reason=account.deactivation_reason,
        deleted=account.deleted,
        deleted_at=account.deleted_at,
        last_seen_at=account.last_seen_at,
    )


async def _body_or_none(call: Call, model: type[RequestT]) -> RequestT:
    """The body, where every field may be left out: no body at all reads as `{}`."""
    if not await call.request.read():
        return model()
    return await call.body(model)


ENDPOINTS = [
    admin_endpoint("GET", "/users", admin_users,
                   "Every account, with its deactivation and last activity, by user id",
                   {200: AdminUsersAnswer}, query=AdminUsersQuery, errors=(503,)),
    admin_endpoint("POST", "/users/{user_id}/deactivate", deactivate_user,
                   "Refuse the user's logins and revoke every device now",
                   {204: None}, body=DeactivateRequest, errors=(404, 503)),
    admin_endpoint("POST", "/users/{user_id}/reactivate", reactivate_user,
                   "Allow a deactivated user to log in again (not one whose owner deleted it)",
                   {204: None}, errors=(404, 409, 503)),
    admin_endpoint("PUT", "/users/{user_id}/role", set_role,
                   "Grant or revoke the admin role (not one's own revocation)",
                   {204: None}, body=RoleRequest, errors=(404, 409, 503)),
    admin_endpoint("POST", "/invites", create_invite, "Make an invite code",
                   {201: InviteOut}, body=InviteRequest, errors=(503,)),
    admin_endpoint("GET", "/invites", list_invites, "Every invite not revoked",
                   {200: InvitesAnswer}, errors=(503,)),
    admin_endpoint("DELETE", "/invites/{code}", revoke_invite, "Revoke an invite code",
                   {204: None}, errors=(404, 503)),
    admin_endpoint("GET", "/audit", audit_events, "What admins did, oldest first",
                   {200: AuditAnswer}, query=AuditQuery, errors=(503,)),
]  # fmt: skip

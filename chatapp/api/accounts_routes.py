"""HTTP routes of the accounts module: sign-up, login, the caller's profile and devices, users."""

from __future__ import annotations

from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.endpoint import Endpoint, json_answer, no_content
from chatapp.protocol.http import (
    DeviceInfo,
    DevicesAnswer,
    LoginAnswer,
    LoginRequest,
    OwnUserAnswer,
    ProfilePatch,
    SignupRequest,
    UserAnswer,
    UsersAnswer,
    UsersQuery,
)
from chatapp.protocol.own_account import AccountDeletionRequest, PasswordChangeRequest

PREFIX = "/api/v1"


async def signup(call: Call) -> web.Response:
    body = await call.body(SignupRequest)
    user = await call.services.operators.registration.signup(
        body.username,
        body.password,
        body.display_name,
        invite_code=body.invite_code,
        address=call.address,
    )
    return json_answer(UserAnswer(user=user), status=201)


async def login(call: Call) -> web.Response:
    body = await call.body(LoginRequest)
    result = await call.services.accounts.login(
        body.username, body.password, body.device_name, address=call.address
    )
    return json_answer(
        LoginAnswer(
            token=result.token,
            device_id=result.device.device_id,
            user=result.user,
            ws_url=(await call.services.discovery.choose(result.user.user_id)).ws_url,
        )
    )


async def logout(call: Call) -> web.Response:
    await call.services.accounts.logout(call.caller)
    return no_content()


async def get_me(call: Call) -> web.Response:
    """The caller's own user object: the public one, with the caller's settings."""
    user = await call.services.accounts.get_user(call.caller.user_id)
    return json_answer(OwnUserAnswer(user=user))


async def patch_me(call: Call) -> web.Response:
    body = await call.body(ProfilePatch)
    user = await call.services.accounts.update_profile(
        call.caller,
        display_name=body.display_name,
        about=body.about,
        share_read_receipts=body.share_read_receipts,
        group_adds=body.group_adds,
    )
    return json_answer(OwnUserAnswer(user=user))


async def change_password(call: Call) -> web.Response:
    body = await call.body(PasswordChangeRequest)
    await call.services.accounts.change_password(
        call.caller, body.current_password, body.new_password, address=call.address
    )
    return no_content()


async def delete_me(call: Call) -> web.Response:
    """Answered once the whole deletion is done (the erase of the messages too): a 204 means
    nothing of it is left to do."""
    body = await call.body(AccountDeletionRequest)
    await call.services.account_deletion.delete(
        call.caller, body.password, erase_messages=body.erase_messages, address=call.address
    )
    return no_content()


async def list_devices(call: Call) -> web.Response:
    devices = await call.services.accounts.list_devices(call.caller)
    return json_answer(
        DevicesAnswer(
            devices=[
                DeviceInfo(
                    device_id=device.device_id,
                    name=device.name,
                    created_at=device.created_at,
                    last_seen_at=device.last_seen_at,
                    current=device.device_id == call.caller.device_id,
                )
                for device in devices
            ]
        )
    )


async def revoke_device(call: Call) -> web.Response:
    await call.services.accounts.revoke_device(call.caller, call.path_id("device_id"))
    return no_content()


async def get_user(call: Call) -> web.Response:
    return json_answer(
        UserAnswer(user=await call.services.accounts.get_user(call.path_id("user_id")))
    )


async def find_users(call: Call) -> web.Response:
    query = call.query(UsersQuery)
    return json_answer(UsersAnswer(users=await call.services.accounts.find_users(query.username)))


ENDPOINTS = [
    Endpoint("POST", f"{PREFIX}/auth/signup", signup, "Create an account",
             {201: UserAnswer}, body=SignupRequest, errors=(403, 409, 422, 429), public=True,
             tag="auth"),
    Endpoint("POST", f"{PREFIX}/auth/login", login, "Log in as a new device",
             {200: LoginAnswer}, body=LoginRequest, errors=(401, 403, 429), public=True,
             tag="auth"),
    Endpoint("POST", f"{PREFIX}/auth/logout", logout, "Revoke this device's token",
             {204: None}, tag="auth"),
    Endpoint("GET", f"{PREFIX}/me", get_me, "The caller's profile and settings",
             {200: OwnUserAnswer}, tag="me"),
    Endpoint("PATCH", f"{PREFIX}/me", patch_me, "Change the caller's profile and settings",
             {200: OwnUserAnswer}, body=ProfilePatch, errors=(422,), tag="me"),
    Endpoint("DELETE", f"{PREFIX}/me", delete_me,
             "Delete the caller's account (and, if asked, every message it sent)",
             {204: None}, body=AccountDeletionRequest, errors=(401, 429, 503), tag="me"),
    Endpoint("POST", f"{PREFIX}/me/password", change_password,
             "Change the caller's password; every other device is signed out",
             {204: None}, body=PasswordChangeRequest, errors=(401, 422, 429), tag="me"),
    Endpoint("GET", f"{PREFIX}/me/devices", list_devices, "The caller's signed-in devices",
             {200: DevicesAnswer}, tag="me"),
    Endpoint("DELETE", f"{PREFIX}/me/devices/{{device_id}}", revoke_device, "Revoke a device",
             {204: None}, errors=(404,), tag="me"),
    Endpoint("GET", f"{PREFIX}/users/{{user_id}}", get_user, "A user's public profile",
             {200: UserAnswer}, errors=(404,), tag="users"),
    Endpoint("GET", f"{PREFIX}/users", find_users, "Find users by exact name or prefix",
             {200: UsersAnswer}, query=UsersQuery, tag="users"),
]  # fmt: skip

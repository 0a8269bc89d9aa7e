"""The HTTP side of the client: one method per endpoint, answers as the protocol's models."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Literal, Self

import aiohttp

from chatapp.protocol.admin import (
    AdminUsersAnswer,
    AuditAnswer,
    ClusterAnswer,
    InviteOut,
    InvitesAnswer,
    NodeOut,
    ServerAnswer,
)
from chatapp.protocol.http import (
    BlocksAnswer,
    ChannelAnswer,
    ChannelOut,
    ChannelsAnswer,
    DeviceInfo,
    DevicesAnswer,
    DiscoveryAnswer,
    LoginAnswer,
    MessageAnswer,
    MessageOut,
    MessagesAnswer,
    OwnUser,
    OwnUserAnswer,
    ReceiptOut,
    ReceiptsAnswer,
    SearchAnswer,
    SendAnswer,
    SyncAnswer,
    User,
    UserAnswer,
    UsersAnswer,
)
from chatapp.protocol.push import PushConfigAnswer


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class ChatApiError(Exception):
    """The server refused a request; `code` is the protocol's error code."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class ChatClient:
    """A user's (or a device's) view of one server. Use as `async with ChatClient(url) as c:`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.login_answer: LoginAnswer | None = None
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def user_id(self) -> int:
        return self._logged_in().user.user_id

    @property
    def device_id(self) -> int:
        return self._logged_in().device_id

    @property
    def ws_url(self) -> str:
        return self._logged_in().ws_url

    # -- accounts ---------------------------------------------------------------

    async def signup(
        self,
        username: str,
        password: str,
        display_name: str | None = None,
        *,
        invite_code: str | None = None,
    ) -> User:
        """Create an account; `invite_code` is needed while registration is by invite."""
        body: dict[str, Any] = {"username": username, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        if invite_code is not None:
            body["invite_code"] = invite_code
        return UserAnswer.model_validate(
            await self.request("POST", "/api/v1/auth/signup", body)
        ).user

    async def login(
        self, username: str, password: str, device_name: str | None = None
    ) -> LoginAnswer:
        body: dict[str, Any] = {"username": username, "password": password}
        if device_name is not None:
            body["device_name"] = device_name
        answer = LoginAnswer.model_validate(await self.request("POST", "/api/v1/auth/login", body))
        self.token = answer.token
        self.login_answer = answer
        return answer

    async def logout(self) -> None:
        await self.request("POST", "/api/v1/auth/logout")

    async def me(self) -> OwnUser:
        return OwnUserAnswer.model_validate(await self.request("GET", "/api/v1/me")).user

    async def update_me(
        self,
        *,
        display_name: str | None = None,
        about: str | None = None,
        share_read_receipts: bool | None = None,
        group_adds: Literal["everyone", "friends"] | None = None,
    ) -> OwnUser:
        """Change the fields given (None leaves one as it is).

        `group_adds="friends"` lets only this user's friends add them to groups.
        """
        fields: dict[str, Any] = {
            "display_name": display_name,
            "about": about,
            "share_read_receipts": share_read_receipts,
            "group_adds": group_adds,
        }
        body = {key: value for key, value in fields.items() if value is not None}
        answer = await self.request("PATCH", "/api/v1/me", body)
        return OwnUserAnswer.model_validate(answer).user

    async def change_password(self, current_password: str, new_password: str) -> None:
        """Set a new password; every other device of this user is signed out, this one stays."""
        body = {"current_password": current_password, "new_password": new_password}
        await self.request("POST", "/api/v1/me/password", body)

    async def delete_account(self, password: str, erase_messages: bool = False) -> None:
        """Delete this account for good (every device signed out, this one too); with
        `erase_messages`, every message it sent is deleted first."""
        body = {"password": password, "erase_messages": erase_messages}
        await self.request("DELETE", "/api/v1/me", body)

    async def export_me(self) -> AsyncIterator[dict[str, Any]]:
        """This user's own data, one `{"type": T, T: object}` line at a time, read as the
        server streams it (the whole export is never in memory)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self._http().get(
            self.base_url + "/api/v1/me/export", headers=headers
        ) as response:
            if response.status >= 400:
                raise await _api_error(response)
            # Split by hand: a line holds one message, whose text alone may pass the
            # longest line aiohttp's own line reader takes.
            rest = b""
            async for chunk in response.content.iter_any():
                *whole, rest = (rest + chunk).split(b"\n")
                for line in whole:
                    if line.strip():
                        yield json.loads(line)
            if rest.strip():
                yield json.loads(rest)

    async def block(self, user_id: int) -> None:
        """Block a user: they can no longer reach this user one-to-one, add them to groups or
        see their presence; a friendship or request between the two ends."""
        await self.request("PUT", f"/api/v1/me/blocks/{user_id}")

    async def unblock(self, user_id: int) -> None:
        await self.request("DELETE", f"/api/v1/me/blocks/{user_id}")

    async def blocks(self) -> list[User]:
        """The users this user blocks, by user id."""
        return BlocksAnswer.model_validate(await self.request("GET", "/api/v1/me/blocks")).users

    async def devices(self) -> list[DeviceInfo]:
        return DevicesAnswer.model_validate(await self.request("GET", "/api/v1/me/devices")).devices

    async def revoke_device(self, device_id: int) -> None:
        await self.request("DELETE", f"/api/v1/me/devices/{device_id}")

    async def set_push_target(self, device_id: int, provider: str, target: Any) -> None:
        """Register where a device's push notifications go (see `push_config`)."""
        body = {"provider": provider, "target": target}
        await self.request("PUT", f"/api/v1/me/devices/{device_id}/push", body)

    async def remove_push_target(self, device_id: int) -> None:
        await self.request("DELETE", f"/api/v1/me/devices/{device_id}/push")

    async def push_config(self) -> PushConfigAnswer:
        return PushConfigAnswer.model_validate(await self.request("GET", "/api/v1/push/config"))

    async def user(self, user_id: int) -> User:
        return UserAnswer.model_validate(await self.request("GET", f"/api/v1/users/{user_id}")).user

    async def find_users(self, username: str) -> list[User]:
        answer = await self.request("GET", "/api/v1/users", params={"username": username})
        return UsersAnswer.model_validate(answer).users

    # -- channels and messages --------------------------------------------------------

    async def open_direct(self, user_id: int) -> ChannelOut:
        answer = await self.request("POST", "/api/v1/channels/direct", {"user_id": user_id})
        return ChannelAnswer.model_validate(answer).channel

    async def create_group(self, name: str, member_ids: list[int]) -> ChannelOut:
        body = {"name": name, "member_ids": member_ids}
        answer = await self.request("POST", "/api/v1/channels/group", body)
        return ChannelAnswer.model_validate(answer).channel

    async def channels(self) -> list[ChannelOut]:
        answer = await self.request("GET", "/api/v1/channels")
        return ChannelsAnswer.model_validate(answer).channels

    async def channel(self, channel_id: int) -> ChannelOut:
        answer = await self.request("GET", f"/api/v1/channels/{channel_id}")
        return ChannelAnswer.model_validate(answer).channel

    async def rename_channel(self, channel_id: int, name: str) -> ChannelOut:
        answer = await self.request("PATCH", f"/api/v1/channels/{channel_id}", {"name": name})
        return ChannelAnswer.model_validate(answer).channel

    async def add_member(self, channel_id: int, user_id: int) -> ChannelOut:
        path = f"/api/v1/channels/{channel_id}/members"
        answer = await self.request("POST", path, {"user_id": user_id})
        return ChannelAnswer.model_validate(answer).channel

    async def remove_member(self, channel_id: int, user_id: int) -> None:
        await self.request("DELETE", f"/api/v1/channels/{channel_id}/members/{user_id}")

    async def set_notification_level(
        self, channel_id: int, level: Literal["all", "mentions", "none"]
    ) -> None:
        """Which of the channel's messages are pushed to this user's devices: every one, those
        that mention the user (in a direct channel, every one), or none."""
        path = f"/api/v1/channels/{channel_id}/notifications"
        await self.request("PUT", path, {"level": level})

    async def messages(
        self,
        channel_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> MessagesAnswer:
        params = {
            key: str(value)
            for key, value in {"before": before, "after": after, "limit": limit}.items()
            if value is not None
        }
        answer = await self.request("GET", f"/api/v1/channels/{channel_id}/messages", params=params)
        return MessagesAnswer.model_validate(answer)

    async def send_message(
        self,
        channel_id: int,
        text: str,
        client_msg_id: str | None = None,
        *,
        reply_to: int | None = None,
    ) -> SendAnswer:
        """Send over HTTP; pass the same client_msg_id to retry safely.

        `reply_to` names the message of the channel this one quotes.
        """
        body: dict[str, Any] = {"client_msg_id": client_msg_id or uuid.uuid4().hex, "text": text}
        if reply_to is not None:
            body["reply_to"] = reply_to
        answer = await self.request("POST", f"/api/v1/channels/{channel_id}/messages", body)
        return SendAnswer.model_validate(answer)

    async def edit_message(self, channel_id: int, message_id: int, text: str) -> MessageOut:
        """New text for one's own message; the message as it is then."""
        path = f"/api/v1/channels/{channel_id}/messages/{message_id}"
        answer = await self.request("PATCH", path, {"text": text})
        return MessageAnswer.model_validate(answer).message

    async def delete_message(self, channel_id: int, message_id: int) -> None:
        """Delete a message: one's own, any in a group one owns, or any as a server admin."""
        await self.request("DELETE", f"/api/v1/channels/{channel_id}/messages/{message_id}")

    async def react(self, channel_id: int, message_id: int, emoji: str) -> None:
        """Add this user's reaction `emoji` (doing it twice changes nothing)."""
        await self.request("PUT", _reaction_path(channel_id, message_id, emoji))

    async def unreact(self, channel_id: int, message_id: int, emoji: str) -> None:
        """Take back this user's reaction `emoji`."""
        await self.request("DELETE", _reaction_path(channel_id, message_id, emoji))

    async def mark_read(self, channel_id: int, message_id: int) -> None:
        path = f"/api/v1/channels/{channel_id}/read"
        await self.request("POST", path, {"message_id": message_id})

    async def receipts(self, channel_id: int) -> list[ReceiptOut]:
        """How far the channel's members who share read receipts have read (only this user's
        own entry when this user does not share)."""
        answer = await self.request("GET", f"/api/v1/channels/{channel_id}/receipts")
        return ReceiptsAnswer.model_validate(answer).receipts

    async def sync(self, since: int = 0, limit: int | None = None) -> SyncAnswer:
        params = {"since": str(since)} | ({"limit": str(limit)} if limit else {})
        return SyncAnswer.model_validate(await self.request("GET", "/api/v1/sync", params=params))

    async def search(
        self,
        q: str,
        channel_id: int | None = None,
        before: str | None = None,
        limit: int | None = None,
    ) -> SearchAnswer:
        """Messages of this user's channels (or of `channel_id`) that `q` finds, newest first;
        pass the answer's `next_before` as `before` for the next page."""
        wanted = {"q": q, "channel_id": channel_id, "before": before, "limit": limit}
        params = {key: str(value) for key, value in wanted.items() if value is not None}
        answer = await self.request("GET", "/api/v1/search", params=params)
        return SearchAnswer.model_validate(answer)

    async def discovery(self) -> str:
        return DiscoveryAnswer.model_validate(await self.request("GET", "/api/v1/discovery")).ws_url

    # -- admin (a server admin's calls) ----------------------------------------------

    async def cluster_nodes(self) -> list[NodeOut]:
        """The deployment's live nodes; 403 `forbidden` unless this user is an admin."""
        answer = await self.request("GET", "/api/v1/admin/cluster")
        return ClusterAnswer.model_validate(answer).nodes

    async def server_state(self) -> ServerAnswer:
        """Version, uptime, connections, messages stored and disk used; admins only."""
        return ServerAnswer.model_validate(await self.request("GET", "/api/v1/admin/server"))

    async def set_role(self, user_id: int, role: Literal["member", "admin"]) -> None:
        """Grant (`admin`) or revoke (`member`) the admin role; one's own revocation is 403."""
        await self.request("PUT", f"/api/v1/admin/users/{user_id}/role", {"role": role})

    async def admin_users(
        self, query: str = "", *, after: int | None = None, limit: int | None = None
    ) -> AdminUsersAnswer:
        """Accounts whose username starts with `query`, by user id above `after`."""
        params = {"query": query} | _query(after=after, limit=limit)
        answer = await self.request("GET", "/api/v1/admin/users", params=params)
        return AdminUsersAnswer.model_validate(answer)

    async def deactivate(self, user_id: int, reason: str | None = None) -> None:
        """Refuse the user's logins and revoke every device of it now."""
        body = {} if reason is None else {"reason": reason}
        await self.request("POST", f"/api/v1/admin/users/{user_id}/deactivate", body)

    async def reactivate(self, user_id: int) -> None:
        """Let a deactivated user log in again (its old tokens stay revoked)."""
        await self.request("POST", f"/api/v1/admin/users/{user_id}/reactivate", {})

    async def create_invite(
        self, uses: int | None = None, expires_in_s: int | None = None
    ) -> InviteOut:
        """A new invite code for `uses` signups (1 by default), expiring after `expires_in_s`
        seconds (never, by default)."""
        body = _present(uses=uses, expires_in_s=expires_in_s)
        return InviteOut.model_validate(await self.request("POST", "/api/v1/admin/invites", body))

    async def invites(self) -> list[InviteOut]:
        answer = await self.request("GET", "/api/v1/admin/invites")
        return InvitesAnswer.model_validate(answer).invites

    async def revoke_invite(self, code: str) -> None:
        quoted = urllib.parse.quote(code, safe="")
        await self.request("DELETE", f"/api/v1/admin/invites/{quoted}")

    async def audit(self, *, after: int | None = None, limit: int | None = None) -> AuditAnswer:
        """The audit log's events after the event id `after`, oldest first."""
        params = _query(after=after, limit=limit)
        answer = await self.request("GET", "/api/v1/admin/audit", params=params)
        return AuditAnswer.model_validate(answer)

    # -- transport --------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
    ) -> Any:
        """Call any endpoint; the decoded JSON answer (None for 204), or ChatApiError."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self._http().request(
            method, self.base_url + path, json=body, params=params, headers=headers
        ) as response:
            if response.status == 204:
                return None
            if response.status >= 400:
                raise await _api_error(response)
            return await response.json(content_type=None)

    async def raw_request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | str | BinaryIO | None = None,
        headers: dict[str, str] | None = None,
    ) -> RawAnswer:
        """Send exactly these bytes; for callers (and tests) that speak HTTP by hand."""
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        sent.update(headers or {})
        async with self._http().request(
            method, self.base_url + path, data=data, headers=sent
        ) as response:
            return RawAnswer(response.status, dict(response.headers), await response.text())

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _logged_in(self) -> LoginAnswer:
        if self.login_answer is None:
            raise RuntimeError("log in first")
        return self.login_answer


async def _api_error(response: aiohttp.ClientResponse) -> ChatApiError:
    """The error envelope of a refused request as a ChatApiError."""
    document = await response.json(content_type=None)
    error = document.get("error", {}) if isinstance(document, dict) else {}
    retry_after = response.headers.get("Retry-After")
    return ChatApiError(
        response.status,
        str(error.get("code", "unknown")),
        str(error.get("message", "")),
        float(retry_after) if retry_after else None,
    )


def _present(**values: int | None) -> dict[str, Any]:
    """The values given (not None), for a body."""
    return {key: value for key, value in values.items() if value is not None}


def _query(**values: int | None) -> dict[str, str]:
    """The values given (not None), as query parameters."""
    return {key: str(value) for key, value in values.items() if value is not None}


def _reaction_path(channel_id: int, message_id: int, emoji: str) -> str:
    # Every byte that is not unreserved is escaped, so "/" or "?" in an emoji stays in it.
    quoted = urllib.parse.quote(emoji, safe="")
    return f"/api/v1/channels/{channel_id}/messages/{message_id}/reactions/{quoted}"

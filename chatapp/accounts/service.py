"""Accounts: sign-up, login, tokens, profiles and devices."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from pydantic import JsonValue

from chatapp.accounts import rules
from chatapp.accounts.events import DeviceRevoked
from chatapp.accounts.limits import AccountLimits, enforce
from chatapp.accounts.models import (
    DELETED_DISPLAY_NAME,
    Account,
    Caller,
    Credentials,
    Device,
    GroupAdds,
    LoginResult,
    Role,
    User,
)
from chatapp.accounts.passwords import PasswordHashing
from chatapp.accounts.push_targets import PushTarget, PushTargetStore
from chatapp.accounts.store import UsernameTaken, UserStore
from chatapp.accounts.tokens import hash_token, new_token
from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.errors import Conflict, Forbidden, NotFound, Unauthorized

log = structlog.get_logger(__name__)

USER_SEARCH_LIMIT = 20
# last_seen_at is for people reading a device list; minute precision spares a
# write on every request.
_TOUCH_INTERVAL_MS = 60_000


class Accounts:
    def __init__(
        self,
        store: UserStore,
        hasher: PasswordHashing,
        clock: Clock,
        bus: Bus,
        limits: AccountLimits,
        push_targets: PushTargetStore,
    ) -> None:
        self._store = store
        self._push_targets = push_targets
        self._hasher = hasher
        self._clock = clock
        self._bus = bus
        self._limits = limits

    async def signup(
        self,
        username: str,
        password: str,
        display_name: str | None = None,
        *,
        address: str = "",
        role: Role = "member",
    ) -> User:
        name = rules.normalise_username(username)
        rules.check_password(password)
        shown = rules.check_display_name(display_name) if display_name is not None else name
        await enforce(self._limits.signup_by_address, address, "signups from this address")
        password_hash = await self._hasher.hash(password)
        try:
            user = await self._store.create_user(
                username=name,
                display_name=shown,
                password_hash=password_hash,
                created_at=self._clock.now_ms(),
                role=role,
            )
        except UsernameTaken:
            raise Conflict("username_taken", f"username {name!r} is taken") from None
        log.info("user_signed_up", user_id=user.user_id, role=role)
        return user

    async def login(
        self, username: str, password: str, device_name: str | None = None, *, address: str = ""
    ) -> LoginResult:
        name = username.lower()
        attempt = await self._limits.begin_login(name, address)
        async with attempt:
            credentials = _unless_deleted(await self._store.get_credentials(name))
            stored_hash = credentials.password_hash if credentials else None
            # verify runs for an unknown name too (against a decoy), so a wrong
            # username takes as long as a wrong password.
            matched = await self._hasher.verify(stored_hash, password)
            if credentials is None or not matched:
                log.info("login_refused", username=name)
                await attempt.failed()
                raise Unauthorized("invalid_credentials", "wrong username or password")
        # Only after the password matched: a wrong one learns nothing of the account.
        if credentials.deactivated:
            raise _deactivated()
        if self._hasher.needs_rehash(credentials.password_hash):
            new_hash = await self._hasher.hash(password)
            await self._store.set_password_hash(credentials.user.user_id, new_hash)
        token = new_token()
        device = await self._store.create_device(
            user_id=credentials.user.user_id,
            name=rules.device_name(device_name),
            token_hash=hash_token(token),
            created_at=self._clock.now_ms(),
        )
        await self._refuse_if_deactivated_meanwhile(name, device)
        log.info("device_logged_in", user_id=device.user_id, device_id=device.device_id)
        return LoginResult(token=token, device=device, user=credentials.user)

    async def authenticate(self, token: str | None) -> Caller:
        """The caller a bearer token belongs to; Unauthorized when missing, unknown or revoked."""
        if not token:
            raise Unauthorized("unauthorized", "a bearer token is required")
        device = await self._store.device_for_token(hash_token(token))
        if device is None:
            raise Unauthorized("unauthorized", "the token is unknown or revoked")
        now = self._clock.now_ms()
        if now - device.last_seen_at >= _TOUCH_INTERVAL_MS:
            await self._store.touch_device(device.device_id, seen_at=now)
        return Caller(user_id=device.user_id, device_id=device.device_id)

    async def logout(self, caller: Caller) -> None:
        await self.revoke_device(caller, caller.device_id)

    async def revoke_device(self, caller: Caller, device_id: int) -> None:
        if not await self._revoke(caller.user_id, device_id):
            raise NotFound("not_found", f"no device {device_id}")

    async def _revoke(self, user_id: int, device_id: int) -> bool:
        """Revoke a live device and tell every process (its sockets close with 4401)."""
        revoked = await self._store.revoke_device(
            user_id, device_id, revoked_at=self._clock.now_ms()
        )
        if not revoked:
            return False
        await self._push_targets.remove_target(device_id)
        log.info("device_revoked", user_id=user_id, device_id=device_id)
        self._bus.publish(DeviceRevoked(user_id=user_id, device_id=device_id))
        return True

    async def list_devices(self, caller: Caller) -> list[Device]:
        return await self._store.list_devices(caller.user_id)

    async def get_user(self, user_id: int) -> User:
        user = await self._store.get_user(user_id)
        if user is None:
            raise NotFound("not_found", f"no user {user_id}")
        return user

    async def get_users(self, user_ids: Iterable[int]) -> list[User]:
        return await self._store.get_users(user_ids)

    async def existing_user_ids(self, user_ids: Iterable[int]) -> set[int]:
        return await self._store.existing_user_ids(user_ids)

    async def find_users(self, username_prefix: str) -> list[User]:
        prefix = username_prefix.lower()
        if not prefix:
            return []
        return await self._store.find_users(prefix, limit=USER_SEARCH_LIMIT)

    async def update_profile(
        self,
        caller: Caller,
        *,
        display_name: str | None,
        about: str | None,
        share_read_receipts: bool | None = None,
        group_adds: GroupAdds | None = None,
    ) -> User:
        user = await self._store.update_profile(
            caller.user_id,
            display_name=rules.check_display_name(display_name)
            if display_name is not None
            else None,
            about=rules.check_about(about) if about is not None else None,
            share_read_receipts=share_read_receipts,
            group_adds=group_adds,
        )
        if user is None:
            raise NotFound("not_found", "the account no longer exists")
        if share_read_receipts is not None:
            log.info("read_receipts_set", user_id=user.user_id, share=share_read_receipts)
        if group_adds is not None:
            log.info("group_adds_set", user_id=user.user_id, group_adds=group_adds)
        return user

    async def receipt_sharers(self, user_ids: Iterable[int]) -> set[int]:
        """Which of these users share their read receipts (read from the store each time, so a
        change made on any node counts at once)."""
        return await self._store.receipt_sharers(user_ids)

    async def only_friends_add(self, user_ids: Iterable[int]) -> set[int]:
        """Which of these users let only their friends add them to groups (read from the store
        each time, as `receipt_sharers`)."""
        return await self._store.only_friends_add(user_ids)

    async def set_password(self, username: str, password: str) -> User:
        """Set a new password (an operator's reset): every device must log in again."""
        rules.check_password(password)
        credentials = await self._store.get_credentials(username.lower())
        if credentials is None:
            raise NotFound("not_found", f"no user {username!r}")
        if credentials.deleted:
            raise _account_deleted()
        user = credentials.user
        await self._store.set_password_hash(user.user_id, await self._hasher.hash(password))
        caller = Caller(user_id=user.user_id, device_id=0)
        for device in await self._store.list_devices(user.user_id):
            await self.revoke_device(caller, device.device_id)
        return user

    async def change_password(
        self, caller: Caller, current_password: str, new_password: str, *, address: str = ""
    ) -> None:
        """The caller's own change (`POST /me/password`): the current password must match,
        and every other device of the user is revoked (its sockets close with 4401 on every
        node); the calling device stays signed in.

        The current password is checked as a login is, under the same failure limits, so
        a stolen token cannot be used to guess the password faster than logins could.
        """
        rules.check_password(new_password)
        await self.check_own_password(caller, current_password, address=address)
        await self._store.set_password_hash(caller.user_id, await self._hasher.hash(new_password))
        log.info("password_changed", user_id=caller.user_id)
        await self.revoke_other_devices(caller)

    async def check_own_password(self, caller: Caller, password: str, *, address: str) -> User:
        """The caller's user when `password` is theirs; 401 `invalid_credentials` otherwise,
        counted by the failed-login limits of the user's name (429 once they are spent)."""
        user = await self.get_user(caller.user_id)
        attempt = await self._limits.begin_login(user.username, address)
        async with attempt:
            credentials = await self._store.get_credentials(user.username)
            stored_hash = credentials.password_hash if credentials else None
            if not await self._hasher.verify(stored_hash, password):
                log.info("password_check_refused", user_id=caller.user_id)
                await attempt.failed()
                raise Unauthorized("invalid_credentials", "the current password is wrong")
        return user

    async def revoke_other_devices(self, caller: Caller) -> None:
        """Revoke every device of the caller's user but the calling one, on every node."""
        for device in await self._store.list_devices(caller.user_id):
            if device.device_id != caller.device_id:
                await self._revoke(caller.user_id, device.device_id)

    async def revoke_every_device(self, user_id: int) -> None:
        """Revoke every device of the user, on every node."""
        for device in await self._store.list_devices(user_id):
            await self._revoke(user_id, device.device_id)

    async def mark_deleted(self, user_id: int, *, erase_messages: bool = False) -> bool:
        """Mark the account deleted by its owner: deactivated for good, its profile emptied
        (`Deleted user`), its username kept; logins from now on are 401 as for an unknown
        name. The deletion stays unfinished (`unfinished_deletions`) until
        `deletion_finished`. False when it was marked already."""
        marked = await self._store.delete_user(
            user_id,
            at=self._clock.now_ms(),
            display_name=DELETED_DISPLAY_NAME,
            erase_messages=erase_messages,
        )
        if marked:
            log.info("account_deleted", user_id=user_id)
        elif erase_messages:
            # Deleted already, by a request that may have kept the messages.
            await self._store.erase_on_deletion(user_id)
        return marked

    async def unfinished_deletions(self) -> list[tuple[int, bool]]:
        """Deleted accounts whose deletion's work is not known to be done (a server stopped
        in the middle), by user id, each with whether its messages are to be erased."""
        return await self._store.unfinished_deletions()

    async def deletion_finished(self, user_id: int, *, erase_messages: bool) -> None:
        await self._store.deletion_finished(user_id, erase_messages=erase_messages)

    # -- roles: read from the store on every check, so a change counts at once everywhere --

    async def set_role(self, username: str, role: Role) -> User:
        """Make the user an admin or a member again (an operator's command)."""
        credentials = await self._store.get_credentials(username.lower())
        if credentials is not None and credentials.deleted:
            raise _account_deleted()
        user = credentials.user if credentials else None
        if user is not None:
            user = await self._store.set_role(user.user_id, role)
        if user is None:
            raise NotFound("not_found", f"no user {username!r}")
        log.info("role_set", user_id=user.user_id, role=role)
        return user

    # -- deactivation: an operator's decision, on every device at once --

    async def deactivate(self, user_id: int, reason: str | None = None) -> tuple[User, bool]:
        """Refuse the user's logins and revoke every device; the user, and whether this
        changed anything (deactivating again keeps the first reason).

        The mark is written before the devices are read, so a login racing with it
        either sees the mark or has made a device that is revoked here.
        """
        user = await self.get_user(user_id)
        changed = await self._store.deactivate_user(user_id, at=self._clock.now_ms(), reason=reason)
        for device in await self._store.list_devices(user_id):
            await self._revoke(user_id, device.device_id)
        if changed:
            log.info("user_deactivated", user_id=user_id)
        return user, changed

    async def reactivate(self, user_id: int) -> tuple[User, bool]:
        """Allow the user's logins again; revoked devices stay revoked (they log in anew).

        An account its owner deleted is refused with 409 `account_deleted`: the owner asked
        for it to be gone, and its profile is emptied already.
        """
        user = await self.get_user(user_id)
        credentials = await self._store.get_credentials(user.username)
        if credentials is not None and credentials.deleted:
            raise _account_deleted()
        changed = await self._store.reactivate_user(user_id)
        if changed:
            log.info("user_reactivated", user_id=user_id)
        return user, changed

    async def user_named(self, username: str) -> User:
        credentials = await self._store.get_credentials(username.lower())
        if credentials is None:
            raise NotFound("not_found", f"no user {username!r}")
        return credentials.user

    async def list_accounts(self, username_prefix: str, *, after: int, limit: int) -> list[Account]:
        """Accounts as operators see them, by user id above `after`."""
        return await self._store.list_accounts(username_prefix.lower(), after=after, limit=limit)

    async def _refuse_if_deactivated_meanwhile(self, username: str, device: Device) -> None:
        """A deactivation between the password check and the new device revoked the devices
        it found, not this one: look again, and take the device back if so."""
        again = await self._store.get_credentials(username)
        if again is None or again.deactivated or again.deleted:
            await self._store.revoke_device(
                device.user_id, device.device_id, revoked_at=self._clock.now_ms()
            )
            if again is None or again.deleted:
                # A deleted account answers as an unknown name does: it says nothing.
                raise Unauthorized("invalid_credentials", "wrong username or password")
            raise _deactivated()

    async def require_admin(self, caller: Caller) -> User:
        """The caller's user when it is an admin now; Forbidden otherwise."""
        user = await self._store.get_user(caller.user_id)
        if user is None or not user.is_admin:
            raise Forbidden("forbidden", "only a server admin may do this")
        return user

    # -- push targets: where a device's notifications go (notify checks their shape) --

    async def set_push_target(
        self, caller: Caller, device_id: int, provider: str, target: JsonValue
    ) -> None:
        stored = await self._push_targets.set_target(
            user_id=caller.user_id,
            device_id=device_id,
            provider=provider,
            target=target,
            updated_at=self._clock.now_ms(),
        )
        if not stored:
            raise NotFound("not_found", f"no device {device_id}")
        log.info("push_target_set", device_id=device_id, provider=provider)

    async def remove_push_target(self, caller: Caller, device_id: int) -> None:
        devices = await self._store.list_devices(caller.user_id)
        if all(device.device_id != device_id for device in devices):
            raise NotFound("not_found", f"no device {device_id}")
        await self._push_targets.remove_target(device_id)

    async def push_targets_of(self, user_ids: Iterable[int]) -> list[PushTarget]:
        """The push targets of these users' live devices."""
        return await self._push_targets.targets_of(user_ids)

    async def forget_push_target(self, device_id: int) -> None:
        """Drop a target its provider said is gone for good (an expired subscription)."""
        await self._push_targets.remove_target(device_id)


def _unless_deleted(credentials: Credentials | None) -> Credentials | None:
    """A deleted account logs in as no account at all: the right password is refused with
    the same 401 as a wrong one, after the same hashing."""
    return None if credentials is not None and credentials.deleted else credentials


def _account_deleted() -> Conflict:
    return Conflict("account_deleted", "the owner deleted this account; it cannot come back")


def _deactivated() -> Forbidden:
    return Forbidden("deactivated", "this account is deactivated")

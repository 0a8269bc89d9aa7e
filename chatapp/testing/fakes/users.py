"""A `UserStore` in memory, with the SQLite store's unique names and revocable devices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chatapp.accounts.models import Account, Credentials, Device, GroupAdds, Role, User
from chatapp.accounts.store import UsernameTaken, UserStoreError
from chatapp.testing.fakes.failures import CanFail


@dataclass(slots=True)
class _DeviceRecord:
    device: Device
    token_hash: str
    revoked_at: int | None = None


class FakeUserStore(CanFail):
    """`UserStore` in dicts: what `SqliteUserStore` does, without the database.

    User and device ids count from 1, in the order created. A username is
    unique (`UsernameTaken`), a token hash too (`UserStoreError`, as SQLite's
    UNIQUE constraint would give), and a device needs an existing user. A
    revoked device stays in the table but is never found by its token or
    listed again. `failing`/`fail_next` (see `CanFail`) raise `UserStoreError`.
    """

    error = UserStoreError

    def __init__(self) -> None:
        super().__init__()
        self._users: dict[int, User] = {}
        self._password_hashes: dict[int, str] = {}
        self._devices: dict[int, _DeviceRecord] = {}
        self._deactivations: dict[int, tuple[int, str | None]] = {}
        self._deletions: dict[int, int] = {}
        self._unfinished: dict[int, bool] = {}
        """Deleted users whose deletion is not finished, with whether it erases their messages."""

    # -- users -------------------------------------------------------------------

    async def create_user(
        self,
        *,
        username: str,
        display_name: str,
        password_hash: str,
        created_at: int,
        role: Role = "member",
    ) -> User:
        self._fail_if_told("create_user")
        if any(user.username == username for user in self._users.values()):
            raise UsernameTaken(username)
        user = User(
            user_id=len(self._users) + 1,
            username=username,
            display_name=display_name,
            about="",
            created_at=created_at,
            role=role,
        )
        self._users[user.user_id] = user
        self._password_hashes[user.user_id] = password_hash
        return user

    async def get_user(self, user_id: int) -> User | None:
        self._fail_if_told("get_user")
        return self._users.get(user_id)

    async def existing_user_ids(self, user_ids: Iterable[int]) -> set[int]:
        self._fail_if_told("existing_user_ids")
        return {i for i in user_ids if i in self._users and i not in self._deletions}

    async def get_users(self, user_ids: Iterable[int]) -> list[User]:
        self._fail_if_told("get_users")
        return [self._users[i] for i in dict.fromkeys(user_ids) if i in self._users]

    async def get_credentials(self, username: str) -> Credentials | None:
        self._fail_if_told("get_credentials")
        for user in self._users.values():
            if user.username == username:
                return Credentials(
                    user=user,
                    password_hash=self._password_hashes[user.user_id],
                    deactivated=user.user_id in self._deactivations,
                    deleted=user.user_id in self._deletions,
                )
        return None

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self._fail_if_told("set_password_hash")
        if user_id in self._users:
            self._password_hashes[user_id] = password_hash

    async def update_profile(
        self,
        user_id: int,
        *,
        display_name: str | None,
        about: str | None,
        share_read_receipts: bool | None = None,
        group_adds: GroupAdds | None = None,
    ) -> User | None:
        self._fail_if_told("update_profile")
        user = self._users.get(user_id)
        if user is None:
            return None
        changes = {
            "display_name": display_name,
            "about": about,
            "share_read_receipts": share_read_receipts,
            "group_adds": group_adds,
        }
        updated = user.model_copy(update={k: v for k, v in changes.items() if v is not None})
        self._users[user_id] = updated
        return updated

    async def receipt_sharers(self, user_ids: Iterable[int]) -> set[int]:
        self._fail_if_told("receipt_sharers")
        return {
            user_id
            for user_id in user_ids
            if user_id in self._users and self._users[user_id].share_read_receipts
        }

    async def only_friends_add(self, user_ids: Iterable[int]) -> set[int]:
        self._fail_if_told("only_friends_add")
        return {
            user_id
            for user_id in user_ids
            if user_id in self._users and self._users[user_id].group_adds == "friends"
        }

    async def set_role(self, user_id: int, role: Role) -> User | None:
        self._fail_if_told("set_role")
        user = self._users.get(user_id)
        if user is None:
            return None
        self._users[user_id] = user.model_copy(update={"role": role})
        return self._users[user_id]

    async def find_users(self, username_prefix: str, *, limit: int) -> list[User]:
        self._fail_if_told("find_users")
        # SQLite's LIKE ignores ASCII case, and usernames are ASCII.
        prefix = username_prefix.lower()
        found = sorted(
            (
                user
                for user in self._users.values()
                if user.username.lower().startswith(prefix) and user.user_id not in self._deletions
            ),
            key=lambda user: (user.username != username_prefix, user.username),
        )
        # SQLite reads a negative LIMIT as no limit at all.
        return found if limit < 0 else found[:limit]

    async def deactivate_user(self, user_id: int, *, at: int, reason: str | None) -> bool:
        self._fail_if_told("deactivate_user")
        if user_id not in self._users or user_id in self._deactivations:
            return False
        self._deactivations[user_id] = (at, reason)
        return True

    async def reactivate_user(self, user_id: int) -> bool:
        self._fail_if_told("reactivate_user")
        if user_id in self._deletions:
            return False
        return self._deactivations.pop(user_id, None) is not None

    async def delete_user(
        self, user_id: int, *, at: int, display_name: str, erase_messages: bool
    ) -> bool:
        self._fail_if_told("delete_user")
        user = self._users.get(user_id)
        if user is None or user_id in self._deletions:
            return False
        self._deletions[user_id] = at
        self._unfinished[user_id] = erase_messages
        self._deactivations.setdefault(user_id, (at, None))
        self._users[user_id] = user.model_copy(
            update={"display_name": display_name, "about": "", "role": "member"}
        )
        return True

    async def unfinished_deletions(self) -> list[tuple[int, bool]]:
        self._fail_if_told("unfinished_deletions")
        return sorted(item for item in self._unfinished.items() if item[0] in self._deletions)

    async def erase_on_deletion(self, user_id: int) -> None:
        self._fail_if_told("erase_on_deletion")
        if user_id in self._deletions:
            self._unfinished[user_id] = True

    async def deletion_finished(self, user_id: int, *, erase_messages: bool) -> None:
        self._fail_if_told("deletion_finished")
        if self._unfinished.get(user_id) == erase_messages:
            del self._unfinished[user_id]

    async def list_accounts(self, username_prefix: str, *, after: int, limit: int) -> list[Account]:
        self._fail_if_told("list_accounts")
        prefix = username_prefix.lower()
        found = [
            self._account(user)
            for user_id, user in sorted(self._users.items())
            if user_id > after and user.username.lower().startswith(prefix)
        ]
        return found[:limit]

    def _account(self, user: User) -> Account:
        at, reason = self._deactivations.get(user.user_id, (None, None))
        seen = [
            record.device.last_seen_at
            for record in self._devices.values()
            if record.device.user_id == user.user_id
        ]
        return Account(
            user=user,
            deactivated_at=at,
            deactivation_reason=reason,
            deleted_at=self._deletions.get(user.user_id),
            last_seen_at=max(seen, default=None),
        )

    # -- devices -----------------------------------------------------------------

    async def create_device(
        self, *, user_id: int, name: str, token_hash: str, created_at: int
    ) -> Device:
        self._fail_if_told("create_device")
        if user_id not in self._users:
            raise UserStoreError(f"IntegrityError: no user {user_id} for a device")
        if any(record.token_hash == token_hash for record in self._devices.values()):
            raise UserStoreError("IntegrityError: UNIQUE constraint failed: devices.token_hash")
        device = Device(
            device_id=len(self._devices) + 1,
            user_id=user_id,
            name=name,
            created_at=created_at,
            last_seen_at=created_at,
        )
        self._devices[device.device_id] = _DeviceRecord(device, token_hash)
        return device

    async def device_for_token(self, token_hash: str) -> Device | None:
        self._fail_if_told("device_for_token")
        for record in self._devices.values():
            if record.token_hash == token_hash and record.revoked_at is None:
                return record.device
        return None

    async def list_devices(self, user_id: int) -> list[Device]:
        self._fail_if_told("list_devices")
        return [
            record.device
            for record in self._devices.values()
            if record.device.user_id == user_id and record.revoked_at is None
        ]

    async def revoke_device(self, user_id: int, device_id: int, *, revoked_at: int) -> bool:
        self._fail_if_told("revoke_device")
        if not self.is_live_device(user_id, device_id):
            return False
        self._devices[device_id].revoked_at = revoked_at
        return True

    async def touch_device(self, device_id: int, *, seen_at: int) -> None:
        self._fail_if_told("touch_device")
        record = self._devices.get(device_id)
        if record is not None:
            record.device = record.device.model_copy(update={"last_seen_at": seen_at})

    # -- for other fakes and for tests -------------------------------------------

    def is_live_device(self, user_id: int, device_id: int) -> bool:
        """True when `device_id` is this user's and not revoked (never fails)."""
        record = self._devices.get(device_id)
        return record is not None and record.device.user_id == user_id and record.revoked_at is None

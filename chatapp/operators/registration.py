"""Who may sign up over HTTP: the `registration` setting, and invite codes."""

from __future__ import annotations

from chatapp.accounts import Accounts, User
from chatapp.errors import Forbidden
from chatapp.operators.invites import Invites, invite_required
from chatapp.operators.models import RegistrationPolicy


class Registration:
    """Signups as the setting allows them. The CLI's `create-user` does not come here."""

    def __init__(self, policy: RegistrationPolicy, accounts: Accounts, invites: Invites) -> None:
        self.policy = policy
        self._accounts = accounts
        self._invites = invites

    async def signup(
        self,
        username: str,
        password: str,
        display_name: str | None = None,
        *,
        invite_code: str | None = None,
        address: str = "",
    ) -> User:
        """A new member; `registration_closed` or `invite_required` (403) when not allowed.

        With `open`, an invite code is ignored (and not spent). With `invite`,
        the code's use is taken before the account is made and given back if
        the signup then fails (a taken name, a weak password), so that of two
        signups racing for a code's last use exactly one gets it.
        """
        if self.policy == "closed":
            raise Forbidden("registration_closed", "this server does not take signups")
        if self.policy == "open":
            return await self._signup(username, password, display_name, address)
        if not invite_code:
            raise invite_required()
        await self._invites.claim(invite_code)
        try:
            return await self._signup(username, password, display_name, address)
        except BaseException:
            await self._invites.release(invite_code)
            raise

    async def _signup(
        self, username: str, password: str, display_name: str | None, address: str
    ) -> User:
        return await self._accounts.signup(username, password, display_name, address=address)

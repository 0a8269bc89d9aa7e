"""`DELETE /me`: an account deleted by its owner, its messages too if they ask."""

from __future__ import annotations

import asyncio
from typing import Final

import structlog

from chatapp.accounts import Accounts, Caller
from chatapp.messaging import Messaging
from chatapp.social import Friends, Social

log = structlog.get_logger(__name__)

ERASE_PAGE: Final = 1000
"""Inbox entries read per page while looking for the user's own messages."""
ERASE_BATCH: Final = 64
"""Deletions queued together: the message store commits them in one group, and the event
loop gets a turn between batches."""


class AccountDeletion:
    """Deletes the caller's account, in an order that a crash cannot leave half done for
    good:

    1. the password is checked (401 `invalid_credentials`, counted as a failed login);
    2. the account is marked deleted in one write (logins refused from then on, the
       profile emptied) and every device is revoked, the calling one included, so
       nothing acts for the user meanwhile: no message is sent after the erase has
       looked, no profile is written back, no group is joined after it is left;
    3. with `erase_messages`, every message the user sent is deleted as `DELETE
       /channels/{id}/messages/{id}` deletes it (an `update` entry for every member);
    4. the user leaves every group and ends every friendship and pending request.

    Steps 3 and 4 run within the request, before the 204, and the deletion is then
    marked finished. Until then it is unfinished (the mark of step 2 says so, with
    whether to erase): a server stopped in the middle does steps 2 to 4 again when it
    next starts (`finish_unfinished`), each of which finds done what was done.
    """

    def __init__(
        self, accounts: Accounts, social: Social, friends: Friends, messaging: Messaging
    ) -> None:
        self._accounts = accounts
        self._social = social
        self._friends = friends
        self._messaging = messaging
        self._finishing: set[int] = set()
        """Users whose deletion this process is finishing now."""

    async def delete(
        self, caller: Caller, password: str, *, erase_messages: bool, address: str = ""
    ) -> None:
        user_id = caller.user_id
        await self._accounts.check_own_password(caller, password, address=address)
        await self._accounts.mark_deleted(user_id, erase_messages=erase_messages)
        await self._finish(user_id, erase_messages=erase_messages)

    async def finish_unfinished(self) -> int:
        """Finish every deletion left unfinished, but those this process is doing now (a
        stopped server, a request that failed half-way); how many it finished.

        Run in the background, at start-up and then now and again. In a cluster several
        nodes may run the same one at once; each step is safe to repeat, and to race. One
        that fails is logged and left for the next time; the others go on.
        """
        finished = 0
        for user_id, erase_messages in await self._accounts.unfinished_deletions():
            if user_id in self._finishing:
                continue
            try:
                await self._finish(user_id, erase_messages=erase_messages)
            except Exception:
                log.exception("account_deletion_not_finished", user_id=user_id)
                continue
            log.info("account_deletion_finished", user_id=user_id)
            finished += 1
        return finished

    async def _finish(self, user_id: int, *, erase_messages: bool) -> None:
        """Steps 2 (the devices) to 4, then the deletion marked finished."""
        self._finishing.add(user_id)
        try:
            await self._finish_steps(user_id, erase_messages=erase_messages)
        finally:
            self._finishing.discard(user_id)

    async def _finish_steps(self, user_id: int, *, erase_messages: bool) -> None:
        await self._accounts.revoke_every_device(user_id)
        erased = await self.erase_messages(user_id) if erase_messages else 0
        groups = await self._social.leave_every_group(user_id)
        friendships = await self._friends.end_every(user_id)
        await self._accounts.deletion_finished(user_id, erase_messages=erase_messages)
        log.info(
            "account_closed",
            user_id=user_id,
            erased=erased,
            groups_left=groups,
            friendships_ended=friendships,
        )

    async def erase_messages(self, user_id: int) -> int:
        """Delete every message the user sent; how many this deleted.

        A sender gets an inbox entry for each of their own sends, so the user's inbox
        names every one, in channels they have left too. It is read page by page up to
        where it ended when the erase began (the deletions append their own `update`
        entries after it), so memory holds one page whatever the history's size.
        """
        end = await self._messaging.max_seq(user_id)
        since, erased = 0, 0
        while since < end:
            page = await self._messaging.inbox(user_id, since=since, limit=ERASE_PAGE)
            if not page.entries:
                break
            own = [
                entry.message
                for entry in page.entries
                if entry.seq <= end
                and entry.update is None
                and entry.message.sender_id == user_id
                and not entry.message.deleted
            ]
            for first in range(0, len(own), ERASE_BATCH):
                batch = own[first : first + ERASE_BATCH]
                done = await asyncio.gather(
                    *(
                        self._messaging.erase_sent(user_id, m.channel_id, m.message_id)
                        for m in batch
                    )
                )
                erased += sum(done)
            since = page.entries[-1].seq
            if not page.has_more:
                break
        return erased

"""HTTP bodies of a person's own account as a whole (protocol-additions.md §7)."""

from __future__ import annotations

from pydantic import Field

from chatapp.protocol.http import Request


class PasswordChangeRequest(Request):
    current_password: str = Field(
        description="the password now; a wrong one is 401 `invalid_credentials`, counted as"
        " a failed login of the user's name (429 once those are spent)"
    )
    new_password: str = Field(
        description="8 to 1,024 characters, as at signup (422 `weak_password` otherwise)"
    )


class AccountDeletionRequest(Request):
    password: str = Field(description="the account's password; 401 `invalid_credentials`")
    erase_messages: bool = Field(
        default=False,
        description="true deletes every message the account sent, as DELETE"
        " /channels/{id}/messages/{message_id} does (every member gets an `update`), before"
        " the answer; false leaves them, shown as sent by `Deleted user`",
    )

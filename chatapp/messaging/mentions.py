"""Finding the members a text names as `@username`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

# Username characters, as `chatapp.accounts.rules` allows them (matched without
# regard to case). The look-behind keeps "a@b" from naming anyone.
_MENTION: Final = re.compile(r"(?<![A-Za-z0-9_.\-])@([A-Za-z0-9_.\-]+)")


def mentioned_names(text: str) -> list[str]:
    """The lower-cased names after each `@`, trailing '.', '-' and '_' dropped, in order."""
    if "@" not in text:
        return []
    names = (match.group(1).rstrip("._-").lower() for match in _MENTION.finditer(text))
    return [name for name in names if name]


def find_mentions(text: str, members: Mapping[str, int], *, sender_id: int) -> list[int]:
    """The ids of the members `text` names, each once, in order of first appearance.

    `members` maps each member's username to their id. The sender naming
    themself is not a mention.
    """
    found: dict[int, None] = {}
    for name in mentioned_names(text):
        user_id = members.get(name)
        if user_id is not None and user_id != sender_id:
            found[user_id] = None
    return list(found)

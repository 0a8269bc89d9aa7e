"""The accounts and channels of scenario F's large data folder (its messages come after)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.loadgen.backend import Target, backend_for


@dataclass
class Params:
    users: int = 100


async def run(target: Target, params: Params) -> dict[str, Any]:
    """Users in pairs with a direct channel each; the channels and their members."""
    backend = backend_for(target)
    try:
        accounts = await backend.accounts(params.users - params.users % 2, "cold")
        channels = []
        for index in range(0, len(accounts), 2):
            first, second = accounts[index], accounts[index + 1]
            channel_id = await backend.direct(first, second)
            channels.append({"channel_id": channel_id, "members": [first.user_id, second.user_id]})
    finally:
        await backend.close()
    return {"users": len(accounts), "channels": channels}

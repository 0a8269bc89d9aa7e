"""HTTP routes of blocks: the users the caller blocks."""

from __future__ import annotations

from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.endpoint import Endpoint, json_answer, no_content
from chatapp.protocol.http import BlocksAnswer

PREFIX = "/api/v1"


async def list_blocks(call: Call) -> web.Response:
    blocked = await call.services.blocks.blocked_by(call.caller.user_id)
    return json_answer(BlocksAnswer(users=await call.services.accounts.get_users(blocked)))


async def block_user(call: Call) -> web.Response:
    await call.services.blocks.block(call.caller.user_id, call.path_id("user_id"))
    return no_content()


async def unblock_user(call: Call) -> web.Response:
    await call.services.blocks.unblock(call.caller.user_id, call.path_id("user_id"))
    return no_content()


ENDPOINTS = [
    Endpoint("GET", f"{PREFIX}/me/blocks", list_blocks, "The users the caller blocks",
             {200: BlocksAnswer}, tag="me"),
    Endpoint("PUT", f"{PREFIX}/me/blocks/{{user_id}}", block_user,
             "Block a user (ends a friendship or request with them)", {204: None},
             errors=(404,), tag="me"),
    Endpoint("DELETE", f"{PREFIX}/me/blocks/{{user_id}}", unblock_user, "Unblock a user",
             {204: None}, errors=(404,), tag="me"),
]  # fmt: skip

"""HTTP routes of read receipts: how far the members of a channel have read."""

from __future__ import annotations

from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.endpoint import Endpoint, json_answer
from chatapp.protocol.http import ReceiptOut, ReceiptsAnswer

PREFIX = "/api/v1"


async def list_receipts(call: Call) -> web.Response:
    receipts = await call.services.social.receipts(call.caller.user_id, call.path_id("id"))
    return json_answer(
        ReceiptsAnswer(
            receipts=[
                ReceiptOut(user_id=receipt.user_id, read_message_id=receipt.read_message_id)
                for receipt in receipts
            ]
        )
    )


ENDPOINTS = [
    Endpoint("GET", f"{PREFIX}/channels/{{id}}/receipts", list_receipts,
             "How far the members who share read receipts have read",
             {200: ReceiptsAnswer}, errors=(403, 404), tag="messages"),
]  # fmt: skip

"""HTTP route of message search."""

from __future__ import annotations

from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.channel_routes import PREFIX, message_out
from chatapp.api.endpoint import Endpoint, json_answer
from chatapp.protocol.http import SearchAnswer, SearchQuery, SearchResult


async def search_messages(call: Call) -> web.Response:
    query = call.query(SearchQuery)
    page = await call.services.search.search(
        call.caller.user_id,
        query.q,
        channel_id=query.channel_id,
        before=query.before,
        limit=query.limit,
    )
    return json_answer(
        SearchAnswer(
            results=[SearchResult(message=message_out(message)) for message in page.results],
            has_more=page.has_more,
            next_before=page.next_before,
        )
    )


ENDPOINTS = [
    Endpoint("GET", f"{PREFIX}/search", search_messages,
             "Search the messages of the caller's channels, newest first (added to version 1)",
             {200: SearchAnswer}, query=SearchQuery, errors=(403, 404, 422, 503),
             tag="messages"),
]  # fmt: skip

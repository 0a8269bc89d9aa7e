"""`GET /me/export`: the caller's own data, streamed as JSON lines (see `own_account.export`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import structlog
from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.endpoint import Endpoint
from chatapp.errors import Refused, StoreFailed

log = structlog.get_logger(__name__)

PREFIX = "/api/v1"
MEDIA_TYPE: Final = "application/x-ndjson"
FLUSH_BYTES: Final = 64 * 1024
"""Lines gathered before a write: few writes, and the body never held whole."""


async def export_me(call: Call) -> web.StreamResponse:
    """Written as the lines are made: the first is read before the answer starts, so that a
    store failure before any byte is sent is still a 503 in the error envelope. A failure
    after that ends the body early (the client sees a truncated stream, never a 200 that
    looks complete: the last line is `{"type":"end",...}`)."""
    lines = call.services.own_export.lines(call.caller)
    first = await anext(lines)
    response = web.StreamResponse(headers={"Content-Type": MEDIA_TYPE, "Cache-Control": "no-store"})
    response.enable_chunked_encoding()
    await response.prepare(call.request)
    try:
        await _stream(response, first, lines)
    except (ConnectionError, StoreFailed, Refused) as failure:
        # The headers are out: no error answer can follow. Cut the connection, so the
        # body ends without its last chunk and no client takes it for complete.
        log.warning("export_cut_short", user_id=call.caller.user_id, error=str(failure))
        if call.request.transport is not None:
            call.request.transport.close()
        return response
    await response.write_eof()
    return response


async def _stream(response: web.StreamResponse, first: str, lines: AsyncIterator[str]) -> None:
    pending, size = [first], len(first)
    async for line in lines:
        pending.append(line)
        size += len(line)
        if size >= FLUSH_BYTES:
            await response.write("".join(pending).encode())
            pending, size = [], 0
    if pending:
        await response.write("".join(pending).encode())


ENDPOINTS = [
    Endpoint("GET", f"{PREFIX}/me/export", export_me,
             "The caller's own data as JSON lines (profile, devices, friends, channels, inbox)",
             {200: None}, errors=(503,), tag="me", streamed=MEDIA_TYPE),
]  # fmt: skip

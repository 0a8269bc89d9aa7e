"""HTTP routes of the admin API, under `/api/v1/admin`: only a server admin may call them.

Every route here is declared with `admin_endpoint`, which puts the handler
behind the admin guard: the caller is authenticated as everywhere (401),
then must be an admin at the moment of the call (403 `forbidden`), before
its body is even read. The role is read from the user store on every call,
so `chatapp grant-admin` and `revoke-admin` count at once, on every node.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aiohttp import web
from pydantic import BaseModel

from chatapp.api.call import Call
from chatapp.api.endpoint import Endpoint, Handler, json_answer
from chatapp.protocol.admin import ClusterAnswer, NodeOut, ServerAnswer

PREFIX = "/api/v1/admin"


def admin_only(handler: Handler) -> Handler:
    """`handler` behind the admin guard: 403 `forbidden` unless the caller is an admin now."""

    @functools.wraps(handler)
    async def guarded(call: Call) -> web.StreamResponse:
        await call.services.accounts.require_admin(call.caller)
        return await handler(call)

    return guarded


def admin_endpoint(
    method: str,
    path: str,
    handler: Handler,
    summary: str,
    answers: dict[int, type[BaseModel] | None],
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    errors: Sequence[int] = (),
) -> Endpoint:
    """An endpoint of the admin API: `path` under PREFIX, guarded, its 403 documented."""
    return Endpoint(
        method,
        PREFIX + path,
        admin_only(handler),
        summary,
        answers,
        body=body,
        query=query,
        errors=tuple(sorted({403, *errors})),
        tag="admin",
    )


async def cluster_nodes(call: Call) -> web.Response:
    nodes = await call.services.nodes.live_nodes()
    return json_answer(ClusterAnswer(nodes=[NodeOut.model_validate(node) for node in nodes]))


async def server_state(call: Call) -> web.Response:
    snapshot = await call.services.server_state.snapshot()
    return json_answer(ServerAnswer.model_validate(snapshot, from_attributes=True))


ENDPOINTS = [
    admin_endpoint("GET", "/cluster", cluster_nodes, "The live nodes and their connections",
                   {200: ClusterAnswer}, errors=(503,)),
    admin_endpoint("GET", "/server", server_state,
                   "Version, uptime, connections, messages stored and disk used",
                   {200: ServerAnswer}, errors=(503,)),
]  # fmt: skip

"""Endpoints declared as data, so routing, authentication and OpenAPI share one source."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from pydantic import BaseModel

from chatapp.api.call import SERVICES, Call

Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    answers: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: Sequence[int] = field(default_factory=tuple)
    public: bool = False
    tag: str = "api"
    streamed: str | None = None
    """The media type of a success answer written as a stream (no model describes it as a
    whole), e.g. `application/x-ndjson`; None for a JSON answer."""

    def wrapped(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            services = request.app[SERVICES]
            caller = None
            if not self.public:
                caller = await services.accounts.authenticate(_bearer_token(request))
                structlog.contextvars.bind_contextvars(
                    user_id=caller.user_id, device_id=caller.device_id
                )
            return await self.handler(Call(request, services, caller))

        return handle


_ENDPOINTS: web.AppKey[list[Endpoint]] = web.AppKey("endpoints", list)


def register(app: web.Application, endpoints: Sequence[Endpoint]) -> None:
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, endpoint.wrapped())
    app.setdefault(_ENDPOINTS, []).extend(endpoints)


def registered(app: web.Application) -> list[Endpoint]:
    if _ENDPOINTS not in app:
        return []
    endpoints = app[_ENDPOINTS]
    return endpoints.copy()


def json_answer(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        body=model.model_dump_json().encode(), status=status, content_type="application/json"
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None

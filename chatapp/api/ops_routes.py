"""Routes for operators and clients that are not about one user: health, metrics, discovery."""

from __future__ import annotations

import json

from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.endpoint import Endpoint, json_answer, registered
from chatapp.api.openapi import build_openapi
from chatapp.observability.metrics import CONTENT_TYPE
from chatapp.protocol.http import DiscoveryAnswer, HealthAnswer
from chatapp.version import VERSION


class _CachedDocument:
    """Made on first request: schema generation is not worth delaying start-up for."""

    def __init__(self) -> None:
        self.body: bytes | None = None


_OPENAPI = web.AppKey("openapi_document", _CachedDocument)


async def healthz(call: Call) -> web.Response:
    return json_answer(HealthAnswer(status="ok"))


async def readyz(call: Call) -> web.Response:
    for check in call.services.readiness_checks:
        if not await check():
            return json_answer(HealthAnswer(status="unavailable"), status=503)
    return json_answer(HealthAnswer(status="ready"))


async def metrics(call: Call) -> web.Response:
    return web.Response(body=call.services.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def discovery(call: Call) -> web.Response:
    choice = await call.services.discovery.choose(call.caller.user_id)
    return json_answer(DiscoveryAnswer(ws_url=choice.ws_url, node_id=choice.node_id))


async def openapi(call: Call) -> web.Response:
    app = call.request.app
    cached = app[_OPENAPI]
    if cached.body is None:
        cached.body = json.dumps(build_openapi(registered(app), version=VERSION)).encode()
    return web.Response(body=cached.body, content_type="application/json")


def prepare(app: web.Application) -> None:
    app[_OPENAPI] = _CachedDocument()


ENDPOINTS = [
    Endpoint("GET", "/healthz", healthz, "The process lives", {200: HealthAnswer},
             public=True, tag="ops"),
    Endpoint("GET", "/readyz", readyz, "The stores are open",
             {200: HealthAnswer, 503: HealthAnswer}, public=True, tag="ops"),
    Endpoint("GET", "/metrics", metrics, "Prometheus metrics", {200: None}, public=True, tag="ops"),
    Endpoint("GET", "/api/v1/discovery", discovery, "The chat server this client should use",
             {200: DiscoveryAnswer}, tag="discovery"),
    Endpoint("GET", "/api/v1/openapi.json", openapi, "This document", {200: None},
             public=True, tag="ops"),
]  # fmt: skip

"""HTTP routes of push notifications: a device's push target, and what clients need to know."""

from __future__ import annotations

from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.endpoint import Endpoint, no_content
from chatapp.protocol.push import PushConfigAnswer, PushTargetRequest

PREFIX = "/api/v1"


async def set_push_target(call: Call) -> web.Response:
    body = await call.body(PushTargetRequest)
    await call.services.push.register(
        call.caller, call.path_id("device_id"), body.provider, body.target
    )
    return no_content()


async def remove_push_target(call: Call) -> web.Response:
    await call.services.push.unregister(call.caller, call.path_id("device_id"))
    return no_content()


async def push_config(call: Call) -> web.Response:
    # `webpush_public_key` is left out, not null, when Web Push is not enabled.
    body = call.services.push.config().model_dump_json(exclude_none=True)
    return web.Response(body=body.encode(), content_type="application/json")


ENDPOINTS = [
    Endpoint("PUT", f"{PREFIX}/me/devices/{{device_id}}/push", set_push_target,
             "Register where a device's push notifications go", {204: None},
             body=PushTargetRequest, errors=(400, 404, 422), tag="me"),
    Endpoint("DELETE", f"{PREFIX}/me/devices/{{device_id}}/push", remove_push_target,
             "Stop a device's push notifications", {204: None}, errors=(404,), tag="me"),
    Endpoint("GET", f"{PREFIX}/push/config", push_config,
             "The push providers enabled, and the Web Push public key", {200: PushConfigAnswer},
             tag="push"),
]  # fmt: skip

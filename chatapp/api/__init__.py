"""The HTTP API: parse, authorise, call one module, shape the answer."""

from __future__ import annotations

from aiohttp import web

from chatapp.api import (
    accounts_routes,
    admin_routes,
    block_routes,
    channel_routes,
    export_routes,
    friends_routes,
    message_routes,
    operator_routes,
    ops_routes,
    push_routes,
    receipt_routes,
    search_routes,
)
from chatapp.api.call import SERVICES, Call
from chatapp.api.endpoint import Endpoint, register
from chatapp.api.middleware import envelope_errors, observe_requests

MIDDLEWARES = [observe_requests, envelope_errors]


def add_routes(app: web.Application) -> None:
    register(app, accounts_routes.ENDPOINTS)
    register(app, export_routes.ENDPOINTS)
    register(app, channel_routes.ENDPOINTS)
    register(app, message_routes.ENDPOINTS)
    register(app, receipt_routes.ENDPOINTS)
    register(app, search_routes.ENDPOINTS)
    register(app, friends_routes.ENDPOINTS)
    register(app, block_routes.ENDPOINTS)
    register(app, push_routes.ENDPOINTS)
    register(app, ops_routes.ENDPOINTS)
    register(app, admin_routes.ENDPOINTS)
    register(app, operator_routes.ENDPOINTS)
    ops_routes.prepare(app)


__all__ = ["MIDDLEWARES", "SERVICES", "Call", "Endpoint", "add_routes", "register"]

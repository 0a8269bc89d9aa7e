"""Every request: one log line, metrics, and the protocol's error envelope for every failure."""

from __future__ import annotations

import math
import time
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from chatapp.api.call import SERVICES
from chatapp.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Refused,
    StoreFailed,
    Unauthorized,
    Unavailable,
)
from chatapp.protocol.http import ErrorBody, ErrorDetail

log = structlog.get_logger("chatapp.api")

_STATUS_OF: dict[type[Refused], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    RateLimited: 429,
    Unavailable: 503,
}

_CODE_OF_HTTP_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "bad_request",
}


def error_response(status: int, code: str, message: str) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return web.Response(
        body=body.model_dump_json().encode(), status=status, content_type="application/json"
    )


def refusal_response(refusal: Refused) -> web.Response:
    status = next((status for kind, status in _STATUS_OF.items() if isinstance(refusal, kind)), 400)
    response = error_response(status, refusal.code, refusal.message)
    if isinstance(refusal, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after)))
    return response


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log each request once and count it, whatever the outcome."""
    structlog.contextvars.clear_contextvars()
    request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    metrics = request.app[SERVICES].metrics
    route = _route_template(request)
    in_flight = metrics.open_connections.labels(kind="http")
    in_flight.inc()
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = request_id
        return response
    finally:
        in_flight.dec()
        elapsed = time.perf_counter() - started
        metrics.http_requests.labels(route=route, method=request.method, status=str(status)).inc()
        metrics.http_latency.labels(route=route).observe(elapsed)
        log.info(
            "request",
            method=request.method,
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 3),
        )


@web.middleware
async def envelope_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into `{"error": {"code", "message"}}`; a 500 is logged as a bug."""
    try:
        return await handler(request)
    except Refused as refusal:
        if isinstance(refusal, RateLimited):
            request.app[SERVICES].metrics.rate_limited.labels(limit=_route_template(request)).inc()
        return refusal_response(refusal)
    except StoreFailed:
        # Disk full, a read-only folder, a locked database: the request did
        # not happen, and saying so is not a bug.
        log.exception("store_failed")
        return error_response(503, "store_unavailable", "storage is unavailable; try again later")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODE_OF_HTTP_STATUS.get(exc.status, "bad_request")
        response = error_response(exc.status, code, exc.reason)
        if allowed := exc.headers.get("Allow"):
            response.headers["Allow"] = allowed
        return response
    except Exception:
        log.exception("unhandled_error")
        return error_response(500, "internal_error", "the server failed; this is a bug")


def _route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"

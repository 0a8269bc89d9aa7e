"""What every HTTP caller can rely on: the error envelope, health, metrics, OpenAPI, logs."""

from __future__ import annotations

import io
import json

import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from chatapp.testing import RunningServer


def assert_error(status: int, body: str, expected_status: int, code: str) -> str:
    assert status == expected_status, body
    document = json.loads(body)
    assert set(document) == {"error"}
    assert document["error"]["code"] == code
    message: str = document["error"]["message"]
    assert message
    return message


async def test_unknown_route_and_wrong_method_use_the_envelope(chat_server: RunningServer) -> None:
    """An unknown path is 404 not_found and a wrong method 405 method_not_allowed, as JSON."""
    client = chat_server.client()
    answer = await client.raw_request("GET", "/api/v1/nothing-here")
    assert_error(answer.status, answer.text, 404, "not_found")
    answer = await client.raw_request("DELETE", "/api/v1/auth/signup")
    assert_error(answer.status, answer.text, 405, "method_not_allowed")
    assert "POST" in answer.headers["Allow"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "JSON"),
        (b"\xff\xfe", "JSON"),
        (b"[1, 2]", "object"),
        (b"", "object"),
        (b'{"password": "password1"}', "username"),
        (b'{"username": 42, "password": "password1"}', "username"),
        (b'{"username": "zed", "password": ["password1"]}', "password"),
        (b'{"username": "zed", "password": "password1", "display_name": 7}', "display_name"),
    ],
)
async def test_malformed_bodies_are_bad_requests_naming_the_field(
    chat_server: RunningServer, body: bytes, field: str
) -> None:
    """Not JSON, not an object, a missing or mistyped field: 400 bad_request naming the problem."""
    answer = await chat_server.client().raw_request(
        "POST", "/api/v1/auth/signup", data=body, headers={"Content-Type": "application/json"}
    )
    message = assert_error(answer.status, answer.text, 400, "bad_request")
    assert field in message


async def test_oversized_body_is_refused_cleanly(chat_server: RunningServer) -> None:
    """A body over the 2 MiB limit gets 413 in the envelope, not a crash or a 500."""
    answer = await chat_server.client().raw_request(
        "POST", "/api/v1/auth/signup", data=io.BytesIO(b"x" * (3 * 1024 * 1024))
    )
    assert_error(answer.status, answer.text, 413, "too_large")


@pytest.mark.parametrize("user_id", ["abc", "0", "-1", "9007199254740992", "1" * 40, "1.5"])
async def test_bad_ids_in_paths_are_not_found(chat_server: RunningServer, user_id: str) -> None:
    """A path id that is not a positive integer below 2^53 is 404 not_found, never a 500."""
    client = await chat_server.user()
    answer = await client.raw_request("GET", f"/api/v1/users/{user_id}")
    assert_error(answer.status, answer.text, 404, "not_found")


async def test_user_search_without_a_query_is_a_bad_request(chat_server: RunningServer) -> None:
    """GET /users without ?username= names the missing parameter."""
    client = await chat_server.user()
    answer = await client.raw_request("GET", "/api/v1/users")
    assert "username" in assert_error(answer.status, answer.text, 400, "bad_request")


async def test_health_and_readiness(chat_server: RunningServer) -> None:
    """/healthz says the process lives; /readyz that its stores answer."""
    client = chat_server.client()
    assert (await client.raw_request("GET", "/healthz")).json() == {"status": "ok"}
    ready = await client.raw_request("GET", "/readyz")
    assert (ready.status, ready.json()) == (200, {"status": "ready"})


async def test_metrics_count_requests_by_route_and_status(chat_server: RunningServer) -> None:
    """/metrics is Prometheus text with requests by route template and status, and latency."""
    client = await chat_server.user()
    await client.raw_request("GET", f"/api/v1/users/{client.user_id}")
    await client.raw_request("GET", "/api/v1/users/999999")
    metrics = (await client.raw_request("GET", "/metrics")).text
    assert (
        'chatapp_http_requests_total{method="GET",route="/api/v1/users/{user_id}",status="200"} 1.0'
        in metrics
    )
    assert (
        'chatapp_http_requests_total{method="GET",route="/api/v1/users/{user_id}",status="404"} 1.0'
        in metrics
    )
    assert (
        'chatapp_http_request_duration_seconds_bucket{le="0.005",route="/api/v1/auth/login"}'
        in (metrics)
    )
    assert 'chatapp_open_connections{kind="http"}' in metrics


async def test_openapi_describes_every_route(chat_server: RunningServer) -> None:
    """/api/v1/openapi.json lists each registered route with its bodies and error answers."""
    document = (await chat_server.client().raw_request("GET", "/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    signup = document["paths"]["/api/v1/auth/signup"]["post"]
    assert signup["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SignupRequest"
    )
    assert {"201", "400", "409", "422", "429"} <= set(signup["responses"])
    schemas = document["components"]["schemas"]
    assert set(schemas["SignupRequest"]["required"]) == {"username", "password"}
    assert set(schemas["User"]["properties"]) == set(schemas["User"]["required"]) == {
        "user_id", "username", "display_name", "about", "created_at", "role",
    }  # fmt: skip
    assert schemas["User"]["properties"]["role"]["enum"] == ["member", "admin"]
    routes = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    registered = {
        (route.method, route.resource.canonical)
        for route in chat_server.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    # The WebSocket is not an HTTP API; docs/protocol.md describes it.
    registered.discard(("GET", "/ws"))
    # Nor are the web client's pages, its service worker and its files.
    registered -= {("GET", "/"), ("GET", "/admin"), ("GET", "/sw.js"), ("GET", "/static/{path}")}
    assert registered <= routes


async def test_each_request_is_logged_once_without_secrets(chat_server: RunningServer) -> None:
    """One `request` event per request with id, user, route, status and duration; no secrets."""
    client = chat_server.client()
    await client.signup("logged", "secret-password-1")
    with capture_logs(processors=[merge_contextvars]) as events:
        answer = await client.login("logged", "secret-password-1")
        await client.me()
    requests = [event for event in events if event["event"] == "request"]
    assert [event["route"] for event in requests] == ["/api/v1/auth/login", "/api/v1/me"]
    me_event = requests[1]
    assert me_event["status"] == 200
    assert me_event["user_id"] == answer.user.user_id
    assert me_event["method"] == "GET"
    assert len(me_event["request_id"]) == 32
    assert me_event["duration_ms"] >= 0
    everything = json.dumps(events, default=str)
    assert "secret-password-1" not in everything
    assert answer.token not in everything


async def test_request_id_is_echoed(chat_server: RunningServer) -> None:
    """A caller's X-Request-ID is kept and answered, so logs can be joined across systems."""
    answer = await chat_server.client().raw_request(
        "GET", "/healthz", headers={"X-Request-ID": "trace-123"}
    )
    assert answer.headers["X-Request-ID"] == "trace-123"

"""The OpenAPI 3.1 document, made from the registered endpoints and their pydantic models.

Because the routes validate with the very models described here, the document
cannot drift from what the server accepts and answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chatapp.api.endpoint import Endpoint
from chatapp.protocol.http import ErrorBody

_ERROR_TEXT = {
    400: "malformed request",
    401: "missing, unknown or revoked token",
    403: "not allowed",
    404: "no such object",
    405: "method not allowed",
    409: "conflict",
    422: "a protocol limit was broken",
    429: "rate limited; see Retry-After",
    503: "a store is unavailable",
}
_REF = "#/components/schemas/{model}"


def build_openapi(endpoints: Sequence[Endpoint], *, version: str) -> dict[str, Any]:
    models = _models(endpoints)
    _, schemas = models_json_schema(
        [
            (model, "validation" if _is_request(model, endpoints) else "serialization")
            for model in models
        ],
        ref_template=_REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "chatapp", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _models(endpoints: Sequence[Endpoint]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {ErrorBody.__name__: ErrorBody}
    for endpoint in endpoints:
        for model in [endpoint.body, *endpoint.answers.values()]:
            if model is not None:
                found[model.__name__] = model
    return list(found.values())


def _is_request(model: type[BaseModel], endpoints: Sequence[Endpoint]) -> bool:
    return any(endpoint.body is model for endpoint in endpoints)


def _path_schema(name: str) -> dict[str, Any]:
    """Path parameters are ids, except an emoji (1 to 16 code points, URL-encoded) and an
    invite's code."""
    if name == "emoji":
        return {"type": "string", "minLength": 1, "maxLength": 16, "pattern": r"^\S+$"}
    if name == "code":
        return {"type": "string", "minLength": 1, "maxLength": 64}
    return {"type": "integer", "minimum": 1}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "operationId": _operation_id(endpoint),
        "responses": {},
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=endpoint.body.__name__)}}
            },
        }
    if not endpoint.public:
        operation["security"] = [{"bearer": []}]
    for status, model in endpoint.answers.items():
        answer: dict[str, Any] = {"description": "success"}
        if model is not None:
            answer["content"] = {
                "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}
            }
        elif endpoint.streamed is not None and status < 300:
            # Its lines are described in docs/protocol.md: JSON Schema has no word for them.
            answer["content"] = {endpoint.streamed: {}}
        operation["responses"][str(status)] = answer
    statuses = set(endpoint.errors) | {400} | (set() if endpoint.public else {401})
    for status in sorted(statuses):
        operation["responses"][str(status)] = {
            "description": _ERROR_TEXT.get(status, "error"),
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}},
        }
    return operation


def _operation_id(endpoint: Endpoint) -> str:
    return endpoint.handler.__name__

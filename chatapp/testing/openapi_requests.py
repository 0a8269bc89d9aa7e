"""Requests made from the server's OpenAPI document: every operation, ready to send.

Tests that must cover every endpoint (an authorization matrix, hostile bodies)
read the operations from `/api/v1/openapi.json` at test time, so a new
endpoint cannot be forgotten. `example_body` builds a body that fits an
operation's schema, with values chosen by property name where the caller
knows better (`hints`): a real user id for `user_id`, say.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Hint = Any | Callable[[], Any]
"""A value for a property of that name, or a function giving a fresh one each time."""

_fresh = itertools.count(1)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    """The path template, as in the document: `/api/v1/channels/{id}`."""
    public: bool
    """No `security` requirement: callable without a token."""
    body_schema: dict[str, Any] | None
    query_required: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_names(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    def url(self, values: Mapping[str, int | str]) -> str:
        """The path with each `{name}` replaced by `values[name]`."""
        return re.sub(r"{(\w+)}", lambda match: str(values[match.group(1)]), self.path)


def operations(document: Mapping[str, Any]) -> list[Operation]:
    """Every operation of the document, in its order."""
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            query = [
                parameter["name"]
                for parameter in operation.get("parameters", [])
                if parameter.get("in") == "query" and parameter.get("required")
            ]
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    public=not operation.get("security"),
                    body_schema=body["schema"] if body else None,
                    query_required=tuple(query),
                )
            )
    return found


def example_body(
    document: Mapping[str, Any], schema: Mapping[str, Any], hints: Mapping[str, Hint]
) -> Any:
    """A value that fits `schema`, every property included; `hints` by property name win."""
    return _example(document, schema, hints, name=None, depth=0)


def _example(
    document: Mapping[str, Any],
    schema: Mapping[str, Any],
    hints: Mapping[str, Hint],
    name: str | None,
    depth: int,
) -> Any:
    if name is not None and name in hints:
        hint = hints[name]
        return hint() if callable(hint) else hint
    schema = _resolve(document, schema)
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            usable = [s for s in schema[combined] if _resolve(document, s).get("type") != "null"]
            return _example(document, (usable or schema[combined])[0], hints, name, depth)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 5:
            return {}
        return {
            prop: _example(document, sub, hints, prop, depth + 1)
            for prop, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        items = schema.get("items", {})
        return [_example(document, items, hints, None, depth + 1)] if items else []
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"value{next(_fresh)}"


def _resolve(document: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema

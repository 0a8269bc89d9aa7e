"""What a route handler receives: the request, the services and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from chatapp.accounts import Caller
from chatapp.api.client_address import client_address
from chatapp.errors import BadRequest, NotFound
from chatapp.protocol.json_input import NotUnicode, parse_text_json
from chatapp.protocol.validation import describe_validation_error
from chatapp.services import SERVICES, Services

ModelT = TypeVar("ModelT", bound=BaseModel)

__all__ = ["SERVICES", "Call"]


@dataclass(frozen=True)
class Call:
    request: web.Request
    services: Services
    authenticated: Caller | None

    @property
    def caller(self) -> Caller:
        if self.authenticated is None:  # only public endpoints lack a caller
            raise RuntimeError("endpoint is public; no caller")
        return self.authenticated

    @property
    def address(self) -> str:
        """The client's address; through a trusted proxy, the one it forwarded."""
        return client_address(
            self.request.remote or "",
            self.request.headers.get("X-Forwarded-For"),
            self.services.trusted_proxies,
        )

    async def body(self, model: type[ModelT]) -> ModelT:
        """Parse the JSON body into `model`; a 400 naming the field when it does not fit."""
        raw = await self.request.read()
        try:
            document = parse_text_json(raw) if raw else None
        except NotUnicode as exc:
            raise BadRequest(str(exc)) from None
        except (ValueError, RecursionError):
            # ValueError covers bad UTF-8, bad JSON and integers too long to
            # convert; RecursionError, nesting deeper than the parser goes.
            raise BadRequest("the body is not valid JSON (or nests or counts too deep)") from None
        if not isinstance(document, dict):
            raise BadRequest("the body must be a JSON object")
        return _validate(model, document)

    def query(self, model: type[ModelT]) -> ModelT:
        return _validate(model, dict(self.request.query))

    def path_id(self, name: str) -> int:
        """An id from the path; ids are positive and below 2^53 (so JavaScript reads them)."""
        raw = self.request.match_info[name]
        if not raw.isdecimal() or len(raw) > 16 or not 0 < int(raw) < 2**53:
            raise NotFound("not_found", f"no such {name.removesuffix('_id')}")
        return int(raw)


def _validate(model: type[ModelT], document: dict[str, object]) -> ModelT:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc)) from None
    except RecursionError:
        raise BadRequest("the body nests too deep") from None

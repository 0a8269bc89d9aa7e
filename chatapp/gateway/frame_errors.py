"""Why a frame was refused, told in the words the server has always used.

`frames.parse_frame` decodes frames with msgspec; only a frame msgspec
refuses (or one it cannot tell apart, such as a repeated `type`) comes here,
to pydantic models of the same frames, so that every refusal reads as it
always has and a frame msgspec is stricter about than JSON (a NaN in a field
nobody reads) is still taken. `tests/unit/test_frame_decoding.py` holds the
two definitions to the same answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from chatapp.errors import BadRequest
from chatapp.protocol import parse_json
from chatapp.protocol.validation import describe_validation_error

_Id = Annotated[int, Field(ge=1, lt=2**53)]
_Cursor = Annotated[int, Field(ge=0, lt=2**53)]


def _sendable(text: str) -> str:
    """Lone surrogates parse from JSON but cannot be sent back as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return text


_Ref = Annotated[str, AfterValidator(_sendable)]


class _Frame(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    ref: _Ref | None = None


class _Hello(_Frame):
    type: Literal["hello"]
    token: str
    last_seq: _Cursor | None = None


class _Sync(_Frame):
    type: Literal["sync"]
    since: _Cursor


class _Send(_Frame):
    type: Literal["send"]
    # Sendable, because every answer to a send repeats it.
    client_msg_id: _Ref
    channel_id: _Id
    text: str
    reply_to: _Id | None = None


class _Heartbeat(_Frame):
    type: Literal["heartbeat"]


class _Read(_Frame):
    type: Literal["read"]
    channel_id: _Id
    message_id: _Cursor


class _Typing(_Frame):
    type: Literal["typing"]
    channel_id: _Id


_MODELS: dict[str, type[_Frame]] = {
    "hello": _Hello,
    "sync": _Sync,
    "send": _Send,
    "heartbeat": _Heartbeat,
    "read": _Read,
    "typing": _Typing,
}


class FrameError(BadRequest):
    """A frame that cannot be understood; `ref` and `client_msg_id` when they could be read."""

    def __init__(
        self,
        message: str,
        ref: str | None = None,
        client_msg_id: str | None = None,
        *,
        unreadable: bool = False,
    ) -> None:
        super().__init__(message)
        self.ref = ref
        self.client_msg_id = client_msg_id
        # Not a JSON object at all: a sign of a client that does not speak the protocol.
        self.unreadable = unreadable


def check_frame(text: str) -> tuple[str, dict[str, Any]]:
    """The frame's type and fields, with `type` left out; FrameError (with whatever
    `ref` it had) when it does not fit."""
    try:
        document = parse_json(text)
    except (ValueError, RecursionError):
        raise FrameError("the frame is not valid JSON", unreadable=True) from None
    if not isinstance(document, dict):
        raise FrameError("a frame is a JSON object", unreadable=True)
    ref = _echoable(document.get("ref"))
    echo_id = _echoable(document.get("client_msg_id"))
    kind = document.get("type")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise FrameError(f"type: unknown frame type {str(kind)[:40]!r}", ref, echo_id)
    try:
        frame = model.model_validate(document)
    except ValidationError as exc:
        raise FrameError(describe_validation_error(exc), ref, echo_id) from None
    except RecursionError:
        raise FrameError("the frame nests too deep", ref, echo_id) from None
    return str(kind), frame.model_dump(exclude={"type"})


def _echoable(value: object) -> str | None:
    """A value that can be repeated in an error frame, or None."""
    if not isinstance(value, str):
        return None
    try:
        return _sendable(value)
    except ValueError:
        return None

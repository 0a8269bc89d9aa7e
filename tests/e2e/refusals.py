"""The error a client call is refused with, for tests to check its status and code."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from chatapp.client import ChatApiError


async def refusal(call: Awaitable[Any]) -> ChatApiError:
    """The `ChatApiError` the call raises; the test fails if it succeeds."""
    with pytest.raises(ChatApiError) as caught:
        await call
    return caught.value


async def refused(call: Awaitable[Any]) -> tuple[int, str]:
    """The status and error code the call is refused with; the test fails if it succeeds."""
    error = await refusal(call)
    return error.status, error.code

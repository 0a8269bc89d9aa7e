"""Schemathesis hooks for fuzzing a chat server: each generated request logs in anew.

A generated `POST /auth/logout` or `DELETE /me/devices/{id}` revokes the token
it was sent with; with one token for the whole run every later request would
be a 401 and the run would test nothing. So every request gets the token of
a new device of the same user. Load with

    SCHEMATHESIS_HOOKS=chatapp.testing.schemathesis_hooks \\
    CHATAPP_FUZZ_URL=http://127.0.0.1:8080 CHATAPP_FUZZ_USERNAME=fuzzer \\
    CHATAPP_FUZZ_PASSWORD=... schemathesis run http://127.0.0.1:8080/api/v1/openapi.json

(the user must exist, and the server's login limits must allow a login per
request). Needs `schemathesis` (a test dependency).
"""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis


@schemathesis.auth(refresh_interval=None)
class FreshToken:
    """A new device's token for every request."""

    def get(self, case: schemathesis.Case[Any], context: schemathesis.AuthContext) -> str:
        answer = requests.post(
            os.environ["CHATAPP_FUZZ_URL"].rstrip("/") + "/api/v1/auth/login",
            json={
                "username": os.environ["CHATAPP_FUZZ_USERNAME"],
                "password": os.environ["CHATAPP_FUZZ_PASSWORD"],
                "device_name": "schemathesis",
            },
            timeout=10,
        )
        answer.raise_for_status()
        token: str = answer.json()["token"]
        return token

    def set(
        self, case: schemathesis.Case[Any], data: str, context: schemathesis.AuthContext
    ) -> None:
        case.headers["Authorization"] = f"Bearer {data}"

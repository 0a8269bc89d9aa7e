"""The protocol's limits on account fields, checked before anything is stored."""

from __future__ import annotations

import re

from chatapp.errors import InvalidInput

USERNAME_PATTERN = re.compile(r"[a-z0-9_.\-]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
DISPLAY_NAME_MAX = 64
ABOUT_MAX = 500
DEVICE_NAME_MAX = 100


def normalise_username(raw: str) -> str:
    """Lower-case and check a username; `Alice` and `alice` are one name."""
    username = raw.lower()
    if USERNAME_PATTERN.fullmatch(username) is None:
        raise InvalidInput(
            "invalid_username", "username must be 3 to 32 of a-z, 0-9, '_', '.' and '-'"
        )
    return username


def check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInput(
            "weak_password", f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"
        )


def check_display_name(display_name: str) -> str:
    stripped = display_name.strip()
    if not 1 <= len(stripped) <= DISPLAY_NAME_MAX:
        raise InvalidInput(
            "invalid_display_name", f"display_name must be 1 to {DISPLAY_NAME_MAX} characters"
        )
    return stripped


def check_about(about: str) -> str:
    if len(about) > ABOUT_MAX:
        raise InvalidInput("invalid_about", f"about must be at most {ABOUT_MAX} characters")
    return about


def device_name(raw: str | None) -> str:
    name = (raw or "").strip()[:DEVICE_NAME_MAX]
    return name or "unnamed device"

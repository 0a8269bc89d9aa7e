"""Parsing JSON from clients without letting a number cost the server."""

from __future__ import annotations

import json
import re
from typing import Any

# Ids are below 2^53 (16 digits); anything much longer is no valid value of
# ours, and converting thousands of digits costs quadratic time.
_MAX_INTEGER_DIGITS = 30


class TooLongNumber:
    """Stands in for an integer literal too long to be any valid value."""

    def __repr__(self) -> str:
        return "<integer too long>"


def _parse_int(literal: str) -> int | TooLongNumber:
    return int(literal) if len(literal) <= _MAX_INTEGER_DIGITS else TooLongNumber()


class NotUnicode(ValueError):
    """A string in the document holds a lone surrogate, which no store can keep."""


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_text_json(raw: bytes) -> Any:
    """parse_json for documents whose strings are stored: lone surrogates are refused.

    JSON allows `\\ud800` on its own, but it is not Unicode text; it would fail
    later in a store or in an answer. The scan for the escape is cheap, the
    full check runs only when one is present.
    """
    document = parse_json(raw)
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(document, ensure_ascii=False, default=repr).encode("utf-8")
        except UnicodeEncodeError:
            raise NotUnicode("a string holds a lone surrogate: not valid Unicode") from None
    return document


def parse_json(text: str | bytes) -> Any:
    """json.loads, except that overlong integers become a value validation refuses.

    Raises ValueError for text that is not JSON (or not UTF-8), RecursionError
    for nesting deeper than the parser goes.
    """
    return json.loads(text, parse_int=_parse_int)

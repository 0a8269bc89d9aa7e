"""Cutting a message's text to a preview, counted as the protocol counts text: in code points.

A message's limit of 100,000 characters is a limit of code points (Python's
`len`), so a preview of 200 characters is 200 code points too: an emoji
outside the Basic Multilingual Plane is one character here (two UTF-16 units
in JavaScript), and a cut never falls inside one. A character built of
several code points (a flag, a family emoji, a letter with a combining mark)
may be cut between them, as the length limit counts them apart.
"""

from __future__ import annotations

UTF8_MAX_BYTES = 4
"""The most bytes one code point takes in UTF-8."""


def head_bytes(max_chars: int) -> int:
    """How many leading bytes of UTF-8 text hold `max_chars` code points and one more.

    A store that can read part of a text reads this many bytes and passes them
    to `cut_utf8`, which can then tell whether anything was left out.
    """
    return UTF8_MAX_BYTES * (max_chars + 1)


def cut_text(text: str, max_chars: int) -> tuple[str, bool]:
    """`(the first max_chars code points, whether any were left out)`."""
    if len(text) <= max_chars:
        return text, False
    return text[:max_chars], True


def cut_utf8(head: bytes, *, whole: bool, max_chars: int) -> tuple[str, bool]:
    """`cut_text` of a text of which only the first bytes were read.

    `head` is the text's UTF-8 (`whole`) or at least its first
    `head_bytes(max_chars)` bytes, possibly ending inside a code point.
    Raises `UnicodeDecodeError` (a `ValueError`) when the bytes are not UTF-8.
    """
    end = len(head) if whole else _last_whole_code_point_end(head)
    text, cut = cut_text(head[:end].decode("utf-8"), max_chars)
    # More bytes than the head holds are more than max_chars code points.
    return text, cut or not whole


def _last_whole_code_point_end(head: bytes) -> int:
    """Where `head` ends once a code point its last bytes began without finishing is dropped."""
    start = len(head) - 1
    # Continuation bytes are 0b10xxxxxx; a code point has at most three.
    while start > 0 and len(head) - start < UTF8_MAX_BYTES and head[start] & 0xC0 == 0x80:
        start -= 1
    if start < 0:
        return 0
    lead = head[start]
    size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return start if start + size > len(head) else len(head)

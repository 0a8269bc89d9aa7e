"""What a word is, for search: the one definition both the index and the query use.

A text's words are its runs of letters, digits and combining marks, after
compatibility normalisation (NFKC) and case folding, so `Straße`, `STRASSE`
and full-width `STRASSE` are one word, and so are `café` typed with or without a
combining accent. Everything else (spaces, punctuation, symbols, emoji)
separates words. A word longer than `MAX_WORD` characters is kept by its
first `MAX_WORD`.

Engines are given these words ready made (FTS5 as a space-separated string,
PostgreSQL as a tsvector literal), so both find exactly the same messages and
no engine's own parser ever sees user input.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

MAX_WORD: Final = 64
"""The characters of a word that count; the rest of a longer run is ignored."""
QUERY_MAX: Final = 200
"""The most characters (code points) of a query."""
WORDS_VERSION: Final = f"1/unicode-{unicodedata.unidata_version}"
"""Changes when the words of a text would: an index made under another one is made again."""

# Combining marks live in these planes (the basic and supplementary multilingual
# planes, and the supplementary special-purpose plane's variation selectors).
_MARK_PLANES: Final = ((0x0000, 0x1FFFF), (0xE0000, 0xE0FFF))


@functools.cache
def _word_pattern() -> re.Pattern[str]:
    """Runs of alphanumerics (`str.isalnum`, as `\\w` without `_`) and combining marks.

    Made on first use, not at import: listing the marks reads ~135,000 code points.
    """
    marks: list[str] = []
    start: int | None = None
    for low, high in _MARK_PLANES:
        for code in range(low, min(high, sys.maxunicode) + 1):
            is_mark = unicodedata.category(chr(code)).startswith("M")
            if is_mark and start is None:
                start = code
            elif not is_mark and start is not None:
                marks.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
                start = None
        if start is not None:
            marks.append(f"{re.escape(chr(start))}-{re.escape(chr(high))}")
            start = None
    return re.compile(rf"(?:[^\W_]|[{''.join(marks)}])+")


def words_of(text: str) -> list[str]:
    """The words of `text`, in order, repeats kept."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return [word[:MAX_WORD] for word in _word_pattern().findall(folded)]


def text_digest(text: str) -> bytes:
    """A digest of the text a message's words were taken from, to tell when it changed."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Term:
    """Words that must appear next to each other, in this order; the last one may be a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class WordQuery:
    """Every term must match (AND)."""

    terms: tuple[Term, ...]


class QueryHasNoWords(ValueError):
    """The query holds nothing to search for: only spaces, punctuation or symbols."""


def parse_query(q: str) -> WordQuery:
    """The terms of a query as a user types it.

    - Words outside quotes are terms of their own, all required. A word that
      holds several (`e-mail`, `12:30`) is a phrase of them.
    - `"quoted words"` are one phrase; a quote left open runs to the end.
    - The last term is also a prefix (`hel` finds `hello`), unless it is a
      closed quote: quoting asks for exactly those words.

    Nothing in `q` is syntax but the double quote: operators, `*`, brackets
    and colons are punctuation, which separates words. Raises
    `QueryHasNoWords` when no word is left.
    """
    terms: list[Term] = []
    last_closed = False
    parts = q.split('"')
    for index, part in enumerate(parts):
        # Odd parts are between quotes; the last one is open when the quotes are odd.
        quoted = index % 2 == 1
        chunks = [part] if quoted else part.split()
        for chunk in chunks:
            words = tuple(words_of(chunk))
            if words:
                terms.append(Term(words))
                last_closed = quoted and index < len(parts) - 1
    if not terms:
        raise QueryHasNoWords("the query has no letters or digits to search for")
    if not last_closed:
        terms[-1] = Term(terms[-1].words, prefix=True)
    return WordQuery(tuple(terms))


def matches(query: WordQuery, words: Sequence[str]) -> bool:
    """Whether a text of these words (`words_of`) is found by the query."""
    return all(_has_term(term, words) for term in query.terms)


def _has_term(term: Term, words: Sequence[str]) -> bool:
    size = len(term.words)
    *whole, last = term.words
    for start in range(len(words) - size + 1):
        if list(words[start : start + size - 1]) != whole:
            continue
        found = words[start + size - 1]
        if found == last or (term.prefix and found.startswith(last)):
            return True
    return False

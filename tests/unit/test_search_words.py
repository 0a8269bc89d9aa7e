"""Search's words and queries: what a word is, how a query reads, and that nothing a user
types is ever FTS5 or tsquery syntax.

The FTS5 checks run the rendered query on SQLite's FTS5 in memory (the table as the
search file makes it), and compare what it finds with the query's own matcher: the two
must agree on every query, whatever operators, quotes or brackets it holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatapp.search.adapters.postgres_index import tsquery_literal, tsvector_literal
from chatapp.search.adapters.sqlite_index import fts5_match
from chatapp.search.models import SortKey
from chatapp.search.words import (
    MAX_WORD,
    QueryHasNoWords,
    Term,
    WordQuery,
    matches,
    parse_query,
    words_of,
)

CORPUS = [
    "near apple pear",
    "apple OR pear",
    "and or not near",
    "col: value (x) {y}",
    "the quick brown fox",
    "quick brown",
    "brown quick fox",
    "e-mail at 12:30",
    "Straße",
    "x*y z^2 -minus +plus",
    "",
    'quote " in it',
]
HOSTILE = [
    "NEAR(apple pear)",
    "NEAR(apple pear, 2)",
    "apple OR pear",
    "apple AND pear",
    "NOT apple",
    "apple NOT pear",
    "*",
    "app*",
    "*ple",
    "(apple)",
    "(apple OR",
    ")",
    "col:value",
    "{col}: value",
    "words:apple",
    "^apple",
    "-apple",
    "+apple",
    '"apple',
    'apple"',
    '"apple" "pear',
    '""',
    '" "',
    "'",
    "\\",
    "apple\\",
    "x'y",
    "&",
    "|",
    "!apple",
    "apple <-> pear",
    "apple:*",
    "apple:A",
    "\x00",
    "😀",
]


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    """The corpus in an FTS5 table made as the search file's (words given ready made)."""
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE VIRTUAL TABLE word_index USING fts5(words, tokenize = 'ascii',"
        " prefix = '1 2 3', columnsize = 0)"
    )
    connection.executemany(
        "INSERT INTO word_index (rowid, words) VALUES (?, ?)",
        [(rowid, " ".join(words_of(text))) for rowid, text in enumerate(CORPUS, start=1)],
    )
    yield connection
    connection.close()


def by_fts(connection: sqlite3.Connection, query: WordQuery) -> set[int]:
    rows = connection.execute(
        "SELECT rowid FROM word_index WHERE word_index MATCH ?", (fts5_match(query),)
    )
    return {row[0] for row in rows}


def by_matcher(query: WordQuery) -> set[int]:
    return {rowid for rowid, text in enumerate(CORPUS, start=1) if matches(query, words_of(text))}


# -- words ---------------------------------------------------------------------------------


def test_words_are_folded_runs_of_letters_digits_and_marks() -> None:
    """Case and compatibility forms fold together; punctuation, symbols and emoji split."""
    assert words_of("Hello, WORLD!") == ["hello", "world"]
    full_width = "\uff33\uff34\uff32\uff21\uff33\uff33\uff25"
    assert words_of(f"Straße STRASSE {full_width}") == ["strasse"] * 3
    assert words_of("cafe\u0301 café") == ["café", "café"]
    assert words_of("e-mail 12:30 a_b x*y") == ["e", "mail", "12", "30", "a", "b", "x", "y"]
    assert words_of("हिन्दी नमस्ते") == ["हिन्दी", "नमस्ते"]
    assert words_of("🙂 ... ★") == []
    assert words_of("a" * 100) == ["a" * MAX_WORD]


# -- reading a query -------------------------------------------------------------------------


def test_words_are_all_required_and_the_last_is_a_prefix() -> None:
    """Each word outside quotes is a term; the last term is also a prefix."""
    assert parse_query("hello wor") == WordQuery((Term(("hello",)), Term(("wor",), prefix=True)))


def test_quotes_make_phrases_and_a_closed_quote_is_exact() -> None:
    """A quoted phrase is one term; closed, it is no prefix; left open, it is."""
    assert parse_query('"hello world"') == WordQuery((Term(("hello", "world")),))
    assert parse_query('"hello wor') == WordQuery((Term(("hello", "wor"), prefix=True),))
    assert parse_query('a "b c" d') == WordQuery(
        (Term(("a",)), Term(("b", "c")), Term(("d",), prefix=True))
    )


def test_a_word_holding_several_is_a_phrase_of_them() -> None:
    """`e-mail` and `12:30` are phrases of their parts, so they find just that."""
    assert parse_query("e-mail") == WordQuery((Term(("e", "mail"), prefix=True),))
    assert parse_query("col:value x") == WordQuery((Term(("col", "value")), Term(("x",), True)))


@pytest.mark.parametrize("q", ["", "   ", "*", '""', '" "', "()", "-:^", "😀", "\x00", "&|!"])
def test_a_query_without_words_is_refused(q: str) -> None:
    """Nothing to search for is the caller's error, not a search for everything."""
    with pytest.raises(QueryHasNoWords):
        parse_query(q)


def test_operators_are_words_and_brackets_separate() -> None:
    """AND, OR, NOT and NEAR are searched for as words; brackets and stars are punctuation."""
    assert parse_query("NEAR(a OR b)*") == WordQuery(
        (Term(("near", "a")), Term(("or",)), Term(("b",), prefix=True))
    )


# -- FTS5 and tsquery literals ---------------------------------------------------------------


def test_every_term_is_a_quoted_fts5_string() -> None:
    """FTS5 gets strings only: quotes around every phrase, `*` after a prefix, AND between."""
    query = parse_query('NEAR(a) "b c" d')
    assert fts5_match(query) == '"near a" AND "b c" AND "d" *'


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_are_text_to_fts5(fts: sqlite3.Connection, q: str) -> None:
    """Operators, quotes, brackets, colons and stars typed by a user never reach FTS5 as
    syntax: the query either has no words (refused) or runs, finding what the matcher finds."""
    try:
        query = parse_query(q)
    except QueryHasNoWords:
        return
    assert by_fts(fts, query) == by_matcher(query)


def test_operator_words_find_only_texts_with_those_words(fts: sqlite3.Connection) -> None:
    """`apple OR pear` needs all three words; `NEAR(apple pear)` needs the three too."""
    assert by_fts(fts, parse_query("apple OR pear")) == {2}
    assert by_fts(fts, parse_query("NEAR(apple pear)")) == {1}
    assert by_fts(fts, parse_query("NOT near")) == {3}
    assert by_fts(fts, parse_query("col:value")) == {4}


QUERY_TEXT = st.lists(
    st.sampled_from([*"abnrq \"'()*:^-+{}\\", "NEAR", "OR", "AND", "NOT", "apple", "pear"]),
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(QUERY_TEXT)
def test_fts5_and_the_matcher_agree_on_any_query(q: str) -> None:
    """For any query, FTS5 finds exactly the texts the query's own matcher finds."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE VIRTUAL TABLE word_index USING fts5(words, tokenize = 'ascii')")
        connection.executemany(
            "INSERT INTO word_index (rowid, words) VALUES (?, ?)",
            [(rowid, " ".join(words_of(text))) for rowid, text in enumerate(CORPUS, start=1)],
        )
        try:
            query = parse_query(q)
        except QueryHasNoWords:
            return
        assert by_fts(connection, query) == by_matcher(query)
    finally:
        connection.close()


def test_tsquery_and_tsvector_literals_quote_every_word() -> None:
    """Every lexeme is quoted (quotes doubled, backslashes escaped); phrases use `<->`,
    prefixes `:*`; positions count from 1."""
    query = WordQuery((Term(("a", "b'c")), Term(("d\\",), prefix=True)))
    assert tsquery_literal(query) == "('a' <-> 'b''c') & ('d\\\\':*)"
    assert tsvector_literal(["x", "y", "x"]) == "'x':1,3 'y':2"
    assert tsvector_literal([]) == ""


def test_tsvector_positions_stop_where_postgresql_does() -> None:
    """Past position 16,383 words share the last; a word keeps at most 256 positions."""
    literal = tsvector_literal(["w"] * 20_000)
    positions = literal.split(":", 1)[1].split(",")
    assert len(positions) == 256
    assert positions[-1] == "256"
    tail = tsvector_literal(["pad"] * 16_390 + ["end"])
    assert "'end':16383" in tail


# -- cursors -------------------------------------------------------------------------------


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    """`next_before` reads back as the key it was made from; other strings are refused."""
    key = SortKey(1_700_000_000_000, 42, 7)
    assert SortKey.from_cursor(key.cursor()) == key
    padded = key.cursor() + "=="
    for bad in ["", "nope", "MTIz", "MS4yLjA0", "=", "-1.2.3", key.cursor() + "x", "å", padded]:
        with pytest.raises(ValueError, match="cursor"):
            SortKey.from_cursor(bad)
    too_big = SortKey(2**63, 1, 1).cursor()
    with pytest.raises(ValueError, match="cursor"):
        SortKey.from_cursor(too_big)

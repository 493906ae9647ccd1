"""The search query language: a pure parser, tested hard, and the engine expressions built
from it (which must never carry the user's text as syntax)."""

from __future__ import annotations

import datetime as dt
import random
import string

import pytest

from trackeep_desktop.search.query import (
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    ParsedQuery,
    QuerySyntaxError,
    Term,
    fts_match,
    merge_queries,
    parse_query,
    parse_types,
    pg_tsquery,
)


def day(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_words_are_all_required_and_lower_cased():
    query = parse_query("Python  TIPS")
    assert query.terms == (Term("word", ("python",)), Term("word", ("tips",)))
    assert fts_match(query.terms) == '"python" AND "tips"'


def test_phrases_prefixes_and_exclusions():
    query = parse_query('"exact Phrase" proj* -spam -"junk mail" -old*')
    assert query.terms == (
        Term("phrase", ("exact", "phrase")),
        Term("prefix", ("proj",)),
        Term("word", ("spam",), negated=True),
        Term("phrase", ("junk", "mail"), negated=True),
        Term("prefix", ("old",), negated=True),
    )
    assert fts_match(query.terms) == (
        '("exact phrase" AND "proj" *) NOT ("spam" OR "junk mail" OR "old" *)')
    assert query.canonical() == '"exact phrase" proj* -spam -"junk mail" -old*'


def test_filters():
    query = parse_query('tag:Work tag:"two  words" -tag:old type:notes type:task -type:file '
                        "is:favorite -is:unread status:completed -status:cancelled "
                        "after:2026-01-01 before:2026-01-31T12:00:00Z report")
    assert query.terms == (Term("word", ("report",)),)
    assert query.tags == ("work", "two words")
    assert query.not_tags == ("old",)
    assert query.types == ("task", "note")
    assert query.not_types == ("file",)
    assert query.flags == (("favorite", True), ("unread", False))
    assert query.statuses == ("completed",)
    assert query.not_statuses == ("cancelled",)
    assert query.after == day("2026-01-01")
    assert query.before == day("2026-01-31T12:00:00")
    again = parse_query(query.canonical())
    assert again == query


def test_filter_keys_ignore_case_and_unknown_keys_are_words():
    assert parse_query("TYPE:Bookmark IS:Pinned").types == ("bookmark",)
    query = parse_query("title:secret https://example.com/a-b")
    assert query.terms == (Term("phrase", ("title", "secret")),
                           Term("phrase", ("https", "example", "com", "a", "b")))
    assert query.types == ()


def test_engine_operators_and_column_names_are_plain_words():
    query = parse_query("cats AND dogs OR NOT birds NEAR(fish, 2) title: ^start {a b}:c")
    tokens = [t.tokens for t in query.terms]
    assert ("and",) in tokens
    assert ("or",) in tokens
    assert ("not",) in tokens
    assert ("near", "fish") in tokens
    match = fts_match(query.terms)
    # every token is inside double quotes: outside them only AND, NOT, OR, *, parentheses
    outside = "".join(match.split('"')[0::2])
    assert set(outside.replace("AND", "").replace("NOT", "").replace("OR", "")) <= set(" ()*")


@pytest.mark.parametrize(("text", "message"), [
    ('"unclosed phrase', "quote is not closed"),
    ('fine "', "quote is not closed"),
    ('tag:"open', "quote is not closed"),
    ("*", "must follow the start of a word"),
    ("-*", "must follow the start of a word"),
    ("a*", "at least 2 characters"),
    ("tag:", "tag: needs a value"),
    ("type:", "type: needs a value"),
    ("type:folder", "type: takes bookmark, task, note or file"),
    ("is:done", "is: takes favorite, unread or pinned"),
    ("status:done", "status: takes pending"),
    ("before:yesterday", "before: takes a date"),
    ("after:2026-13-01", "after: takes a date"),
    ("-before:2026-01-01", "cannot be negated"),
    ("is:favorite -is:favorite", "cannot both hold"),
    ("tag:a,b", "cannot contain a comma"),
    ("x" * (MAX_QUERY_LENGTH + 1), "too long"),
    (" ".join(["w"] * (MAX_TERMS + 1)), "too many terms"),
])
def test_invalid_syntax_is_refused_with_a_message(text, message):
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    assert message in caught.value.message


def test_what_has_nothing_to_search_for_is_dropped():
    assert parse_query("").is_empty
    assert parse_query("   - -- ... !!! ()").is_empty
    assert parse_query('""').is_empty
    assert parse_query(None).is_empty
    assert parse_query(" " * MAX_QUERY_LENGTH).is_empty


def test_control_and_invisible_characters_are_separators():
    query = parse_query("py\x00thon\x1b[31m\u202eevil\u200bword\r\n\ttabs")
    assert [t.tokens for t in query.terms] == [("py",), ("thon",), ("31m",), ("evil",),
                                               ("word",), ("tabs",)]


def test_diacritics_and_scripts_tokenize_like_the_index():
    query = parse_query("Café naïve 東京 Ünïcödé")
    assert [t.tokens for t in query.terms] == [("café",), ("naïve",), ("東京",),
                                               ("ünïcödé",)]


def test_duplicates_collapse():
    assert len(parse_query("a a A").terms) == 1


def test_the_query_must_be_text():
    with pytest.raises(QuerySyntaxError):
        parse_query(["a list"])


def test_fuzzed_input_either_parses_into_quoted_tokens_or_is_refused():
    alphabet = string.printable + '"*-:()^{}«»éü東\x00\x07\u202e'
    rng = random.Random(5)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        try:
            query = parse_query(text)
        except QuerySyntaxError as exc:
            assert exc.message  # noqa: PT017 (refusing is one of the two allowed outcomes)
            continue
        for term in query.terms:
            assert term.tokens
            assert all(tok.isalnum() for tok in term.tokens)
        if query.terms:
            match = fts_match(query.terms)
            outside = "".join(match.split('"')[0::2])
            assert set(outside.replace("AND", "").replace("NOT", "").replace("OR", "")) <= set(
                " ()*")
            sql, params = pg_tsquery(query.terms)
            assert "%s" in sql
            assert len(params) == sql.count("%s")
            assert not any(ch in sql.replace("'trackeep_search'", "") for ch in "'\\;")


def test_postgres_tsquery_binds_every_value():
    sql, params = pg_tsquery(parse_query('one "two three" fo* -five').terms)
    assert sql == ("((plainto_tsquery('trackeep_search', %s) && "
                   "phraseto_tsquery('trackeep_search', %s) && "
                   "to_tsquery('trackeep_search', %s)) && "
                   "!!(plainto_tsquery('trackeep_search', %s)))")
    assert params == ["one", "two three", "'fo':*", "five"]
    only_negative = pg_tsquery(parse_query("-x").terms)
    assert only_negative == ("(plainto_tsquery('trackeep_search', %s))", ["x"])


def test_types_parameter():
    assert parse_types("note, tasks") == ("task", "note")
    assert parse_types(["file"]) == ("file",)
    assert parse_types("all") == ()
    assert parse_types(None) == ()
    assert parse_types("") == ()
    with pytest.raises(Exception, match=r"type takes|type: takes"):
        parse_types("folder")


def test_merging_queries_keeps_both_and_the_narrower_dates():
    merged = merge_queries(parse_query("a tag:x after:2026-01-01"),
                           ParsedQuery(tags=("y",), after=day("2026-02-01"),
                                       before=day("2026-03-01")))
    assert merged.tags == ("x", "y")
    assert merged.after == day("2026-02-01")
    assert merged.before == day("2026-03-01")
    with pytest.raises(QuerySyntaxError):
        merge_queries(parse_query("is:pinned"), ParsedQuery(flags=(("pinned", False),)))

"""Property tests (hypothesis) of the parsers that take text from outside: the search query
parser, URL normalization, tag names, the Netscape bookmark parser and the import archive
reader. Each may refuse its input only with its own domain error, and what it accepts has the
shape the rest of the program relies on.

The settings profile (conftest.py) keeps each test to about 200 examples with no deadline, and
derandomized under CI, so a run there is the same on every push.
"""

from __future__ import annotations

import io
import json
import unicodedata
import zipfile
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackeep_desktop.items import InvalidInput
from trackeep_desktop.items.fields import normalize_url
from trackeep_desktop.items.tags import TAG_NAME_MAX, normalize_tag_name
from trackeep_desktop.search.query import (
    MAX_QUERY_LENGTH,
    ParsedQuery,
    QuerySyntaxError,
    parse_query,
)
from trackeep_desktop.storage.db import connection
from trackeep_desktop.transfer import InvalidArchive, InvalidBookmarkFile
from trackeep_desktop.transfer.archive import FORMAT, MANIFEST, VERSION
from trackeep_desktop.transfer.export import SECTIONS
from trackeep_desktop.transfer.importer import prepare_archive
from trackeep_desktop.transfer.netscape import parse_netscape

#: Text with the characters parsers trip on: controls, NUL, bidi overrides, surrogate-free
#: astral characters, quotes and the query language's own punctuation, often.
SYNTAX = st.sampled_from(list('"*-:()^{},.;/\\?#@%[]<>&=+ \t\n\r\x00\x07\x1b\x7f\x85'
                              "\u200b\u202e\ufeff\u2028«»éü東😀"))
TEXT = st.text(st.one_of(st.characters(exclude_categories=["Cs"]), SYNTAX), max_size=80)


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "C"


# ------------------------------------------------------------------------- search queries


QUERY_WORDS = st.sampled_from(["tag:", "-tag:", "type:", "is:", "status:", "before:",
                               "after:", "OR", "AND", "NOT", "NEAR", '"', "*", "-", "2024-01-31",
                               "bookmark", "favorite", "x", "東京"])
QUERIES = st.one_of(
    TEXT,
    st.lists(st.one_of(QUERY_WORDS, TEXT), max_size=12).map(" ".join),
    st.text(max_size=MAX_QUERY_LENGTH + 20),
)


@given(QUERIES)
def test_the_query_parser_refuses_only_with_a_syntax_error_and_yields_clean_terms(text):
    try:
        query = parse_query(text)
    except QuerySyntaxError as exc:
        assert exc.message  # noqa: PT017 (refusing is one allowed outcome)
        return
    assert isinstance(query, ParsedQuery)
    for term in query.terms:
        assert term.tokens
        for token in term.tokens:
            assert token
            assert not any(_is_control(ch) for ch in token), repr(token)
            assert not any(ch.isspace() for ch in token), repr(token)
    for name in (*query.tags, *query.not_tags):
        assert not any(_is_control(ch) for ch in name), repr(name)
    # What the parser gives back in normal form parses to the same query.
    assert parse_query(" ".join(str(t) for t in query.terms)).terms == query.terms


@given(st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.text()), st.binary(),
                 st.dictionaries(st.text(), st.text())))
def test_the_query_parser_refuses_what_is_not_text(value):
    try:
        query = parse_query(value)
    except QuerySyntaxError:
        return
    assert value is None
    assert query.terms == ()


# ------------------------------------------------------------------------------------ URLs


HOSTS = st.one_of(
    st.from_regex(r"[a-zA-Z0-9-]{1,12}(\.[a-zA-Z0-9-]{1,12}){0,3}\.[a-zA-Z]{2,6}",
                  fullmatch=True),
    st.sampled_from(["localhost", "127.0.0.1", "[::1]", "[2001:db8::1]", "EXAMPLE.COM",
                     "xn--bcher-kva.example", "bücher.example", "a..b", "-x-.com", ""]),
)
URLS = st.one_of(
    TEXT,
    st.builds(
        lambda scheme, userinfo, host, port, path, query, fragment: (
            f"{scheme}{userinfo}{host}{port}{path}{query}{fragment}"),
        st.sampled_from(["http://", "https://", "HTTP://", "HtTpS://", "ftp://", "javascript:",
                         "data:", "file://", "", "//", "https:/"]),
        st.sampled_from(["", "user@", "user:pw@", "@"]),
        HOSTS,
        st.sampled_from(["", ":80", ":443", ":8080", ":0", ":65536", ":x", ":"]),
        st.one_of(st.just(""), st.just("/"), TEXT.map(lambda t: "/" + t)),
        st.one_of(st.just(""), TEXT.map(lambda t: "?" + t)),
        st.one_of(st.just(""), TEXT.map(lambda t: "#" + t)),
    ),
)


@given(URLS)
def test_url_normalization_is_idempotent_http_only_and_refuses_with_invalid_input(url):
    try:
        normalized = normalize_url(url)
    except InvalidInput as exc:
        assert exc.field == "url"  # noqa: PT017 (refusing is one allowed outcome)
        return
    assert normalized.startswith(("http://", "https://")), normalized
    assert not normalized.endswith("#") or urlsplit(normalized).fragment  # no bare "#"
    assert not any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in normalized), (
        repr(normalized))
    assert normalize_url(normalized) == normalized


@given(st.one_of(st.none(), st.integers(), st.lists(st.text()), st.binary()))
def test_url_normalization_refuses_what_is_not_text(value):
    with pytest.raises(InvalidInput):
        normalize_url(value)


# ------------------------------------------------------------------------------- tag names


@given(st.one_of(TEXT, st.text(max_size=TAG_NAME_MAX + 10),
                 st.fixed_dictionaries({"name": TEXT}), st.integers(), st.none()))
def test_tag_names_normalize_idempotently_or_are_refused_with_invalid_input(name):
    try:
        normalized = normalize_tag_name(name)
    except InvalidInput as exc:
        assert exc.field == "name"  # noqa: PT017 (refusing is one allowed outcome)
        return
    assert 1 <= len(normalized) <= TAG_NAME_MAX
    assert "," not in normalized
    assert normalized == normalized.strip()
    assert "  " not in normalized
    assert normalize_tag_name(normalized) == normalized


# ------------------------------------------------------------------ Netscape bookmark files


NETSCAPE_PARTS = st.sampled_from([
    "<!DOCTYPE NETSCAPE-Bookmark-file-1>", "<META HTTP-EQUIV=\"Content-Type\" "
    "CONTENT=\"text/html; charset=UTF-8\">", "<meta charset=latin-1>", "<meta charset=nope>",
    "<DL><p>", "</DL><p>", "<DT>", "<H3 ADD_DATE=\"1700000000\">", "</H3>",
    "<A HREF=\"https://example.com/\" ADD_DATE=\"99999999999999999999\" TAGS=\"a,b\">",
    "<A HREF=\"javascript:alert(1)\">", "<A HREF=\"\" LAST_MODIFIED=\"-1\">", "</A>",
    "<DD>", "<!--", "-->", "<![CDATA[", "&#0;", "&#x110000;", "&amp;", "<", ">", "\x00",
])
BOOKMARK_FILES = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(NETSCAPE_PARTS, TEXT), max_size=30).map(
        lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
    st.tuples(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]), st.binary(max_size=100),
              st.lists(NETSCAPE_PARTS, max_size=20)).map(
        lambda t: t[0] + "".join(t[2]).encode() + t[1]),
)


@given(BOOKMARK_FILES, st.sampled_from([7, 64, 256 * 1024]))
def test_the_netscape_parser_refuses_only_with_invalid_bookmark_file(data, chunk_size):
    try:
        parsed = parse_netscape(io.BytesIO(data), chunk_size=chunk_size)
    except InvalidBookmarkFile as exc:
        assert exc.message  # noqa: PT017 (refusing is one allowed outcome)
        return
    for bookmark in parsed.bookmarks:
        assert isinstance(bookmark.url, str)
    assert parsed.folders >= 0


# ------------------------------------------------------------------------- import archives


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(allow_nan=False), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
SECTION_NAMES = [section.name for section in SECTIONS]
ROWS = st.lists(st.dictionaries(
    st.one_of(st.sampled_from(["id", "title", "url", "name", "created_at", "tags", "sha256",
                               "size", "parent_id", "status", "content"]), TEXT),
    JSON_VALUES, max_size=8), max_size=3)
MANIFESTS = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"format": st.just(FORMAT), "version": st.one_of(st.just(VERSION), JSON_VALUES)},
        optional={name: st.one_of(ROWS, JSON_VALUES) for name in SECTION_NAMES},
    ).map(lambda m: json.dumps(m).encode()),
)
ARCHIVES = st.one_of(
    st.binary(max_size=300),
    st.tuples(MANIFESTS, st.dictionaries(
        st.one_of(st.sampled_from(["files/x", "../evil", "/abs", "manifest.json/", "a" * 300]),
                  TEXT.filter(lambda name: name and "\x00" not in name)),
        st.binary(max_size=50), max_size=3)),
)


def _zip(members: tuple[bytes, dict[str, bytes]]) -> bytes:
    manifest, others = members
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(MANIFEST, manifest)
        for name, data in others.items():
            if name != MANIFEST:
                archive.writestr(name.encode("utf-8", "replace").decode(), data)
    return buffer.getvalue()


# prepare_archive writes nothing (blobs go to spools, rows are only checked), so one empty
# account in one database serves every example.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ARCHIVES)
def test_the_archive_reader_refuses_only_with_invalid_archive(database, blob_store, tmp_path,
                                                            archive):
    data = archive if isinstance(archive, bytes) else _zip(archive)
    path = tmp_path / "archive.zip"
    path.write_bytes(data)
    with connection(database):
        try:
            prepared = prepare_archive(1, path, store=blob_store)
        except InvalidArchive as exc:
            assert exc.message  # noqa: PT017 (refusing is one allowed outcome)
            return
    prepared.discard()


@pytest.fixture
def blob_store(tmp_path):
    from trackeep_desktop.files.store import BlobStore

    return BlobStore(tmp_path / "files")

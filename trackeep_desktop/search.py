"""Search: one ranked full-text index over bookmarks, tasks, notes and files.

No Flask here. The pieces, in the order a query meets them:

* **The query language** (:func:`parse_query`, a pure function): words (all must match),
  ``"exact phrase"``, ``prefix*``, ``-exclude`` (also ``-"phrase"``, ``-tag:x``...),
  ``tag:name`` (``tag:"two words"``), ``type:bookmark|task|note|file``,
  ``is:favorite|unread|pinned``, ``status:pending|in_progress|completed|cancelled``,
  ``before:2026-01-31`` and ``after:2026-01-01`` (on the creation time; ``before`` is
  exclusive, ``after`` inclusive). Several ``type:`` or ``status:`` filters mean any of them;
  several ``tag:`` filters mean all. ``AND``, ``OR`` and ``NOT`` are plain words, and an
  unknown ``key:value`` (``title:x``, a URL) is searched as the words it contains. Bad syntax
  raises :class:`QuerySyntaxError` with a message fit to show: an unclosed quote, a bare
  ``*``, a prefix shorter than 2 characters, an unknown filter value, more than
  :data:`MAX_QUERY_LENGTH` characters or :data:`MAX_TERMS` terms. Control characters are
  dropped. Nothing the user typed reaches the full-text engine's own syntax: the ``MATCH``
  expression (SQLite) and the ``tsquery`` (PostgreSQL) are built from quoted word tokens only.
* **The index** (``search_document`` plus the FTS5 table ``search_fts`` on SQLite, or the
  ``tsv`` column on PostgreSQL; see migrations ``m0005_search`` and ``m0006_search_rowids``).
  On SQLite a document's FTS5 rowid carries its user, trash flag and type
  (:func:`fts_rowid`), so FTS5 alone answers which matches are the user's live documents of
  a type, without a look-up per match. :func:`on_item_change` is
  registered in :data:`trackeep_desktop.items.change_hooks` when this module is imported, so
  every create, update, move to the trash, restore, purge and import updates the index inside
  the same transaction as the write. Bookmarks index title, URL and description (the fetched
  page's text is not stored by the bookmarks domain, so it is not indexed); tasks title and
  description; notes title and content; files name, description and, for text-like files
  (``.txt``, ``.md``, ``.csv``, ``.html``, ``.json`` and other textual types), the first
  :data:`FILE_TEXT_BYTES` of their content. PDFs are not read. Tag names are indexed too.
  :func:`rebuild_index` rebuilds it all from the item tables.
* **Ranking**: bm25 on SQLite (:data:`BM25_WEIGHTS`: title 10, body 1, tags 5), ``ts_rank``
  on PostgreSQL (title and tags weight A, body weight B). Very common terms would make ranking
  cost grow with the number of hits, so at most :data:`RANK_CAP` matches, the most recently
  created, are ranked, within :data:`TIME_BUDGET` seconds; when either limit cuts the
  candidates the answer says ``"approximate": true`` with a ``reason``. A search counts the
  matches per type (the facets), then lets the engine rank and cut the page
  (:func:`_sqlite_ranked`, :func:`_pg_ranked`); snippets, tags and URLs are read for the
  page's rows only.
* **The cache** (:func:`cached_search_json`): answers are kept per user and query in the cache
  capability under ``search:{user_id}:{generation}:{hash}`` for :data:`CACHE_TTL` seconds.
  Each write to a user's items bumps that user's generation (the ``search:{user_id}``
  namespace) right after the transaction commits, through the callbacks that applications
  register with :func:`add_invalidator`; with Redis the generation is shared, so no instance
  serves a result from before the write once the write's request has answered.

Saved searches (a name and a query per user) live here too: :func:`create_saved_search` and
friends.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import re
import sqlite3
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Any

import peewee

from . import items
from .accounts import iso_time
from .capabilities.keys import short_hash
from .db import database, is_postgres
from .models import Bookmark, File, Note, SavedSearch, SearchDocument, Task

log = logging.getLogger(__name__)

#: The item types in the index, in the order facets list them.
INDEXED_TYPES = ("bookmark", "task", "note", "file")
#: Type names a query or a parameter may use, and the type each means.
TYPE_ALIASES = {**{t: t for t in INDEXED_TYPES}, **{t + "s": t for t in INDEXED_TYPES}}
FLAGS = ("favorite", "unread", "pinned")
STATUSES = items.TASK_STATUSES

MAX_QUERY_LENGTH = 500
MAX_TERMS = 32
MIN_PREFIX = 2
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: At most this many matches are ranked; beyond it, the most recently created ones.
RANK_CAP = 2000
#: Seconds the candidate scan may take before it stops and ranks what it has (SQLite).
TIME_BUDGET = 0.25
#: The longest a PostgreSQL search statement may run before it is cancelled.
STATEMENT_TIMEOUT_MS = 5000
#: SQLite virtual-machine steps between two checks of the time budget.
PROGRESS_STEPS = 20_000
#: Seconds a search answer stays in the cache (the seed's Caching Flow: 5 minutes).
CACHE_TTL = 300
#: bm25 weights of the FTS5 columns title, body, tags (also the table's ``rank``).
BM25_WEIGHTS = (10.0, 1.0, 5.0)
#: The PostgreSQL text search configuration the migration creates.
PG_CONFIG = "trackeep_search"
#: How much of a text-like file is read for the index.
FILE_TEXT_BYTES = 1024 * 1024
#: Text kept per document body (a note may be 1,000,000 characters).
BODY_MAX_CHARS = 1_000_000
#: File name extensions read as text even when the stored type does not say so.
TEXT_EXTENSIONS = (".txt", ".md", ".markdown", ".csv", ".tsv", ".html", ".htm", ".json",
                   ".xml", ".log", ".rst", ".yaml", ".yml")
#: Words of context around a match in a snippet.
SNIPPET_TOKENS = 16
SAVED_NAME_MAX = 100

#: Between a file's description and its text in the indexed body (a control character, so
#: never in cleaned text; whitespace to Python and a separator to the tokenizers).
FILE_TEXT_SEPARATOR = "\x1e"

_OPEN, _CLOSE = "\x02", "\x03"  # highlight markers; never in indexed text (control chars)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_QUERY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_TOKEN = re.compile(r"[^\W_]+")
_FILTER = re.compile(r"([A-Za-z]+):")


# ----------------------------------------------------------------------------------- errors


class SearchError(Exception):
    """A request the search domain refuses; ``message`` is fit to show the user."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class QuerySyntaxError(SearchError):
    """The query cannot be understood (answered 400)."""


class InvalidInput(SearchError):
    """A parameter or a saved search's field is malformed (answered 400)."""


class NotFound(SearchError):
    """No such saved search for this user (answered 404)."""


class Conflict(SearchError):
    """A saved search of this name exists already (answered 409)."""


class SearchTimeout(SearchError):
    """The database took longer than :data:`STATEMENT_TIMEOUT_MS` (answered 503)."""


# ------------------------------------------------------------------------- query language


@dataclasses.dataclass(frozen=True)
class Term:
    """A text term: ``kind`` is ``word``, ``phrase`` or ``prefix`` (the last token is a
    prefix); ``tokens`` are its lower-case word tokens."""

    kind: str
    tokens: tuple[str, ...]
    negated: bool = False

    def __str__(self) -> str:
        text = " ".join(self.tokens)
        if self.kind == "phrase" or (self.kind == "prefix" and len(self.tokens) > 1):
            text = f'"{text}"'
        if self.kind == "prefix":
            text += "*"
        return ("-" if self.negated else "") + text


@dataclasses.dataclass(frozen=True)
class ParsedQuery:
    """A query taken apart: text terms and filters. ``flags`` maps ``favorite``, ``unread``
    and ``pinned`` to the value required; ``before``/``after`` are epoch seconds."""

    terms: tuple[Term, ...] = ()
    tags: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    not_types: tuple[str, ...] = ()
    flags: tuple[tuple[str, bool], ...] = ()
    statuses: tuple[str, ...] = ()
    not_statuses: tuple[str, ...] = ()
    before: float | None = None
    after: float | None = None

    @property
    def positive(self) -> list[Term]:
        """The terms that must match."""
        return [t for t in self.terms if not t.negated]

    @property
    def negative(self) -> list[Term]:
        """The terms that must not match."""
        return [t for t in self.terms if t.negated]

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to search for (no term, no filter)."""
        return self == ParsedQuery()

    def canonical(self) -> str:
        """The query written back in a normal form (same meaning, same text)."""
        parts = [str(t) for t in self.terms]
        parts += [f"tag:{_quote_value(t)}" for t in self.tags]
        parts += [f"-tag:{_quote_value(t)}" for t in self.not_tags]
        parts += [f"type:{t}" for t in self.types] + [f"-type:{t}" for t in self.not_types]
        parts += [("" if value else "-") + f"is:{flag}" for flag, value in self.flags]
        parts += [f"status:{s}" for s in self.statuses]
        parts += [f"-status:{s}" for s in self.not_statuses]
        if self.after is not None:
            parts.append(f"after:{iso_time(self.after)}")
        if self.before is not None:
            parts.append(f"before:{iso_time(self.before)}")
        return " ".join(parts)


def _quote_value(value: str) -> str:
    return f'"{value}"' if any(c.isspace() for c in value) else value


def word_tokens(text: str) -> list[str]:
    """The word tokens of ``text`` as the index sees them: runs of letters and digits,
    lower-cased (punctuation separates words)."""
    return _TOKEN.findall(unicodedata.normalize("NFC", text).casefold())


_FILTER_HELP = {
    "tag": "tag:name (or tag:\"two words\")",
    "type": "type:bookmark, type:task, type:note or type:file",
    "is": "is:favorite, is:unread or is:pinned",
    "status": "status:" + ", status:".join(STATUSES),
    "before": "before:2026-01-31",
    "after": "after:2026-01-01",
}


def _read_value(text: str, pos: int) -> tuple[str, int]:
    """A filter's value at ``pos``: a quoted string or the run up to the next space."""
    if pos < len(text) and text[pos] == '"':
        end = text.find('"', pos + 1)
        if end == -1:
            raise QuerySyntaxError('A quote is not closed: add the closing " or remove it.')
        return text[pos + 1:end].strip(), end + 1
    end = pos
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[pos:end], end


def _parse_date(key: str, value: str) -> float:
    try:
        moment = items.parse_time(value, key)
    except items.InvalidInput:
        moment = None
    if moment is None:
        raise QuerySyntaxError(f"{key}: takes a date like 2026-01-31 (or an ISO 8601 "
                               f"date-time), not {value!r}.")
    return moment


def parse_type(value: str) -> str:
    """A type name (``note`` or ``notes``) as the index names it; :class:`QuerySyntaxError`
    for anything else."""
    name = TYPE_ALIASES.get(value.strip().lower())
    if name is None:
        raise QuerySyntaxError(f"type: takes bookmark, task, note or file, not {value!r}.")
    return name


def parse_query(text: Any) -> ParsedQuery:
    """Take a query apart (see the module's description of the language).

    Raises :class:`QuerySyntaxError` for input that cannot be understood. Never returns a
    term without a word token in it."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise QuerySyntaxError("The query must be text.")
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(f"The query is too long: at most {MAX_QUERY_LENGTH} characters.")
    text = _QUERY_CONTROL.sub(" ", text)
    terms: list[Term] = []
    lists: dict[str, list[str]] = {name: [] for name in (
        "tags", "not_tags", "types", "not_types", "statuses", "not_statuses")}
    flags: dict[str, bool] = {}
    dates: dict[str, float] = {}
    count = 0
    pos, n = 0, len(text)
    while pos < n:
        if text[pos].isspace():
            pos += 1
            continue
        negated = False
        if text[pos] == "-":
            negated = True
            pos += 1
            if pos >= n or text[pos].isspace() or text[pos] == "-":
                continue  # a lone "-" excludes nothing
        count += 1
        if count > MAX_TERMS:
            raise QuerySyntaxError(f"The query has too many terms: at most {MAX_TERMS}.")
        match = _FILTER.match(text, pos)
        if match and match.group(1).lower() in _FILTER_HELP:
            key = match.group(1).lower()
            value, pos = _read_value(text, match.end())
            if not value:
                raise QuerySyntaxError(f"{key}: needs a value, like {_FILTER_HELP[key]}.")
            _apply_filter(key, value, negated, lists, flags, dates)
            continue
        if text[pos] == '"':
            end = text.find('"', pos + 1)
            if end == -1:
                raise QuerySyntaxError('A quote is not closed: add the closing " or remove it.')
            tokens = word_tokens(text[pos + 1:end])
            pos = end + 1
            prefix = pos < n and text[pos] == "*"
            if prefix:
                pos += 1
            if tokens:
                terms.append(_term(tokens, prefix, negated))
            continue
        end = pos
        while end < n and not text[end].isspace() and text[end] != '"':
            end += 1
        word, pos = text[pos:end], end
        prefix = word.endswith("*")
        tokens = word_tokens(word.rstrip("*"))
        if not tokens:
            if prefix:
                raise QuerySyntaxError("A * must follow the start of a word, like proj*.")
            continue  # punctuation only: nothing to search for
        terms.append(_term(tokens, prefix, negated))
    return ParsedQuery(
        terms=tuple(dict.fromkeys(terms)),
        tags=tuple(dict.fromkeys(lists["tags"])),
        not_tags=tuple(dict.fromkeys(lists["not_tags"])),
        types=tuple(sorted(set(lists["types"]), key=INDEXED_TYPES.index)),
        not_types=tuple(sorted(set(lists["not_types"]), key=INDEXED_TYPES.index)),
        flags=tuple(sorted(flags.items())),
        statuses=tuple(sorted(set(lists["statuses"]), key=STATUSES.index)),
        not_statuses=tuple(sorted(set(lists["not_statuses"]), key=STATUSES.index)),
        before=dates.get("before"),
        after=dates.get("after"),
    )


def _term(tokens: list[str], prefix: bool, negated: bool) -> Term:
    if prefix:
        if len(tokens[-1]) < MIN_PREFIX:
            raise QuerySyntaxError(f"A prefix needs at least {MIN_PREFIX} characters before "
                                   "the *, like pr*.")
        return Term("prefix", tuple(tokens), negated)
    return Term("phrase" if len(tokens) > 1 else "word", tuple(tokens), negated)


def _apply_filter(key: str, value: str, negated: bool, lists: dict[str, list[str]],
                  flags: dict[str, bool], dates: dict[str, float]) -> None:
    if key == "tag":
        try:
            name = items.normalize_tag_name(value, "tag")
        except items.InvalidInput as exc:
            raise QuerySyntaxError(f"tag: {exc.message}") from None
        lists["not_tags" if negated else "tags"].append(items.tag_key(name))
    elif key == "type":
        lists["not_types" if negated else "types"].append(parse_type(value))
    elif key == "is":
        flag = value.lower()
        if flag not in FLAGS:
            raise QuerySyntaxError(f"is: takes favorite, unread or pinned, not {value!r}.")
        if flags.get(flag, not negated) != (not negated):
            raise QuerySyntaxError(f"is:{flag} and -is:{flag} cannot both hold.")
        flags[flag] = not negated
    elif key == "status":
        status = value.lower()
        if status not in STATUSES:
            raise QuerySyntaxError(f"status: takes {', '.join(STATUSES)}, not {value!r}.")
        lists["not_statuses" if negated else "statuses"].append(status)
    else:  # before, after
        if negated:
            raise QuerySyntaxError(f"-{key}: cannot be negated; use "
                                   f"{'after' if key == 'before' else 'before'}: instead.")
        dates[key] = _parse_date(key, value)


def merge_queries(first: ParsedQuery, second: ParsedQuery) -> ParsedQuery:
    """A query with the terms and filters of both (the narrower date bounds win);
    :class:`QuerySyntaxError` when their ``is:`` filters contradict each other."""
    flags = dict(first.flags)
    for flag, value in second.flags:
        if flags.setdefault(flag, value) != value:
            raise QuerySyntaxError(f"is:{flag} and -is:{flag} cannot both hold.")

    def both(name: str) -> tuple:
        return tuple(dict.fromkeys(getattr(first, name) + getattr(second, name)))

    def bound(name: str, pick: Callable) -> float | None:
        values = [v for v in (getattr(first, name), getattr(second, name)) if v is not None]
        return pick(values) if values else None

    return ParsedQuery(
        terms=both("terms"), tags=both("tags"), not_tags=both("not_tags"),
        types=tuple(sorted(set(both("types")), key=INDEXED_TYPES.index)),
        not_types=tuple(sorted(set(both("not_types")), key=INDEXED_TYPES.index)),
        flags=tuple(sorted(flags.items())),
        statuses=tuple(sorted(set(both("statuses")), key=STATUSES.index)),
        not_statuses=tuple(sorted(set(both("not_statuses")), key=STATUSES.index)),
        after=bound("after", max), before=bound("before", min))


def parse_types(value: Any) -> tuple[str, ...]:
    """Types from a parameter: ``"note,task"``, a list, or ``"all"``/empty for every type."""
    if value is None:
        return ()
    values = value if isinstance(value, (list, tuple)) else str(value).split(",")
    names = []
    for raw in values:
        if not isinstance(raw, str):
            raise InvalidInput("type takes bookmark, task, note or file.", "type")
        raw = raw.strip().lower()
        if raw in ("", "all"):
            continue
        try:
            names.append(parse_type(raw))
        except QuerySyntaxError as exc:
            raise InvalidInput(exc.message, "type") from None
    return tuple(sorted(set(names), key=INDEXED_TYPES.index))


def fts_match(terms: Iterable[Term]) -> str:
    """The FTS5 ``MATCH`` expression for terms: every token double-quoted (so it is a
    string, never an operator or a column name), phrases as one string, prefixes with ``*``;
    positive terms joined by ``AND``, negative ones subtracted with ``NOT``. Only positive
    or only negative terms: their conjunction (or, for negative ones, disjunction) as they
    are, for the caller to use."""
    terms = list(terms)

    def string(term: Term) -> str:
        quoted = '"' + " ".join(t.replace('"', '""') for t in term.tokens) + '"'
        return quoted + " *" if term.kind == "prefix" else quoted

    positive = [string(t) for t in terms if not t.negated]
    negative = [string(t) for t in terms if t.negated]
    if positive and negative:
        return f"({' AND '.join(positive)}) NOT ({' OR '.join(negative)})"
    if positive:
        return " AND ".join(positive)
    return " OR ".join(negative)


def _pg_term(term: Term) -> tuple[str, list]:
    """A PostgreSQL tsquery expression for one term, values bound as parameters."""
    if term.kind == "prefix":
        lexemes = [f"'{t}'" for t in term.tokens]  # tokens are letters and digits only
        lexemes[-1] += ":*"
        return f"to_tsquery('{PG_CONFIG}', %s)", [" <-> ".join(lexemes)]
    if term.kind == "phrase":
        return f"phraseto_tsquery('{PG_CONFIG}', %s)", [" ".join(term.tokens)]
    return f"plainto_tsquery('{PG_CONFIG}', %s)", [term.tokens[0]]


def pg_tsquery(terms: Iterable[Term]) -> tuple[str, list]:
    """The tsquery SQL for terms and its parameters (the shapes of :func:`fts_match`)."""
    positive: list[tuple[str, list]] = []
    negative: list[tuple[str, list]] = []
    for term in terms:
        (negative if term.negated else positive).append(_pg_term(term))
    params = [value for _, values in positive + negative for value in values]
    both = " && ".join(sql for sql, _ in positive), " || ".join(sql for sql, _ in negative)
    if positive and negative:
        return f"(({both[0]}) && !!({both[1]}))", params
    return f"({both[0] or both[1]})", params


# -------------------------------------------------------------------------------- documents


@dataclasses.dataclass
class Document:
    """What the index keeps of one item."""

    item_type: str
    item_id: int
    user_id: int
    title: str
    body: str
    tags: str
    created_at: float
    updated_at: float
    is_favorite: bool = False
    is_unread: bool = False
    is_pinned: bool = False
    status: str | None = None
    deleted: bool = False


def clean_text(text: Any, limit: int = BODY_MAX_CHARS) -> str:
    """Text as indexed: a string, control characters made spaces, at most ``limit``."""
    if not text:
        return ""
    return _CONTROL.sub(" ", str(text)[:limit])


class _HTMLText(HTMLParser):
    """The visible text of an HTML page (``script``, ``style`` and the like skipped)."""

    SKIP = {"script", "style", "noscript", "template", "svg", "head"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skipping += 1
        elif tag == "title" and self._skipping:
            self._skipping -= 1  # keep the page title, inside <head>
            self._title = True

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1
        elif tag == "title" and getattr(self, "_title", False):
            self._title = False
            self._skipping += 1

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The readable text of an HTML document, whitespace collapsed."""
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # malformed markup: keep what was read
        log.debug("could not fully parse an HTML file for the index", exc_info=True)
    return " ".join(" ".join(parser.parts).split())


_file_store = None


def set_file_store(store) -> None:
    """Where file content is read from for the index (a :class:`files.BlobStore`)."""
    global _file_store
    _file_store = store


def is_text_like(name: str, mime_type: str) -> bool:
    """True for files whose content is indexed: textual types and :data:`TEXT_EXTENSIONS`."""
    from .files import is_textual

    base = (mime_type or "").split(";")[0].strip().lower()
    if base == "image/svg+xml":
        return False
    return is_textual(base) or PurePath(name.lower()).suffix in TEXT_EXTENSIONS


def file_text(record: File, store=None) -> str:
    """The indexed text of a file's content ("" if it is not text-like or not readable)."""
    store = store or _file_store
    if store is None or not is_text_like(record.name, record.mime_type):
        return ""
    try:
        with store.open(record.sha256) as blob:
            data = blob.read(FILE_TEXT_BYTES)
    except (OSError, ValueError) as exc:
        log.warning("file %s: its content could not be read for the index: %s", record.id, exc)
        return ""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", "replace")
    else:
        text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    base = record.mime_type.split(";")[0].strip().lower()
    if base in ("text/html", "application/xhtml+xml") or record.name.lower().endswith(
            (".html", ".htm")):
        text = html_to_text(text)
    return text


def document_for(item_type: str, item: Any, tag_names: Iterable[str], *,
                 body: str | None = None, store=None) -> Document:
    """The document of an item. A file's body is its description, then
    :data:`FILE_TEXT_SEPARATOR`, then its text; ``body`` (the text, when already known) saves
    reading the content again."""
    tags = " ".join(tag_names)
    common = dict(item_type=item_type, item_id=item.id, user_id=item.user_id, tags=tags,
                  created_at=item.created_at, updated_at=item.updated_at,
                  deleted=item.deleted_at is not None)
    if item_type == "bookmark":
        return Document(title=clean_text(item.title or item.url, 2000),
                        body=clean_text(f"{item.url}\n{item.description}"),
                        is_favorite=item.is_favorite, is_unread=not item.is_read, **common)
    if item_type == "task":
        return Document(title=clean_text(item.title, 2000), body=clean_text(item.description),
                        status=item.status, **common)
    if item_type == "note":
        return Document(title=clean_text(item.title, 2000), body=clean_text(item.content),
                        is_pinned=item.is_pinned, **common)
    if item_type == "file":
        if body is None:
            body = clean_text(file_text(item, store))
        return Document(title=clean_text(item.name, 2000),
                        body=clean_text(item.description) + FILE_TEXT_SEPARATOR + body, **common)
    raise ValueError(f"not an indexed type: {item_type!r}")


# ------------------------------------------------------------------------------ index writes

_DOC_COLUMNS = ("user_id", "item_type", "item_id", "title", "is_favorite", "is_unread",
                "is_pinned", "status", "created_at", "updated_at", "deleted")

# SQLite: a document's rowid in ``search_fts`` carries what most searches filter on, so that
# FTS5 answers them from its own index without looking each match up (migration m0006):
#
#     rowid = user_id << 40 | search_document.id << 3 | in the trash << 2 | type code
#
# A user's documents are one rowid range, which FTS5 seeks to; the trash bit and the type are
# tested on the rowid; and newer documents have larger rowids, so FTS5's rowid order is
# "most recent first" when read backwards.
_USER_SHIFT = 40
_DOC_SHIFT = 3
_TRASH_BIT = 4
_TYPE_MASK = 3
_DOC_MASK = (1 << (_USER_SHIFT - _DOC_SHIFT)) - 1
_MAX_USER_ID = (1 << (63 - _USER_SHIFT)) - 1
TYPE_CODES = {t: code for code, t in enumerate(INDEXED_TYPES)}
#: The ``search_document`` id of the ``search_fts`` row in a statement.
_DOC_ID_SQL = f"((search_fts.rowid >> {_DOC_SHIFT}) & {_DOC_MASK})"


def fts_rowid(user_id: int, doc_id: int, item_type: str, deleted: bool) -> int:
    """The ``search_fts`` rowid of a document (SQLite)."""
    if not 0 < user_id <= _MAX_USER_ID or not 0 < doc_id <= _DOC_MASK:
        raise ValueError(f"search index: user {user_id} or document {doc_id} out of range")
    return ((user_id << _USER_SHIFT) | (doc_id << _DOC_SHIFT)
            | (_TRASH_BIT if deleted else 0) | TYPE_CODES[item_type])


def user_rowids(user_id: int) -> tuple[int, int]:
    """The first and last ``search_fts`` rowid a user's documents may have (SQLite)."""
    low = user_id << _USER_SHIFT
    return low, low + (1 << _USER_SHIFT) - 1


def _tag_names(item_type: str, item_id: int) -> list[str]:
    cursor = database.execute_sql(
        "SELECT t.name FROM item_tag it JOIN tag t ON t.id = it.tag_id "
        f"WHERE it.item_type = {database.param} AND it.item_id = {database.param} "
        "ORDER BY t.name_key", (item_type, item_id))
    return [row[0] for row in cursor.fetchall()]


def _sqlite_document(item_type: str, item_id: int) -> tuple[int, int] | None:
    """``(document id, search_fts rowid)`` of an indexed item, or None (SQLite)."""
    row = database.execute_sql(
        "SELECT id, user_id, deleted FROM search_document WHERE item_type = ? AND item_id = ?",
        (item_type, item_id)).fetchone()
    if row is None:
        return None
    return row[0], fts_rowid(row[1], row[0], item_type, bool(row[2]))


def _stored_body(item_type: str, item_id: int) -> str | None:
    """A document's indexed body, or None if it is not indexed."""
    if is_postgres():
        row = database.execute_sql(
            "SELECT body FROM search_document WHERE item_type = %s AND item_id = %s",
            (item_type, item_id)).fetchone()
    else:
        found = _sqlite_document(item_type, item_id)
        row = found and database.execute_sql("SELECT body FROM search_fts WHERE rowid = ?",
                                             (found[1],)).fetchone()
    return None if row is None else row[0]


def _pg_words(text: str) -> str:
    """Text as words only, for ``to_tsvector``: PostgreSQL's parser would keep host names,
    URLs and e-mail addresses whole, where FTS5 (and the query parser) split them."""
    return " ".join(_TOKEN.findall(unicodedata.normalize("NFC", text)))


def write_document(doc: Document) -> None:
    """Insert or replace one document (call inside the write's transaction)."""
    values = [getattr(doc, c) for c in _DOC_COLUMNS]
    if is_postgres():
        _write_pg_document(doc, values)
        return
    # SELECT, then INSERT or UPDATE: an upsert with RETURNING costs several times more here.
    found = _sqlite_document(doc.item_type, doc.item_id)
    if found is None:
        doc_id = database.execute_sql(
            f"INSERT INTO search_document ({', '.join(_DOC_COLUMNS)}) "
            f"VALUES ({', '.join(['?'] * len(_DOC_COLUMNS))})", values).lastrowid
    else:
        doc_id, old_rowid = found
        database.execute_sql(
            f"UPDATE search_document SET {', '.join(f'{c} = ?' for c in _DOC_COLUMNS)} "
            "WHERE id = ?", (*values, doc_id))
        database.execute_sql("DELETE FROM search_fts WHERE rowid = ?", (old_rowid,))
    database.execute_sql("INSERT INTO search_fts (rowid, title, body, tags) VALUES (?, ?, ?, ?)",
                         (fts_rowid(doc.user_id, doc_id, doc.item_type, doc.deleted),
                          doc.title, doc.body, doc.tags))


#: Bodies up to this many characters cannot overflow a tsvector (1 MB): a character is at
#: most 4 bytes of UTF-8, and each word of the text costs at most 5 times its bytes in a
#: tsvector (4-byte entry, padding and a 2-byte position for a 1-letter word and its space).
_PG_SAFE_BODY_CHARS = 32_000


def _write_pg_document(doc: Document, values: list) -> None:
    """The PostgreSQL upsert. A tsvector holds at most 1 MB: a body whose words overflow it
    (a large CSV of distinct numbers, say) is indexed by its first half, then quarter...,
    each try in a savepoint so the failed one does not abort the write's transaction (only
    for bodies long enough to overflow: a savepoint costs two more round trips)."""
    config = PG_CONFIG
    sql = (f"INSERT INTO search_document ({', '.join(_DOC_COLUMNS)}, body, tags, tsv) "
           f"VALUES ({', '.join(['%s'] * len(_DOC_COLUMNS))}, %s, %s, "
           f"setweight(to_tsvector('{config}', %s), 'A') || "
           f"setweight(to_tsvector('{config}', %s), 'A') || "
           f"setweight(to_tsvector('{config}', %s), 'B')) "
           "ON CONFLICT (item_type, item_id) DO UPDATE SET "
           + ", ".join(f"{c} = EXCLUDED.{c}" for c in (*_DOC_COLUMNS, "body", "tags", "tsv")))

    def params(body: str) -> tuple:
        return (*values, doc.body, doc.tags, _pg_words(doc.title), _pg_words(doc.tags),
                _pg_words(body))

    body = doc.body
    if len(body) <= _PG_SAFE_BODY_CHARS:
        database.execute_sql(sql, params(body))
        return
    while True:
        try:
            with database.atomic():
                database.execute_sql(sql, params(body))
            return
        except peewee.OperationalError as exc:
            if "too long for tsvector" not in str(exc) or len(body) < 1000:
                raise
            body = body[: len(body) // 2]


def index_item(item_type: str, item: Any, *, store=None) -> None:
    """(Re)index an item from its current row (a file's text is read once, then kept)."""
    body = None
    if item_type == "file":
        stored = _stored_body(item_type, item.id)
        if stored is not None and FILE_TEXT_SEPARATOR in stored:
            body = stored.split(FILE_TEXT_SEPARATOR, 1)[1]
    write_document(document_for(item_type, item, _tag_names(item_type, item.id), body=body,
                                store=store))


def mark_deleted(item_type: str, item: Any) -> None:
    """Flag an item's document as in the trash (its text stays, for a restore). On SQLite
    its ``search_fts`` row moves to the rowid with the trash bit set."""
    found = None if is_postgres() else _sqlite_document(item_type, item.id)
    database.execute_sql(
        f"UPDATE search_document SET deleted = {database.param}, updated_at = {database.param} "
        f"WHERE item_type = {database.param} AND item_id = {database.param}",
        (True, item.updated_at, item_type, item.id))
    if found is not None and not found[1] & _TRASH_BIT:
        database.execute_sql(
            "INSERT INTO search_fts (rowid, title, body, tags) "
            "SELECT ?, title, body, tags FROM search_fts WHERE rowid = ?",
            (found[1] | _TRASH_BIT, found[1]))
        database.execute_sql("DELETE FROM search_fts WHERE rowid = ?", (found[1],))


def remove_item(item_type: str, item_id: int) -> None:
    """Drop an item's document from the index."""
    if not is_postgres():
        found = _sqlite_document(item_type, item_id)
        if found is not None:
            database.execute_sql("DELETE FROM search_fts WHERE rowid = ?", (found[1],))
    database.execute_sql(
        f"DELETE FROM search_document WHERE item_type = {database.param} "
        f"AND item_id = {database.param}", (item_type, item_id))


def on_item_change(op: str, item_type: str, item: Any, user_id: int) -> None:
    """The items' change hook: keep the index in step (inside the write's transaction) and
    invalidate the user's cached answers once it commits."""
    if item_type in INDEXED_TYPES:
        if op in ("create", "update", "restore"):
            index_item(item_type, item)
        elif op == "delete":
            mark_deleted(item_type, item)
        elif op == "purge":
            remove_item(item_type, item.id)
    invalidate_after_commit(user_id)


items.change_hooks.append(on_item_change)

_MODELS: dict[str, type[peewee.Model]] = {"bookmark": Bookmark, "task": Task, "note": Note,
                                          "file": File}


def rebuild_index(*, store=None, batch: int = 1000,
                  progress: Callable[[int], None] | None = None) -> int:
    """Rebuild the whole index from the item tables (trashed items included, flagged);
    returns how many documents it holds. Runs in one transaction."""
    store = store or _file_store
    done = 0
    with database.atomic():
        if not is_postgres():
            database.execute_sql("DELETE FROM search_fts")
        database.execute_sql("DELETE FROM search_document")
        for item_type, model in _MODELS.items():
            last = 0
            while True:
                rows = list(model.select().where(model.id > last).order_by(model.id)
                            .limit(batch))
                if not rows:
                    break
                tags = _tags_by_item(item_type, [r.id for r in rows])
                for row in rows:
                    write_document(document_for(item_type, row, tags.get(row.id, []),
                                                store=store))
                done += len(rows)
                last = rows[-1].id
                if progress is not None:
                    progress(done)
    users = [row[0] for row in database.execute_sql(
        "SELECT DISTINCT user_id FROM search_document").fetchall()]
    for user_id in users:
        invalidate_after_commit(user_id)
    log.info("rebuilt the search index: %d document(s)", done)
    return done


def _tags_by_item(item_type: str, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    if not ids:
        return found
    marks = ", ".join([database.param] * len(ids))
    cursor = database.execute_sql(
        "SELECT it.item_id, t.name FROM item_tag it JOIN tag t ON t.id = it.tag_id "
        f"WHERE it.item_type = {database.param} AND it.item_id IN ({marks}) "
        "ORDER BY t.name_key", (item_type, *ids))
    for item_id, name in cursor.fetchall():
        found.setdefault(item_id, []).append(name)
    return found


def ensure_index(*, store=None) -> int:
    """Build the index if it is empty while items exist (a database upgraded from before
    search); returns how many documents were indexed (0 when nothing was to do)."""
    if SearchDocument.select().exists():
        return 0
    if not any(model.select().exists() for model in _MODELS.values()):
        return 0
    log.info("building the search index for the existing items (once)")
    return rebuild_index(store=store)


# ----------------------------------------------------------------------------- invalidation

_invalidators: list[Callable[[int], None]] = []
_pending = threading.local()


def add_invalidator(callback: Callable[[int], None]) -> None:
    """Call ``callback(user_id)`` after each committed write to a user's items (an
    application bumps the user's search generation in its cache)."""
    _invalidators.append(callback)


def remove_invalidator(callback: Callable[[int], None]) -> None:
    """Stop calling a callback given to :func:`add_invalidator`."""
    if callback in _invalidators:
        _invalidators.remove(callback)


def _invalidate(users: Iterable[int]) -> None:
    for user_id in sorted(set(users)):
        for callback in list(_invalidators):
            try:
                callback(user_id)
            except Exception:  # the write is committed: never fail it afterwards
                log.exception("could not invalidate the cached searches of user %s", user_id)


def invalidate_after_commit(user_id: int) -> None:
    """Invalidate the user's cached searches once the current transaction commits (at once
    outside a transaction); several writes in one transaction invalidate once."""
    if not _invalidators:
        return
    db = database.obj
    if db is None or db.transaction_depth() == 0:
        _invalidate([user_id])
        return
    top = db.top_transaction()
    state = getattr(_pending, "state", None)
    if state is None or state[0] is not top:
        users: set[int] = set()
        state = (top, users)
        _pending.state = state

        def flush(state=state):
            if getattr(_pending, "state", None) is state:
                _pending.state = None
            _invalidate(state[1])

        try:
            db.after_commit(flush)
        except ValueError:  # manual commit mode: no commit callbacks
            _pending.state = None
            _invalidate([user_id])
            return
    state[1].add(user_id)


def generation_namespace(user_id: int) -> str:
    """The cache namespace whose generation invalidates a user's cached searches."""
    return f"search:{user_id}"


# ---------------------------------------------------------------------------------- queries


@dataclasses.dataclass
class _Filters:
    sql: list[str]
    params: list


def _attribute_filters(user_id: int, query: ParsedQuery) -> _Filters:
    """The query's filters on a document's attributes (flags, status, dates, tags), as SQL
    on ``search_document d``; not the user, the trash or the type."""
    p = database.param
    sql: list[str] = []
    params: list = []
    for flag, value in query.flags:
        sql.append(f"d.is_{flag} = {p}")
        params.append(value)
    if query.statuses:
        sql.append(f"d.status IN ({', '.join([p] * len(query.statuses))})")
        params += query.statuses
    if query.not_statuses:
        sql.append(f"(d.status IS NULL OR d.status NOT IN "
                   f"({', '.join([p] * len(query.not_statuses))}))")
        params += query.not_statuses
    if query.after is not None:
        sql.append(f"d.created_at >= {p}")
        params.append(query.after)
    if query.before is not None:
        sql.append(f"d.created_at < {p}")
        params.append(query.before)
    tagged = ("EXISTS (SELECT 1 FROM item_tag it JOIN tag t ON t.id = it.tag_id "
              f"WHERE t.user_id = {p} AND t.name_key = {p} AND it.item_type = d.item_type "
              "AND it.item_id = d.item_id)")
    for key in query.tags:
        sql.append(tagged)
        params += [user_id, key]
    for key in query.not_tags:
        sql.append("NOT " + tagged)
        params += [user_id, key]
    return _Filters(sql, params)


def _filters(user_id: int, query: ParsedQuery, types: Iterable[str] | None = None) -> _Filters:
    """Every filter as SQL on ``search_document d``: the user's live documents, of
    ``types`` when given, passing the query's attribute filters."""
    p = database.param
    sql = [f"d.user_id = {p}", f"d.deleted = {p}"]
    params: list = [user_id, False]
    if types is not None:
        types = list(types)
        sql.append(f"d.item_type IN ({', '.join([p] * len(types))})" if types else "1 = 0")
        params += types
    attributes = _attribute_filters(user_id, query)
    return _Filters(sql + attributes.sql, params + attributes.params)


@dataclasses.dataclass
class _Ranked:
    """One page of a search: ``rows`` are the page's results (see :func:`_result`), ``facets``
    the matches per type."""

    rows: list[dict]
    facets: Counter
    approximate: bool = False
    reason: str | None = None


class _Budget:
    """A deadline for SQLite statements: a progress handler interrupts a statement that
    runs past it, and ``expired`` tells that this, not an error, stopped it."""

    def __init__(self, seconds: float):
        self.deadline = time.perf_counter() + seconds
        self.expired = False
        self.conn = database.connection()

    def _check(self) -> int:
        self.expired = time.perf_counter() > self.deadline
        return 1 if self.expired else 0

    def __enter__(self):
        self.conn.set_progress_handler(self._check, PROGRESS_STEPS)
        return self

    def __exit__(self, exc_type, exc, tb):
        self.conn.set_progress_handler(None, 0)
        return exc_type is sqlite3.OperationalError and self.expired


#: A result's tags as JSON ``[[id, name, color, name_key], ...]`` (SQLite, PostgreSQL).
_TAGS_SQL = ("(SELECT {aggregate}({array}(t.id, t.name, t.color, t.name_key)) "
             "FROM item_tag it JOIN tag t ON t.id = it.tag_id WHERE it.item_type = d.item_type "
             "AND it.item_id = d.item_id AND t.user_id = d.user_id)")
#: A result's columns from ``search_document d`` and ``bookmark b`` (see :func:`_result`),
#: after the FTS5 ones: rowid, snippet and highlighted title (``?`` are the markers).
_SQLITE_ATTRIBUTES = ("d.item_type, d.item_id, d.title, d.created_at, d.updated_at, b.url, "
                      + _TAGS_SQL.format(aggregate="json_group_array", array="json_array"))
_SQLITE_RESULT_COLUMNS = (
    f"search_fts.rowid, snippet(search_fts, 1, ?, ?, '…', {SNIPPET_TOKENS}), "
    f"highlight(search_fts, 0, ?, ?), {_SQLITE_ATTRIBUTES}")
_SQLITE_RESULT_JOIN = (
    f"JOIN search_document d ON d.id = {_DOC_ID_SQL} AND d.user_id = ? "
    "LEFT JOIN bookmark b ON d.item_type = 'bookmark' AND b.id = d.item_id")
_MARKERS = [_OPEN, _CLOSE, _OPEN, _CLOSE]


def _result(row: tuple, score: float) -> dict:
    """A result from a row of (document key, snippet or start of the body, highlighted title
    or None, type, id, title, created, updated, bookmark URL, tags as JSON)."""
    _, body, title_marked, item_type, item_id, title, created, updated, url, tags = row[:10]
    if isinstance(tags, str):
        tags = json.loads(tags) if tags != "[]" else ()
    result = {"type": item_type, "id": item_id, "title": title,
              "title_html": _mark(title_marked) if title_marked else html.escape(title),
              "snippet": _mark(body) if _OPEN in (body or "") else _plain(body),
              "score": round(score, 6),
              "tags": [{"id": t[0], "name": t[1], "color": t[2]}
                       for t in sorted(tags or (), key=lambda t: t[3])],
              "created_at": iso_time(created), "updated_at": iso_time(updated)}
    if item_type == "bookmark":
        result["url"] = result["link"] = url or ""
    else:
        result["link"] = f"/{item_type}s#{item_type}-{item_id}"
    return result


def _sqlite_ranked(user_id: int, query: ParsedQuery, match: str, wanted: set[str],
                   limit: int, offset: int, cap: int, budget: float) -> _Ranked:
    """A ranked page on SQLite, from statements that FTS5 answers from its own index:

    1. how many of the user's live documents match, per type, counting at most ``cap + 1``
       (a walk along FTS5's rowid order, no ranking): the facets and the total;
    2. only when more than ``cap`` match: the rowids of the newest ``cap`` matches, the
       facets among them, and where ranking stops;
    3. the page: FTS5's own ``ORDER BY rank`` over those matches of the wanted types, with
       snippets and the attributes joined for the page's rows only.

    Filters on attributes (``is:``, ``status:``, dates, tags) join ``search_document`` for
    every match. Each statement has the time budget: past it, the newest matches found so
    far are ranked, and should the ranking run out of time too, they are listed unranked."""
    low, high = user_rowids(user_id)
    attributes = _attribute_filters(user_id, query)
    join, join_params = "", []
    if attributes.sql:
        join = f"JOIN search_document d ON d.id = {_DOC_ID_SQL} AND d.user_id = ?"
        join_params = [user_id]

    def where(first: int, types: str = "") -> tuple[str, list]:
        sql = ("search_fts MATCH ? AND search_fts.rowid BETWEEN ? AND ? "
               f"AND (search_fts.rowid & {_TRASH_BIT}) = 0{types}"
               + "".join(f" AND {clause}" for clause in attributes.sql))
        return sql, [match, first, high, *attributes.params]

    def newest_first(count: int, clause: str, clause_params: list, timer: _Budget) -> list[int]:
        found: list[int] = []
        with timer:
            cursor = timer.conn.execute(
                f"SELECT search_fts.rowid FROM search_fts {join} WHERE {clause} "
                "ORDER BY search_fts.rowid DESC LIMIT ?", [*join_params, *clause_params, count])
            while chunk := cursor.fetchmany(1024):
                found.extend(r[0] for r in chunk)
        return found

    codes = sorted(TYPE_CODES[t] for t in wanted)
    types = (f" AND (search_fts.rowid & {_TYPE_MASK}) IN ({', '.join(map(str, codes))})"
             if len(codes) < len(INDEXED_TYPES) else "")
    clause, clause_params = where(low)
    with _Budget(budget) as timer:
        counted = Counter(dict(timer.conn.execute(
            f"SELECT rowid & {_TYPE_MASK}, count(*) FROM (SELECT search_fts.rowid AS rowid "
            f"FROM search_fts {join} WHERE {clause} LIMIT ?) GROUP BY 1",
            [*join_params, *clause_params, cap + 1]).fetchall()))
    approximate, reason, newest = False, None, None
    if timer.expired or sum(counted.values()) > cap:
        # The facets among the newest `cap` matches; the candidates, the newest `cap` of the
        # wanted types (a type filter must not leave out older matches of its type).
        again = _Budget(budget)
        newest = newest_first(cap, clause, clause_params, again)
        counted = Counter(r & _TYPE_MASK for r in newest)
        if types and not again.expired:
            again = _Budget(budget)
            newest = newest_first(cap, *where(low, types), again)
            for code in codes:
                counted[code] = 0
            counted.update(r & _TYPE_MASK for r in newest)
        approximate = True
        if timer.expired or again.expired:
            reason = (f"the search stopped after {budget:g} s and ranked the "
                      f"{len(newest)} most recent matches it found")
        else:
            reason = f"more than {cap} items match; only the {cap} most recent were ranked"
    facets = Counter({INDEXED_TYPES[code]: n for code, n in counted.items()})
    if sum(facets[t] for t in wanted) <= offset:
        return _Ranked([], facets, approximate, reason)
    clause, clause_params = where(newest[-1] if newest else low, types)
    rows: list[dict] = []
    with _Budget(budget) as timer:
        cursor = timer.conn.execute(
            f"SELECT {_SQLITE_RESULT_COLUMNS}, rank FROM search_fts {_SQLITE_RESULT_JOIN} "
            f"WHERE {clause} ORDER BY rank LIMIT ? OFFSET ?",
            [*_MARKERS, user_id, *clause_params, limit, offset])
        rows = [_result(row, -row[-1]) for row in cursor.fetchall()]
    if timer.expired:  # list the newest matches, by date
        if newest is None:
            newest = newest_first(offset + limit, clause, clause_params, _Budget(budget))
        page = [r for r in newest if r & _TYPE_MASK in codes]
        rows = _sqlite_rows(user_id, page[offset:offset + limit], match)
        approximate = True
        reason = (f"the search stopped after {budget:g} s: the newest matches are listed "
                  "by date, not ranked")
    return _Ranked(rows, facets, approximate, reason)


def _sqlite_rows(user_id: int, rowids: list[int], match: str | None) -> list[dict]:
    """Results (score 0) for ``search_fts`` rows, in the order given; snippets around the
    matches of ``match``, or the start of the text when it is None."""
    if not rowids:
        return []
    marks = ", ".join("?" * len(rowids))
    if match is None:
        sql = (f"SELECT search_fts.rowid, substr(search_fts.body, 1, 400), NULL, "
               f"{_SQLITE_ATTRIBUTES} FROM search_fts {_SQLITE_RESULT_JOIN} "
               f"WHERE search_fts.rowid IN ({marks})")
        params = [user_id, *rowids]
    else:
        sql = (f"SELECT {_SQLITE_RESULT_COLUMNS} FROM search_fts {_SQLITE_RESULT_JOIN} "
               f"WHERE search_fts MATCH ? AND search_fts.rowid IN ({marks})")
        params = [*_MARKERS, user_id, match, *rowids]
    found = {row[0]: _result(row, 0.0) for row in database.execute_sql(sql, params)}
    return [found[r] for r in rowids if r in found]


def _pg_ranked(user_id: int, query: ParsedQuery, tsquery: tuple[str, list], wanted: set[str],
               limit: int, offset: int, cap: int) -> _Ranked:
    """A ranked page on PostgreSQL, in the steps of :func:`_sqlite_ranked`: count the matches
    per type (at most ``cap + 1``); past the cap, find the newest ``cap``; then rank with
    ``ts_rank`` in the database and fetch headlines for the page only. The statement
    timeout, not a time budget, bounds each step."""
    expression, tsquery_params = tsquery
    filters = _filters(user_id, query)
    source = (f"FROM search_document d, (SELECT {expression} AS q) q "
              f"WHERE d.tsv @@ q.q AND {' AND '.join(filters.sql)}")
    params = [*tsquery_params, *filters.params]
    selected = [t for t in INDEXED_TYPES if t in wanted]
    typed = f" AND d.item_type IN ({', '.join(['%s'] * len(selected))})" if selected else ""
    counted = Counter(dict(database.execute_sql(
        f"SELECT item_type, count(*) FROM (SELECT d.item_type {source} LIMIT %s) m "
        "GROUP BY item_type", [*params, cap + 1]).fetchall()))
    approximate, reason, candidates = False, None, None
    if sum(counted.values()) > cap:
        # As on SQLite: facets among the newest `cap`, candidates the newest `cap` wanted.
        newest_sql = f"SELECT d.id, d.item_type {source}{{}} ORDER BY d.id DESC LIMIT %s"
        newest = database.execute_sql(newest_sql.format(""), [*params, cap]).fetchall()
        counted = Counter(item_type for _, item_type in newest)
        if len(selected) < len(INDEXED_TYPES):
            newest = database.execute_sql(newest_sql.format(typed),
                                          [*params, *selected, cap]).fetchall()
            for item_type in selected:
                counted[item_type] = 0
            counted.update(item_type for _, item_type in newest)
        candidates = [doc_id for doc_id, _ in newest]
        approximate = True
        reason = f"more than {cap} items match; only the {cap} most recent were ranked"
    facets = counted
    if sum(facets[t] for t in selected) <= offset:
        return _Ranked([], facets, approximate, reason)
    extra, extra_params = typed, list(selected)
    if candidates is not None:
        # By id, not as an id range: the range may hold many more documents than matches.
        extra += " AND d.id = ANY(%s)"
        extra_params.append(candidates)
    rows = database.execute_sql(
        f"SELECT d.id, ts_rank('{{0.1, 0.2, 0.4, 1.0}}', d.tsv, q.q) AS score {source}{extra} "
        "ORDER BY score DESC, d.id DESC LIMIT %s OFFSET %s",
        [*params, *extra_params, limit, offset]).fetchall()
    results = _pg_rows([r[0] for r in rows], {r[0]: float(r[1]) for r in rows}, tsquery)
    return _Ranked(results, facets, approximate, reason)


def _exclusion(user_id: int, filters: _Filters,
               exclude: str | tuple[str, list] | None) -> tuple[str, list]:
    """The WHERE clause of a filter-only query, with the terms to exclude."""
    sql, params = list(filters.sql), list(filters.params)
    if isinstance(exclude, str):
        sql.append(f"d.id NOT IN (SELECT {_DOC_ID_SQL} FROM search_fts WHERE search_fts "
                   "MATCH ? AND search_fts.rowid BETWEEN ? AND ?)")
        params += [exclude, *user_rowids(user_id)]
    elif exclude is not None:
        sql.append(f"NOT d.tsv @@ {exclude[0]}")
        params += exclude[1]
    return " AND ".join(sql), params


def _recent_page(user_id: int, filters: _Filters, exclude, limit: int,
                 offset: int) -> list[tuple[int, str]]:
    """Filter-only queries: a page of the newest matching documents (id, type)."""
    where, params = _exclusion(user_id, filters, exclude)
    return database.execute_sql(
        f"SELECT d.id, d.item_type FROM search_document d WHERE {where} "
        f"ORDER BY d.updated_at DESC, d.id DESC LIMIT {database.param} OFFSET {database.param}",
        [*params, limit, offset]).fetchall()


def _recent_counts(user_id: int, filters: _Filters, exclude) -> Counter:
    """Filter-only queries: how many documents match, per type."""
    where, params = _exclusion(user_id, filters, exclude)
    return Counter({row[0]: row[1] for row in database.execute_sql(
        f"SELECT d.item_type, COUNT(*) FROM search_document d WHERE {where} "
        "GROUP BY d.item_type", params).fetchall()})


def _mark(text: str | None) -> str:
    """Escape text for HTML, turning the highlight markers into ``<mark>`` elements."""
    text = " ".join((text or "").split())
    return html.escape(text).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")


def _plain(text: str | None, length: int = 200) -> str:
    text = " ".join((text or "").split())
    return html.escape(text[:length] + ("…" if len(text) > length else ""))


def _pg_rows(ids: list[int], scores: dict[int, float],
             match: tuple[str, list] | None) -> list[dict]:
    """Results for PostgreSQL documents, in the order given: title (highlighted), snippet,
    type, times and, for bookmarks, the URL. ``match`` is the tsquery (for the snippets), or
    None (no words: the start of the text)."""
    if not ids:
        return []
    marks = ", ".join(["%s"] * len(ids))
    columns = ("d.id, {body}, {title}, d.item_type, d.item_id, d.title, d.created_at, "
               "d.updated_at, b.url, "
               + _TAGS_SQL.format(aggregate="json_agg", array="json_build_array"))
    joins = "LEFT JOIN bookmark b ON d.item_type = 'bookmark' AND b.id = d.item_id"
    if match is None:
        sql = (f"SELECT {columns.format(body='left(d.body, 400)', title='NULL')} "
               f"FROM search_document d {joins} WHERE d.id IN ({marks})")
        params: list = list(ids)
    else:
        options = (f"StartSel={_OPEN}, StopSel={_CLOSE}, MaxWords=30, MinWords=12, "
                   "MaxFragments=1, FragmentDelimiter=\" … \"")
        body = f"ts_headline('{PG_CONFIG}', left(d.body, 100000), q.q, %s)"
        title = f"ts_headline('{PG_CONFIG}', d.title, q.q, %s)"
        sql = (f"SELECT {columns.format(body=body, title=title)} "
               f"FROM search_document d CROSS JOIN (SELECT {match[0]} AS q) q {joins} "
               f"WHERE d.id IN ({marks})")
        params = [options, f"StartSel={_OPEN}, StopSel={_CLOSE}, HighlightAll=true",
                  *match[1], *ids]
    found = {row[0]: _result(row, scores.get(row[0], 0.0))
             for row in database.execute_sql(sql, params).fetchall()}
    return [found[i] for i in ids if i in found]


def search(user_id: int, query: ParsedQuery | str, *, types: Iterable[str] = (),
           limit: int = DEFAULT_LIMIT, offset: int = 0, rank_cap: int = RANK_CAP,
           time_budget: float = TIME_BUDGET) -> dict:
    """Search the user's live items (not the trash).

    ``types`` (from a parameter) narrows the query's own ``type:`` filters. Answers
    ``{query, results, total, facets, limit, offset, approximate, reason, took_ms}``:
    ``results`` ranked best first, each ``{type, id, title, title_html, snippet, score,
    tags, created_at, updated_at, link[, url]}`` with ``title_html`` and ``snippet`` as safe
    HTML whose matches are in ``<mark>``; ``facets`` counts matches per type (whatever the
    type filters); ``total`` counts matches of the selected types. Queries without words
    list the newest matches first (score 0)."""
    started = time.perf_counter()
    if isinstance(query, str):
        query = parse_query(query)
    limit, offset = check_paging(limit, offset)
    wanted = set(query.types or INDEXED_TYPES) - set(query.not_types)
    if types:
        wanted &= set(types)
    answer: dict[str, Any] = {"query": query.canonical(), "results": [], "total": 0,
                              "facets": {t: 0 for t in INDEXED_TYPES}, "limit": limit,
                              "offset": offset, "approximate": False, "reason": None}
    if query.is_empty:
        answer["took_ms"] = _ms(started)
        return answer
    pg = is_postgres()
    positive, negative = query.positive, query.negative
    try:
        # A read: on SQLite a deferred transaction (one snapshot, no write lock).
        with database.atomic() if pg else database.atomic(lock_type="DEFERRED"):
            if pg:
                # psycopg prepares a statement run 5 times, and PostgreSQL may then plan it
                # once for any words: a plan fit for a rare word walks 100 times too many rows
                # for a common one. Search plans for the words it is given.
                database.execute_sql(
                    "SELECT set_config('statement_timeout', %s, true), "
                    "set_config('plan_cache_mode', 'force_custom_plan', true)",
                    (str(STATEMENT_TIMEOUT_MS),))
            if positive and not pg:
                ranked = _sqlite_ranked(user_id, query, fts_match(query.terms), wanted, limit,
                                        offset, rank_cap, time_budget)
                results, facets = ranked.rows, ranked.facets
                answer.update(approximate=ranked.approximate, reason=ranked.reason)
            elif positive:
                ranked = _pg_ranked(user_id, query, pg_tsquery(query.terms), wanted, limit,
                                    offset, rank_cap)
                results, facets = ranked.rows, ranked.facets
                answer.update(approximate=ranked.approximate, reason=ranked.reason)
            else:
                exclude = None
                if negative:
                    exclude = pg_tsquery(negative) if pg else fts_match(negative)
                selected = [t for t in INDEXED_TYPES if t in wanted]
                page = (_recent_page(user_id, _filters(user_id, query, selected), exclude,
                                     limit, offset) if selected else [])
                facets = _recent_counts(user_id, _filters(user_id, query), exclude)
                if pg:
                    results = _pg_rows([r[0] for r in page], {}, None)
                else:
                    results = _sqlite_rows(user_id, [fts_rowid(user_id, doc_id, item_type, False)
                                                     for doc_id, item_type in page], None)
    except peewee.OperationalError as exc:
        if pg and "statement timeout" in str(exc):
            raise SearchTimeout("The search took too long; add words to narrow it.") from exc
        raise
    answer.update(results=results,
                  total=sum(n for t, n in facets.items() if t in wanted),
                  facets={t: facets.get(t, 0) for t in INDEXED_TYPES})
    answer["took_ms"] = _ms(started)
    return answer


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def check_paging(limit: Any, offset: Any) -> tuple[int, int]:
    """``limit`` 1-:data:`MAX_LIMIT` and ``offset`` ≥ 0 as integers, else
    :class:`InvalidInput`."""
    out = []
    for name, value, low, high in (("limit", limit, 1, MAX_LIMIT), ("offset", offset, 0, None)):
        if isinstance(value, bool):
            raise InvalidInput(f"{name} must be a whole number.", name)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name} must be a whole number.", name) from None
        if isinstance(value, float) and not value.is_integer():
            raise InvalidInput(f"{name} must be a whole number.", name)
        if number < low or (high is not None and number > high):
            raise InvalidInput(f"{name} must be from {low}"
                               + (f" to {high}." if high is not None else " up."), name)
        out.append(number)
    return out[0], out[1]


# ------------------------------------------------------------------------------------ cache


def cache_key(cache, user_id: int, query: ParsedQuery, types: Iterable[str], limit: int,
              offset: int) -> str:
    """``search:{user_id}:{generation}:{hash}``: the key of one answer in the cache."""
    generation = cache.generation(generation_namespace(user_id))
    digest = short_hash(json.dumps([query.canonical(), sorted(types), limit, offset]), 16)
    return f"search:{user_id}:{generation}:{digest}"


def cached_search_json(cache, user_id: int, text: Any, *, types: Iterable[str] = (),
                       limit: int = DEFAULT_LIMIT, offset: int = 0, ttl: float = CACHE_TTL,
                       **options) -> tuple[str, bool]:
    """:func:`search` through the cache capability, as JSON text (a JSON object); returns
    ``(text, hit)``. ``text`` is a query string or a :class:`ParsedQuery`.

    The cache keeps the answer serialized, so a hit is sent as it is, without decoding and
    encoding it again. The generation is read before the search runs, so an answer stored
    under it is never older than the last invalidation it was read after."""
    query = text if isinstance(text, ParsedQuery) else parse_query(text)
    types = tuple(types)
    limit, offset = check_paging(limit, offset)
    key = cache_key(cache, user_id, query, types, limit, offset)
    body = cache.get(key)
    if isinstance(body, str):
        return body, True
    answer = search(user_id, query, types=types, limit=limit, offset=offset, **options)
    body = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
    cache.set(key, body, ttl)
    return body, False


# --------------------------------------------------------------------------- saved searches


def _saved_name(value: Any) -> str:
    if not isinstance(value, str) or not " ".join(value.split()):
        raise InvalidInput("Give the saved search a name.", "name")
    name = " ".join(value.split())
    if len(name) > SAVED_NAME_MAX:
        raise InvalidInput(f"A name may have at most {SAVED_NAME_MAX} characters.", "name")
    return name


def _saved_query(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Enter the query to save.", "query")
    try:
        parsed = parse_query(value)
    except QuerySyntaxError as exc:
        raise InvalidInput(exc.message, "query") from None
    if parsed.is_empty:
        raise InvalidInput("The query has nothing to search for.", "query")
    return value.strip()


def list_saved_searches(user_id: int) -> list[SavedSearch]:
    """The user's saved searches by name."""
    return list(SavedSearch.select().where(SavedSearch.user == user_id)
                .order_by(SavedSearch.name_key, SavedSearch.id))


def get_saved_search(user_id: int, saved_id: Any) -> SavedSearch:
    """The user's saved search, else :class:`NotFound`."""
    if isinstance(saved_id, bool) or not isinstance(saved_id, int):
        raise NotFound("saved search not found")
    saved = SavedSearch.get_or_none((SavedSearch.id == saved_id) & (SavedSearch.user == user_id))
    if saved is None:
        raise NotFound("saved search not found")
    return saved


def create_saved_search(user_id: int, data: Mapping[str, Any], *, now: float) -> SavedSearch:
    """Save ``{name, query}``; the query must parse; names are unique per user (any case)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    name, query = _saved_name(data.get("name")), _saved_query(data.get("query"))
    try:
        with database.atomic():
            return SavedSearch.create(user=user_id, name=name, name_key=name.casefold(),
                                      query=query, created_at=now, updated_at=now)
    except peewee.IntegrityError:
        raise Conflict("You already have a saved search with this name.", "name") from None


def update_saved_search(user_id: int, saved_id: int, data: Mapping[str, Any], *,
                        now: float) -> SavedSearch:
    """Rename a saved search and/or change its query (``{name?, query?}``)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    saved = get_saved_search(user_id, saved_id)
    if "name" in data:
        saved.name = _saved_name(data["name"])
        saved.name_key = saved.name.casefold()
    if "query" in data:
        saved.query = _saved_query(data["query"])
    saved.updated_at = now
    try:
        with database.atomic():
            saved.save()
    except peewee.IntegrityError:
        raise Conflict("You already have a saved search with this name.", "name") from None
    return saved


def delete_saved_search(user_id: int, saved_id: int) -> None:
    """Delete a saved search."""
    get_saved_search(user_id, saved_id).delete_instance()


def saved_search_to_json(saved: SavedSearch) -> dict:
    """A saved search as the API shows it."""
    return {"id": saved.id, "name": saved.name, "query": saved.query,
            "created_at": iso_time(saved.created_at), "updated_at": iso_time(saved.updated_at)}

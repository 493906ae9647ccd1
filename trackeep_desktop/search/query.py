"""The search query language: errors, limits, and :func:`parse_query`, a pure function from
the text a user typed to a :class:`ParsedQuery` (terms, phrases, filters)."""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from trackeep_desktop import errors, items
from trackeep_desktop.accounts.users import iso_time

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


#: Seconds a search answer stays in the cache (docs/architecture.md, the caching flow: 5 minutes).
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



class SearchError(errors.DomainError):
    """A request the search domain refuses; ``message`` is fit to show the user."""


class QuerySyntaxError(SearchError, errors.Invalid):
    """The query cannot be understood (answered 400, field ``q``)."""

    field = "q"
    reason = "invalid_query"


class InvalidInput(SearchError, errors.Invalid):
    """A parameter or a saved search's field is malformed (answered 400)."""

    reason = "invalid"


class NotFound(SearchError, errors.NotFound):
    """No such saved search for this user (answered 404)."""


class Conflict(SearchError, errors.Conflict):
    """A saved search of this name exists already (answered 409)."""

    reason = "duplicate"


class SearchTimeout(SearchError, errors.Unavailable):
    """The database took longer than :data:`STATEMENT_TIMEOUT_MS` (answered 503)."""


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

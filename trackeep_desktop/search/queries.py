"""Queries: ranked matches with snippets and highlights, within a time budget, on SQLite and
PostgreSQL."""

from __future__ import annotations

import dataclasses
import html
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import peewee

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.db import database, is_postgres

from .index import _DOC_ID_SQL, _TRASH_BIT, _TYPE_MASK, TYPE_CODES, fts_rowid, user_rowids
from .query import (
    _CLOSE,
    _OPEN,
    DEFAULT_LIMIT,
    INDEXED_TYPES,
    MAX_LIMIT,
    PG_CONFIG,
    PROGRESS_STEPS,
    RANK_CAP,
    SNIPPET_TOKENS,
    STATEMENT_TIMEOUT_MS,
    TIME_BUDGET,
    InvalidInput,
    ParsedQuery,
    SearchTimeout,
    fts_match,
    parse_query,
    pg_tsquery,
)


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
        # A bookmark's text starts with its URL, which the result shows on its own line: a
        # snippet with no match in it is the description alone (else an untitled bookmark
        # showed its URL three times: as the title, the URL and the snippet).
        if url and _OPEN not in (body or "") and " ".join((body or "").split()).startswith(url):
            result["snippet"] = _plain(" ".join(body.split())[len(url):])
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
    params: list[Any]
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
    extra = typed
    extra_params: list[Any] = list(selected)
    if candidates is not None:
        # By id, not as an id range: the range may hold many more documents than matches.
        extra += " AND d.id = ANY(%s)"
        extra_params.append(candidates)
    rows = database.execute_sql(
        # Title and tags are both weight A in the vector; a match in the title counts twice,
        # as on SQLite (bm25 weights title 10, tags 5), so a tag-only match never outranks it.
        f"SELECT d.id, ts_rank('{{0.1, 0.2, 0.4, 1.0}}', d.tsv, q.q) * CASE WHEN "
        f"to_tsvector('{PG_CONFIG}', d.title) @@ q.q THEN 2 ELSE 1 END AS score "
        f"{source}{extra} "
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
                              "facets": dict.fromkeys(INDEXED_TYPES, 0), "limit": limit,
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

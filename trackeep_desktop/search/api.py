"""The search API under ``/api/v1`` and the search page at ``/search``.

* ``GET /search?q=&type=&limit=&offset=``: ranked results with highlighted snippets, counts
  per type (``facets``) and paging (``limit`` 1-100, default 20). The query language is
  described in :mod:`trackeep_desktop.search`; a query it cannot understand is a 400 with a
  message saying why.
* ``POST /search/enhanced``: the original Trackeep shape, ``{query, content_type, tags,
  date_range: {start, end}, limit, offset}`` → ``{results, total, query, took,
  aggregations}``.
* ``/search/saved``: saved searches (``{name, query}``): list, create, read, rename or change
  (``PATCH``), delete, and run (``GET /search/saved/{id}/run``).

Answers are cached per user and query for five minutes in the cache capability (see
:func:`trackeep_desktop.search.cached_search_json`); ``cached`` says whether this one came from
the cache. Each write to a user's items invalidates them on every instance. Reads need the
``read`` scope (the enhanced search too, though it is a POST); saving, changing and deleting
saved searches need ``account``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from prometheus_client import Counter, Histogram

from trackeep_desktop import items, search
from trackeep_desktop.storage import changes
from trackeep_desktop.storage.db import connection
from trackeep_desktop.web import openapi
from trackeep_desktop.web.auth import current_user, now, page_login_required, require_scope
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.observability import LATENCY_BUCKETS
from trackeep_desktop.web.openapi import api_doc, query_param
from trackeep_desktop.web.requests import json_body

log = logging.getLogger(__name__)

bp = Blueprint("search_api", __name__)
#: The search page at ``/search`` (registered without a prefix).
page_bp = Blueprint("search_web", __name__)


# ----------------------------------------------------------------------------- app wiring


class SearchMetrics:
    """Search figures for ``/metrics``, in the application's registry."""

    def __init__(self, registry):
        self.queries = Counter("trackeep_search_queries", "Search requests by cache outcome.",
                               ["cache"], registry=registry)
        self.latency = Histogram("trackeep_search_duration_seconds",
                                 "Time to answer a search, by cache outcome.", ["cache"],
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.approximate = Counter("trackeep_search_approximate",
                                   "Searches whose ranking was capped (very common terms).",
                                   registry=registry)


def init_app(app: Flask, state) -> None:
    """The search API and page, their metrics; the index is built once if the database has
    items but no index (an upgraded install)."""
    app.register_blueprint(bp, url_prefix="/api/v1")
    app.register_blueprint(page_bp)
    app.extensions["trackeep_search"] = SearchMetrics(state.metrics.registry)
    with connection(state.db), changes.use_pipeline(state.pipeline):
        built = search.ensure_index(store=state.blob_store)
    if built:
        log.info("indexed %d item(s) for search", built)


# --------------------------------------------------------------------------------- helpers


def run_search_json(text: Any, *, types: Any = None, limit: Any = search.DEFAULT_LIMIT,
                    offset: Any = 0, extra: search.ParsedQuery | None = None) -> str:
    """Search as the current user through the cache: the answer as JSON text, with ``took``
    (ms) and ``cached``. ``extra`` adds filters to the parsed query (the enhanced search's
    fields)."""
    started = time.perf_counter()
    state = current_app.extensions["trackeep"]
    query = search.parse_query(text)
    if extra is not None:
        query = search.merge_queries(query, extra)
    body, hit = search.cached_search_json(
        state.capabilities.cache, current_user().id, query,
        types=search.parse_types(types), limit=limit, offset=offset)
    took = time.perf_counter() - started
    metrics = current_app.extensions.get("trackeep_search")
    if metrics is not None:
        outcome = "hit" if hit else "miss"
        metrics.queries.labels(outcome).inc()
        metrics.latency.labels(outcome).observe(took)
        # (a string value cannot hold this: its quotes would be escaped)
        if not hit and '"approximate":true' in body:
            metrics.approximate.inc()
    # The answer is a JSON object: its closing brace makes room for the two fields.
    return f'{body[:-1]},"took":{round(took * 1000, 3)},"cached":{"true" if hit else "false"}}}'


def run_search(text: Any, **options) -> dict:
    """:func:`run_search_json`, decoded."""
    return json.loads(run_search_json(text, **options))


def _int_arg(name: str, default: int) -> Any:
    value = request.args.get(name)
    return default if value is None or value == "" else value


# ----------------------------------------------------------------------------- schemas

SEARCH_RESULT = openapi.schema("SearchResult", {"type": "object", "properties": {
    "type": {"type": "string", "enum": list(search.INDEXED_TYPES)},
    "id": {"type": "integer"},
    "title": {"type": "string"},
    "title_html": {"type": "string", "description": "the title, HTML-escaped, matches in "
                   "<mark>"},
    "snippet": {"type": "string", "description": "a passage, HTML-escaped, matches in <mark>"},
    "score": {"type": "number", "description": "relevance, higher is better (0 for "
              "queries without words)"},
    "tags": {"type": "array", "items": openapi.ref("TagBrief")},
    "url": {"type": "string", "description": "bookmarks only"},
    "link": {"type": "string", "description": "where the item is shown"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
}})
FACETS = {"type": "object", "description": "matches per type, whatever the type filters",
          "properties": {t: {"type": "integer"} for t in search.INDEXED_TYPES}}
SEARCH_ANSWER = openapi.schema("SearchAnswer", {"type": "object", "properties": {
    "query": {"type": "string", "description": "the query as understood, in normal form"},
    "results": {"type": "array", "items": SEARCH_RESULT},
    "total": {"type": "integer"},
    "facets": FACETS,
    "limit": {"type": "integer"}, "offset": {"type": "integer"},
    "approximate": {"type": "boolean", "description": "true when only the most recent "
                    "matches were ranked (very common terms)"},
    "reason": {"type": "string", "nullable": True, "description": "why it is approximate"},
    "took": {"type": "number", "description": "milliseconds"},
    "cached": {"type": "boolean"},
}})
ENHANCED_INPUT = openapi.schema("EnhancedSearchInput", {"type": "object", "properties": {
    "query": {"type": "string", "maxLength": search.MAX_QUERY_LENGTH},
    "content_type": {"type": "string", "description": "all, bookmarks, tasks, notes or files "
                     "(singular too; comma-separated or a list)"},
    "tags": {"type": "array", "items": {"type": "string"}, "description": "items carry all"},
    "date_range": {"type": "object", "properties": {
        "start": {"type": "string", "format": "date"}, "end": {"type": "string",
                                                               "format": "date"}},
        "description": "creation date, both ends included (from/to accepted too)"},
    "limit": {"type": "integer", "minimum": 1, "maximum": search.MAX_LIMIT},
    "offset": {"type": "integer", "minimum": 0},
}})
ENHANCED_ANSWER = openapi.schema("EnhancedSearchAnswer", {"type": "object", "properties": {
    "results": {"type": "array", "items": SEARCH_RESULT},
    "total": {"type": "integer"},
    "query": {"type": "string"},
    "took": {"type": "number", "description": "milliseconds"},
    "aggregations": {"type": "object", "properties": {"content_types": FACETS}},
    "approximate": {"type": "boolean"}, "reason": {"type": "string", "nullable": True},
    "limit": {"type": "integer"}, "offset": {"type": "integer"}, "cached": {"type": "boolean"},
}})
SAVED = openapi.schema("SavedSearch", {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "query": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
}})
SAVED_INPUT = openapi.schema("SavedSearchInput", {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": search.SAVED_NAME_MAX},
    "query": {"type": "string", "maxLength": search.MAX_QUERY_LENGTH},
}, "required": ["name", "query"]})
PAGING = [
    query_param("limit", f"results per page, 1-{search.MAX_LIMIT} (default "
                f"{search.DEFAULT_LIMIT})", {"type": "integer", "minimum": 1,
                                             "maximum": search.MAX_LIMIT}),
    query_param("offset", "results to skip", {"type": "integer", "minimum": 0}),
]


# ------------------------------------------------------------------------------- search


@bp.get("/search")
@api_doc(response=SEARCH_ANSWER, params=[
    query_param("q", "the query: words, \"phrases\", prefix*, -exclude, tag:, type:, is:, "
                "status:, before:, after:"),
    query_param("type", "bookmark, task, note, file (comma-separated); all by default"),
    *PAGING], responses={400: "the query cannot be understood"})
@require_scope("read")
def search_items():
    """Search bookmarks, tasks, notes and files, best matches first."""
    body = run_search_json(request.args.get("q", ""), types=request.args.get("type"),
                           limit=_int_arg("limit", search.DEFAULT_LIMIT),
                           offset=_int_arg("offset", 0))
    return current_app.response_class(body, mimetype="application/json")


def _date_range(value: Any) -> search.ParsedQuery:
    if value is None:
        return search.ParsedQuery()
    if not isinstance(value, dict):
        raise ApiError(400, "date_range is an object {start, end}.", field="date_range")
    bounds: dict[str, float | None] = {}
    for key, names in (("after", ("start", "from")), ("before", ("end", "to"))):
        raw = next((value[n] for n in names if value.get(n) not in (None, "")), None)
        try:
            moment = items.parse_time(raw, "date_range")
        except items.InvalidInput as exc:
            raise ApiError(400, exc.message, field="date_range") from exc
        if moment is not None and key == "before" and isinstance(raw, str) and len(
                raw.strip()) == 10:
            moment += 86400  # a date as the end: the whole day is in the range
        bounds[key] = moment
    return search.ParsedQuery(after=bounds["after"], before=bounds["before"])


@bp.post("/search/enhanced")
@api_doc(body=ENHANCED_INPUT, response=ENHANCED_ANSWER,
         responses={400: "the query or a field cannot be understood"})
@require_scope("read")
def enhanced_search():
    """Search with the original client's request shape.

    ``tags`` keep items carrying all of them; ``content_type`` narrows the types; the
    ``date_range`` is on the creation date. Answers ``aggregations.content_types`` (counts
    per type)."""
    body = json_body()
    text = body.get("query") or ""
    extra = _date_range(body.get("date_range"))
    tags = body.get("tags") or []
    try:
        names = items.parse_tag_names(tags, "tags")
    except items.InvalidInput as exc:
        raise search.InvalidInput(exc.message, "tags") from exc
    extra = search.merge_queries(extra, search.ParsedQuery(
        tags=tuple(items.tag_key(n) for n in names)))
    answer = run_search(text, types=body.get("content_type"),
                        limit=body.get("limit", search.DEFAULT_LIMIT),
                        offset=body.get("offset", 0), extra=extra)
    return jsonify({
        "results": answer["results"], "total": answer["total"], "query": text,
        "took": answer["took"], "aggregations": {"content_types": answer["facets"]},
        "approximate": answer["approximate"], "reason": answer["reason"],
        "limit": answer["limit"], "offset": answer["offset"], "cached": answer["cached"],
    })


# ------------------------------------------------------------------------ saved searches


@bp.get("/search/saved")
@api_doc(response=SAVED, array=True)
@require_scope("read")
def list_saved():
    """The saved searches, by name."""
    return jsonify([search.saved_search_to_json(s)
                    for s in search.list_saved_searches(current_user().id)])


@bp.post("/search/saved")
@api_doc(body=SAVED_INPUT, response=SAVED, status=201,
         responses={400: "no name, or a query that cannot be understood",
                    409: "a saved search has this name or this query"})
@require_scope("account")
def create_saved():
    """Save a search under a name."""
    saved = search.create_saved_search(current_user().id, json_body(), now=now())
    return jsonify(search.saved_search_to_json(saved)), 201


@bp.get("/search/saved/<id:saved_id>")
@api_doc(response=SAVED)
@require_scope("read")
def get_saved(saved_id: int):
    """One saved search."""
    saved = search.get_saved_search(current_user().id, saved_id)
    return jsonify(search.saved_search_to_json(saved))


@bp.patch("/search/saved/<id:saved_id>")
@api_doc(body=SAVED_INPUT, response=SAVED,
         responses={409: "a saved search has this name or this query"})
@require_scope("account")
def update_saved(saved_id: int):
    """Rename a saved search or change its query (``{name?, query?}``)."""
    search.get_saved_search(current_user().id, saved_id)  # 404 before reading the body
    saved = search.update_saved_search(current_user().id, saved_id, json_body(),
                                       now=now())
    return jsonify(search.saved_search_to_json(saved))


@bp.delete("/search/saved/<id:saved_id>")
@api_doc(response=openapi.ref("Message"))
@require_scope("account")
def delete_saved(saved_id: int):
    """Delete a saved search."""
    search.delete_saved_search(current_user().id, saved_id)
    return jsonify({"message": "The saved search is deleted.", "id": saved_id})


@bp.route("/search/saved/<id:saved_id>/run", methods=["GET", "POST"])  # POST: the original
@api_doc(response=SEARCH_ANSWER, params=[
    query_param("type", "bookmark, task, note, file (comma-separated)"), *PAGING])
@require_scope("read")
def run_saved(saved_id: int):
    """Run a saved search (the answer of ``GET /search``)."""
    saved = search.get_saved_search(current_user().id, saved_id)
    answer = run_search(saved.query, types=request.args.get("type"),
                        limit=_int_arg("limit", search.DEFAULT_LIMIT),
                        offset=_int_arg("offset", 0))
    return jsonify({**answer, "saved_search": search.saved_search_to_json(saved)})


# ------------------------------------------------------------------------------- the page


@page_bp.get("/search")
@page_login_required
def search_page():
    """The results page: the query in the header's box, results as you type."""
    saved = search.list_saved_searches(current_user().id)
    current = next((s for s in saved if s.query == request.args.get("q", "").strip()), None)
    return render_template("search/results.html", query=request.args.get("q", ""),
                           type=request.args.get("type", ""), current_saved=current,
                           types=search.INDEXED_TYPES)


@page_bp.app_template_global()
def saved_searches() -> list[dict]:
    """The signed-in user's saved searches for the sidebar (``[]`` when signed out)."""
    user = current_user()
    if user is None:
        return []
    return [search.saved_search_to_json(s) for s in search.list_saved_searches(user.id)]


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
  a type, without a look-up per match. :func:`index_subscriber` is the change pipeline's
  in-transaction subscriber (:mod:`trackeep_desktop.storage.changes`), so every create,
  update, move to the trash, restore, purge and import updates the index inside the same
  transaction as the write. Bookmarks index title, URL and description (the fetched
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
  capability under ``search:{user_id}:{generation}:{content_version}:{hash}`` for
  :data:`CACHE_TTL` seconds. The user's *content version* is read from the database with each
  search (one primary-key query): every write to the user's data bumps it inside its own
  transaction (the pipeline's in-transaction subscriber
  :func:`~trackeep_desktop.storage.versions.content_version_subscriber`), so once a write
  commits, in whichever process (a server, ``trackeep import``, another server on the same
  database, with or without Redis), no process serves an answer from before it. The
  *generation* (the ``search:{user_id}`` namespace) is bumped too, after the commit, by the
  after-commit subscriber :func:`invalidation_subscriber` of the application that wrote
  (shared through Redis; in memory, per process).

Saved searches (a name and a query per user) live here too: :func:`create_saved_search` and
friends.
"""

from trackeep_desktop.search.cache import (
    cached_search_json,
)
from trackeep_desktop.search.index import (
    ensure_index,
    generation_namespace,
    rebuild_index,
)
from trackeep_desktop.search.queries import (
    _Budget,
    search,
)
from trackeep_desktop.search.query import (
    DEFAULT_LIMIT,
    INDEXED_TYPES,
    MAX_LIMIT,
    MAX_QUERY_LENGTH,
    PG_CONFIG,
    RANK_CAP,
    SAVED_NAME_MAX,
    Conflict,
    InvalidInput,
    NotFound,
    ParsedQuery,
    QuerySyntaxError,
    SearchTimeout,
    fts_match,
    merge_queries,
    parse_query,
    parse_types,
    pg_tsquery,
)
from trackeep_desktop.search.saved import (
    create_saved_search,
    delete_saved_search,
    get_saved_search,
    list_saved_searches,
    saved_search_to_json,
    update_saved_search,
)

__all__ = [
    "DEFAULT_LIMIT",
    "INDEXED_TYPES",
    "MAX_LIMIT",
    "MAX_QUERY_LENGTH",
    "PG_CONFIG",
    "RANK_CAP",
    "SAVED_NAME_MAX",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "ParsedQuery",
    "QuerySyntaxError",
    "SearchTimeout",
    "_Budget",
    "cached_search_json",
    "create_saved_search",
    "delete_saved_search",
    "ensure_index",
    "fts_match",
    "generation_namespace",
    "get_saved_search",
    "list_saved_searches",
    "merge_queries",
    "parse_query",
    "parse_types",
    "pg_tsquery",
    "rebuild_index",
    "saved_search_to_json",
    "search",
    "update_saved_search",
]

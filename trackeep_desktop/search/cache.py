"""Cached search: answers kept in the cache capability for five minutes under
``tk:cache:search:{user_id}:{generation}:{content_version}:{hash}``.

Two things in the key make an answer stale once the user's data changes:

* the user's **content version**, read from the database with each search (one primary-key
  query, :func:`trackeep_desktop.storage.versions.content_version`): every committed write
  bumps it inside its own transaction, whichever process made it, so a write by the CLI's
  ``trackeep import`` or by another server on the same database makes this process's entries
  unreachable too, embedded mode (an in-memory cache per process) included;
* the user's **generation** in the cache capability, bumped after each commit by this
  process's :func:`invalidation_subscriber` (shared by every instance with Redis; in memory,
  only this process's writes bump it). The content version alone would do; the generation
  also lets a tool or a benchmark drop a user's answers without writing
  (``cache.bump_generation``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from trackeep_desktop.capabilities.keys import short_hash
from trackeep_desktop.storage.changes import ChangeSet
from trackeep_desktop.storage.versions import content_version

from .index import generation_namespace
from .queries import check_paging, search
from .query import CACHE_TTL, DEFAULT_LIMIT, ParsedQuery, parse_query

log = logging.getLogger(__name__)


def cache_key(cache, user_id: int, query: ParsedQuery, types: Iterable[str], limit: int,
              offset: int) -> str:
    """``search:{user_id}:{generation}:{content_version}:{hash}``: the key of one answer in
    the cache. The hash covers the query, the paging and the account's creation time (an id
    SQLite gives again after an account's deletion starts with other keys)."""
    generation = cache.generation(generation_namespace(user_id))
    version, created_at = content_version(user_id)
    digest = short_hash(json.dumps([query.canonical(), sorted(types), limit, offset,
                                    created_at]), 16)
    return f"search:{user_id}:{generation}:{version}:{digest}"


def cached_search_json(cache, user_id: int, text: Any, *, types: Iterable[str] = (),
                       limit: int = DEFAULT_LIMIT, offset: int = 0, ttl: float = CACHE_TTL,
                       **options) -> tuple[str, bool]:
    """:func:`search` through the cache capability, as JSON text (a JSON object); returns
    ``(text, hit)``. ``text`` is a query string or a :class:`ParsedQuery`.

    The cache keeps the answer serialized, so a hit is sent as it is, without decoding and
    encoding it again. The generation and the content version are read before the search
    runs, so an answer stored under them is never older than the data they were read from
    (a write that commits in between gives the next search a new key)."""
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


def invalidation_subscriber(cache) -> Callable[[ChangeSet], None]:
    """The pipeline's after-commit subscriber that bumps the generation in ``cache`` of every
    user whose data changed. The content version in the key already makes their answers stale
    (in every process: it is in the database); this also drops them from the generation's
    side, shared by every instance with Redis."""

    def invalidate(change_set: ChangeSet) -> None:
        for user_id in sorted(change_set.users()):
            try:
                cache.bump_generation(generation_namespace(user_id))
            except Exception:  # the write is committed: never fail it afterwards
                log.exception("could not invalidate the cached searches of user %s", user_id)

    return invalidate

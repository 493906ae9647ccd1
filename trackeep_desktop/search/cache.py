"""Cached search: results kept in the cache capability for five minutes under
``tk:cache:search:{user_id}:{hash}``, made stale by each write through the user's generation."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from trackeep_desktop.capabilities.keys import short_hash
from trackeep_desktop.storage.changes import ChangeSet

from .index import generation_namespace
from .queries import check_paging, search
from .query import CACHE_TTL, DEFAULT_LIMIT, ParsedQuery, parse_query

log = logging.getLogger(__name__)


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


def invalidation_subscriber(cache) -> Callable[[ChangeSet], None]:
    """The pipeline's after-commit subscriber that makes the cached answers of every user
    whose data changed stale (a bump of the user's generation in ``cache``: with Redis the
    generation is shared, so no instance answers from a stale entry)."""

    def invalidate(change_set: ChangeSet) -> None:
        for user_id in sorted(change_set.users()):
            try:
                cache.bump_generation(generation_namespace(user_id))
            except Exception:  # the write is committed: never fail it afterwards
                log.exception("could not invalidate the cached searches of user %s", user_id)

    return invalidate

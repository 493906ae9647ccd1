"""Bookmarks: create, update (duplicate URLs refused unless asked for), fetched metadata,
and their JSON."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.db import database, is_postgres
from trackeep_desktop.storage.models import Bookmark, Tag

from . import counts, rows
from .fields import BOOKMARK_FIELDS, _clean, _live, url_hash
from .rows import model_row
from .tags import _tag_brief, parse_tag_names, set_tags
from .types import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    DuplicateBookmark,
    InvalidInput,
    write_transaction,
)


def lock_url(user_id: int, url: str) -> None:
    """Serialize, until this transaction ends, every write of this user's bookmarks with this
    URL, so the duplicate check and the insert are one step. SQLite already serializes
    writers (every transaction begins IMMEDIATE); PostgreSQL takes a transaction-level
    advisory lock keyed by the user and the URL's hash."""
    if not is_postgres():
        return
    digest = hashlib.sha256(f"bookmark-url:{user_id}:{url_hash(url)}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (key,))


def find_duplicate(user_id: int, url: str, exclude_id: int | None = None) -> Bookmark | None:
    """The user's live bookmark with this (normalized) URL, if any. Every save asks, and
    almost always finds none: the question is one written-out statement on the
    ``(user_id, url_hash)`` index, the model read only for a bookmark found."""
    found = rows.scalar(
        "SELECT id FROM bookmark WHERE user_id = ? AND url_hash = ? AND deleted_at IS NULL "
        "AND id <> ? ORDER BY id LIMIT 1", (user_id, url_hash(url), exclude_id or 0))
    return None if found is None else Bookmark.get_by_id(found)


def _tag_input(data: Mapping[str, Any]) -> list[str] | None:
    return parse_tag_names(data["tags"]) if "tags" in data else None


def create_bookmark(user_id: int, data: Mapping[str, Any], *, now: float,
                    allow_duplicate: bool = False, fetch_metadata: bool = False) -> Bookmark:
    """Save a bookmark ``{url, title?, description?, favicon_url?, is_favorite?, is_read?,
    is_public?, tags?}``. ``fetch_metadata`` marks it ``pending`` for the background fetch
    (see :mod:`trackeep_desktop.metadata`). Raises :class:`DuplicateBookmark` when the URL is
    saved already, unless ``allow_duplicate``."""
    values = _clean(BOOKMARK_FIELDS, data)
    if "url" not in values:
        raise InvalidInput("Enter the URL of the page.", "url", "required")
    tags = _tag_input(data)
    with write_transaction():
        lock_url(user_id, values["url"])
        if not allow_duplicate:
            existing = find_duplicate(user_id, values["url"])
            if existing is not None:
                raise DuplicateBookmark(existing)
        bookmark = Bookmark.create(
            user=user_id, url_hash=url_hash(values["url"]),
            read_at=now if values.get("is_read") else None,
            fetch_status="pending" if fetch_metadata else "skipped",
            created_at=now, updated_at=now, **values)
        if tags:
            set_tags(user_id, "bookmark", bookmark.id, tags, now, new_item=True)
        counts.added(user_id, "bookmark", bookmark)
        record_change(user_id, "bookmark", "created", bookmark)
    return bookmark


def update_bookmark(user_id: int, bookmark_id: int, data: Mapping[str, Any], *, now: float,
                    allow_duplicate: bool = False) -> Bookmark:
    """Change the fields present in ``data`` (see :func:`create_bookmark`); marking it read
    sets ``read_at``, unread clears it."""
    values = _clean(BOOKMARK_FIELDS, data)
    tags = _tag_input(data)
    with write_transaction():
        bookmark = _live(Bookmark, user_id, bookmark_id, "bookmark")
        before = counts.snapshot("bookmark", bookmark)
        if "url" in values and values["url"] != bookmark.url:
            lock_url(user_id, values["url"])
            if not allow_duplicate:
                existing = find_duplicate(user_id, values["url"], exclude_id=bookmark.id)
                if existing is not None:
                    raise DuplicateBookmark(existing)
            bookmark.url_hash = url_hash(values["url"])
        if "is_read" in values and values["is_read"] != bookmark.is_read:
            bookmark.read_at = now if values["is_read"] else None
        for name, value in values.items():
            setattr(bookmark, name, value)
        bookmark.updated_at = now
        bookmark.save()
        counts.changed(user_id, "bookmark", before, bookmark)
        if tags is not None:
            set_tags(user_id, "bookmark", bookmark.id, tags, now)
        record_change(user_id, "bookmark", "updated", bookmark)
    return bookmark


def apply_metadata(user_id: int, bookmark_id: int, *, now: float, status: str,
                   title: str = "", description: str = "",
                   favicon_url: str = "") -> Bookmark | None:
    """Store fetched metadata: fills only the fields that are still empty (what the user
    typed wins) and sets ``fetch_status``. None if the bookmark is gone or in the trash."""
    with write_transaction():
        bookmark = Bookmark.get_or_none((Bookmark.id == bookmark_id)
                                        & (Bookmark.user == user_id)
                                        & Bookmark.deleted_at.is_null())
        if bookmark is None:
            return None
        if title and not bookmark.title:
            bookmark.title = title[:TITLE_MAX]
        if description and not bookmark.description:
            bookmark.description = description[:DESCRIPTION_MAX]
        if favicon_url and not bookmark.favicon_url:
            bookmark.favicon_url = favicon_url
        bookmark.fetch_status = status
        bookmark.updated_at = now
        bookmark.save()
        record_change(user_id, "bookmark", "updated", bookmark)
    return bookmark


def mark_fetch_pending(user_id: int, bookmark_id: int, *, now: float) -> Bookmark:
    """Mark a bookmark for a new metadata fetch (``fetch_status`` ``pending``)."""
    with write_transaction():
        bookmark = _live(Bookmark, user_id, bookmark_id, "bookmark")
        bookmark.fetch_status = "pending"
        bookmark.updated_at = now
        bookmark.save()
        record_change(user_id, "bookmark", "updated", bookmark)
    return bookmark


#: The columns of a bookmark's JSON: what :func:`bookmark_json` reads from a row.
BOOKMARK_COLUMNS = ("id", "user_id", "url", "title", "description", "favicon_url",
                    "is_favorite", "is_read", "read_at", "is_public", "fetch_status",
                    "created_at", "updated_at", "deleted_at")


def bookmark_json(row: Mapping[str, Any], tags: list[dict]) -> dict:
    """A bookmark as the API shows it (the original's field names), from a row of
    :data:`BOOKMARK_COLUMNS` and its tags as ``{id, name, color}``."""
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "url": row["url"],
        "title": row["title"],
        "description": row["description"],
        "favicon_url": row["favicon_url"],
        "favicon": row["favicon_url"],  # the original clients' name for it
        "is_favorite": bool(row["is_favorite"]),
        "is_read": bool(row["is_read"]),
        "read_at": iso_time(row["read_at"]),
        "is_public": bool(row["is_public"]),
        "fetch_status": row["fetch_status"],
        "tags": tags,
        "created_at": iso_time(row["created_at"]),
        "updated_at": iso_time(row["updated_at"]),
        "deleted_at": iso_time(row["deleted_at"]),
    }


def bookmark_to_json(bookmark: Bookmark, tags: list[Tag]) -> dict:
    """A bookmark model as the API shows it (see :func:`bookmark_json`)."""
    return bookmark_json(model_row(bookmark, BOOKMARK_COLUMNS), [_tag_brief(t) for t in tags])

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

from .fields import BOOKMARK_FIELDS, _clean, _live, url_hash
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
    """The user's live bookmark with this (normalized) URL, if any."""
    query = Bookmark.select().where((Bookmark.user == user_id)
                                    & (Bookmark.url_hash == url_hash(url))
                                    & Bookmark.deleted_at.is_null())
    if exclude_id is not None:
        query = query.where(Bookmark.id != exclude_id)
    return query.order_by(Bookmark.id).first()


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
            set_tags(user_id, "bookmark", bookmark.id, tags, now)
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


def bookmark_to_json(bookmark: Bookmark, tags: list[Tag]) -> dict:
    """A bookmark as the API shows it (the original's field names)."""
    return {
        "id": bookmark.id,
        "user_id": bookmark.user_id,
        "url": bookmark.url,
        "title": bookmark.title,
        "description": bookmark.description,
        "favicon_url": bookmark.favicon_url,
        "is_favorite": bookmark.is_favorite,
        "is_read": bookmark.is_read,
        "read_at": iso_time(bookmark.read_at),
        "is_public": bookmark.is_public,
        "fetch_status": bookmark.fetch_status,
        "tags": [_tag_brief(t) for t in tags],
        "created_at": iso_time(bookmark.created_at),
        "updated_at": iso_time(bookmark.updated_at),
        "deleted_at": iso_time(bookmark.deleted_at),
    }

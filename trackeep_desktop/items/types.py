"""Constants, errors, the write transaction and the table of item types that the trash, the
tags and the dashboard work over."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

from trackeep_desktop import errors
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import Bookmark, File, FileShare, Note, Task

log = logging.getLogger(__name__)


TASK_STATUSES = ("pending", "in_progress", "completed", "cancelled")


TASK_PRIORITIES = ("low", "medium", "high", "urgent")


#: Paging of list endpoints: ``limit`` defaults to 50 and is capped at 200.
DEFAULT_LIMIT = 50


MAX_LIMIT = 200


TITLE_MAX = 500


DESCRIPTION_MAX = 10_000


NOTE_MAX = 1_000_000


URL_MAX = 4096


TAG_NAME_MAX = 64


TAGS_PER_ITEM_MAX = 50


#: Colours given to new tags that come without one (picked by the name's hash).
TAG_PALETTE = ("#3b82f6", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#ec4899", "#14b8a6",
               "#f97316", "#6366f1", "#84cc16")



class ItemError(errors.DomainError):
    """A request the items domain refuses; ``message`` is fit to show the user, ``reason``
    (``invalid`` unless said) a short code."""

    reason: str | None = "invalid"


class InvalidInput(ItemError, errors.Invalid):
    """A field is missing, malformed or out of range; ``reason`` is a short code such as
    ``required``, ``invalid``, ``too_long``, ``out_of_range``, ``not_allowed`` or
    ``too_deep``."""


class NotFound(ItemError, errors.NotFound):
    """No such item for this user (other users' items are not found either)."""

    reason = None

    def __init__(self, message: str = "not found"):
        super().__init__(message)


class Conflict(ItemError, errors.Conflict):
    """The change clashes with the current state (a tag name taken, a parent in the trash)."""


class DuplicateBookmark(Conflict):
    """A live bookmark of this user already has this URL; ``existing`` is that bookmark,
    answered as ``duplicate`` (the bookmark as the API shows it)."""

    def __init__(self, existing: Bookmark):
        super().__init__("You already saved this URL.", "url", "duplicate")
        self.existing = existing

    @property
    def details(self) -> dict[str, Any]:
        from trackeep_desktop.items.bookmarks import bookmark_to_json
        from trackeep_desktop.items.tags import tags_for

        bookmark = self.existing
        tags = tags_for(bookmark.user_id, "bookmark", [bookmark.id])[bookmark.id]
        return {"duplicate": bookmark_to_json(bookmark, tags)}


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """``database.atomic()`` for a write (on SQLite it begins ``IMMEDIATE``, as every
    transaction does: see :func:`trackeep_desktop.db.open_database`), with a
    :func:`~trackeep_desktop.items.counts.batch` of its count changes written at its end.
    Nested calls are savepoints."""
    from . import counts  # counts builds on this module's table of types

    with database.atomic(), counts.batch():
        yield


@dataclasses.dataclass(frozen=True)
class ItemType:
    """How the trash, tag counts and dashboard handle one item type."""

    name: str
    # Any peewee model with ``id``, ``user``, ``created_at``, ``updated_at`` and
    # ``deleted_at`` (the registry is open: files register theirs). peewee's types cannot
    # say "a model with these fields", so this is Any rather than type[peewee.Model], on
    # which every one of those would be an error.
    model: Any
    title: Callable[[Any], str]
    to_json: Callable[[Any, list], dict] | None = None
    #: ``(model, foreign key)`` rows that go with an item when it is purged.
    dependents: tuple = ()
    #: The columns its title is read from in plain rows: the first one not empty.
    title_columns: tuple[str, ...] = ("title",)


def _file_to_json(record: Any, tags: list) -> dict:
    from trackeep_desktop.files.records import file_to_json  # files build on items

    return file_to_json(record, tags)


#: Every item type the trash, the tag counts and the dashboard work over, in this order.
#: The model needs the fields ``id``, ``user`` (a foreign key to the user), ``created_at``,
#: ``updated_at`` and ``deleted_at``. A declaration, not a registry: no application adds to
#: it, so every application in a process sees the same types.
_TYPES: dict[str, ItemType] = {
    "bookmark": ItemType("bookmark", Bookmark, lambda item: item.title,
                         title_columns=("title", "url")),
    "task": ItemType("task", Task, lambda item: item.title),
    "note": ItemType("note", Note, lambda item: item.title),
    "file": ItemType("file", File, lambda record: record.name, _file_to_json,
                     dependents=((FileShare, FileShare.file),), title_columns=("name",)),
}


def item_types() -> dict[str, ItemType]:
    """Every registered item type by name (``bookmark``, ``task``, ``note``, ...)."""
    return dict(_TYPES)


def _item_type(name: str) -> ItemType:
    entry = _TYPES.get(name)
    if entry is None:
        raise NotFound(f"unknown item type {name!r}")
    return entry

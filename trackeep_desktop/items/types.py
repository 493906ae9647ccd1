"""Constants, errors, the write transaction, the change hooks and the registry of item types
that the trash, the tags and the dashboard work over."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from typing import Any

import peewee

from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import Bookmark

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



class ItemError(Exception):
    """A request the items domain refuses; ``message`` is fit to show the user."""

    def __init__(self, message: str, field: str | None = None, reason: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason


class InvalidInput(ItemError):
    """A field is missing, malformed or out of range; ``reason`` is a short code such as
    ``required``, ``invalid``, ``too_long``, ``out_of_range``, ``not_allowed`` or
    ``too_deep``."""


class NotFound(ItemError):
    """No such item for this user (other users' items are not found either)."""

    def __init__(self, message: str = "not found"):
        super().__init__(message, reason="not_found")


class Conflict(ItemError):
    """The change clashes with the current state (a tag name taken, a parent in the trash)."""


class DuplicateBookmark(ItemError):
    """A live bookmark of this user already has this URL; ``existing`` is that bookmark."""

    def __init__(self, existing: Bookmark):
        super().__init__("You already saved this URL.", "url", "duplicate")
        self.existing = existing


def write_transaction():
    """``database.atomic()`` for a write (on SQLite it begins ``IMMEDIATE``, as every
    transaction does: see :func:`trackeep_desktop.db.open_database`). Nested calls are
    savepoints."""
    return database.atomic()


ChangeHook = Callable[[str, str, Any, int], None]

#: Called inside the write transaction: ``hook(op, item_type, item, user_id)``.
change_hooks: list[ChangeHook] = []

CHANGE_OPS = ("create", "update", "delete", "restore", "purge")


def run_change_hooks(op: str, item_type: str, item: Any, user_id: int) -> None:
    """Call every hook of :data:`change_hooks` (from inside the caller's transaction)."""
    for hook in list(change_hooks):
        hook(op, item_type, item, user_id)


@dataclasses.dataclass
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
    on_purge: Callable[[Any], None] | None = None


_TYPES: dict[str, ItemType] = {}


def register_item_type(name: str, model: type[peewee.Model], *,
                       title: Callable[[Any], str] | None = None,
                       to_json: Callable[[Any, list], dict] | None = None,
                       on_purge: Callable[[Any], None] | None = None) -> ItemType:
    """Register (or replace) an item type for the trash, tag counts and the dashboard.

    ``title(item)`` names an item in lists (default: its ``title`` field); ``to_json(item,
    tags)`` renders it in the trash listing; ``on_purge(item)`` runs inside the purge
    transaction before the row is deleted.
    """
    if not re.fullmatch(r"[a-z_]{1,16}", name):
        raise ValueError(f"item type names are 1-16 lower-case letters: {name!r}")
    entry = ItemType(name, model, title or (lambda item: item.title), to_json, on_purge)
    _TYPES[name] = entry
    return entry


#: The name the files module uses: ``register_trash_type("file", File, on_purge=...)``.
register_trash_type = register_item_type


def item_types() -> dict[str, ItemType]:
    """Every registered item type by name (``bookmark``, ``task``, ``note``, ...)."""
    return dict(_TYPES)


def _item_type(name: str) -> ItemType:
    entry = _TYPES.get(name)
    if entry is None:
        raise NotFound(f"unknown item type {name!r}")
    return entry

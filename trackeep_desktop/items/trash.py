"""The trash: move to it, restore, purge, list, empty, and purge what has expired."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import peewee

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.models import ItemTag, Tag, Task

from .fields import _live
from .lists import _title_of, item_to_json
from .tags import tags_for
from .types import (
    _TYPES,
    Conflict,
    ItemType,
    NotFound,
    _item_type,
    write_transaction,
)

log = logging.getLogger(__name__)


def _children(item_type: str, item: Any) -> peewee.ModelSelect[Task] | None:
    if item_type == "task":
        return Task.select().where(Task.parent == item.id)
    return None


def move_to_trash(user_id: int, item_type: str, item_id: Any, *, now: float):
    """Move a live item (and a task's live subtasks) to the trash; returns the item."""
    entry = _item_type(item_type)
    with write_transaction():
        item = _live(entry.model, user_id, item_id, item_type)
        item.deleted_at = now
        item.save()
        record_change(user_id, item_type, "deleted", item)
        children = _children(item_type, item)
        if children is not None:
            for child in children.where(entry.model.deleted_at.is_null()):
                child.deleted_at = now
                child.save()
                record_change(user_id, item_type, "deleted", child, event=False)
    return item


def _trashed(entry: ItemType, user_id: int, item_id: Any):
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise NotFound(f"{entry.name} not found in the trash")
    model = entry.model
    item = model.get_or_none((model.id == item_id) & (model.user == user_id)
                             & model.deleted_at.is_null(False))
    if item is None:
        raise NotFound(f"{entry.name} not found in the trash")
    return item


def _expired(item: Any, now: float, max_age: float | None) -> bool:
    if not max_age:
        return False
    return item.deleted_at <= now - max_age


def restore_from_trash(user_id: int, item_type: str, item_id: Any, *, now: float,
                       max_age: float | None = None):
    """Take an item out of the trash (a task with the subtasks deleted along with it).

    An item older than ``max_age`` seconds in the trash is purged now and not found. A
    subtask whose parent is in the trash is a :class:`Conflict`: restore the parent; one
    whose parent has become a subtask itself comes back as a top-level task."""
    entry = _item_type(item_type)
    with write_transaction():
        item = _trashed(entry, user_id, item_id)
        if _expired(item, now, max_age):
            _purge_item(entry, item, user_id)
            raise NotFound(f"{item_type} not found in the trash")
        if item_type == "task" and item.parent_id is not None:
            parent = Task.get_by_id(item.parent_id)
            if parent.deleted_at is not None:
                raise Conflict("Its parent task is in the trash: restore that task first.",
                               "parent_id", "parent_in_trash")
            if parent.parent_id is not None:
                item.parent = None  # its parent became a subtask meanwhile: one level only
        deleted_at = item.deleted_at
        item.deleted_at = None
        item.updated_at = now
        item.save()
        record_change(user_id, item_type, "restored", item)
        children = _children(item_type, item)
        if children is not None:
            for child in children.where(entry.model.deleted_at == deleted_at):
                child.deleted_at = None
                child.updated_at = now
                child.save()
                record_change(user_id, item_type, "restored", child, event=False)
    return item


def _purge_item(entry: ItemType, item: Any, user_id: int, *, event: bool = True) -> int:
    """Delete an item for good (inside the caller's transaction); returns rows purged. The
    purge is recorded before the row goes, so the pipeline can still read it (a file's blob
    is deleted after the commit, once no row names it)."""
    purged = 0
    children = _children(entry.name, item)
    if children is not None:
        for child in children:
            purged += _purge_item(entry, child, user_id, event=False)
    record_change(user_id, entry.name, "purged", item, event=event)
    for model, foreign_key in entry.dependents:
        model.delete().where(foreign_key == item.id).execute()
    ItemTag.delete().where((ItemTag.item_type == entry.name)
                           & (ItemTag.item_id == item.id)).execute()
    item.delete_instance()
    return purged + 1


def purge(user_id: int, item_type: str, item_id: Any) -> int:
    """Delete an item in the trash for good (with its tag links and, for a task, its
    subtasks); returns how many items were purged."""
    entry = _item_type(item_type)
    with write_transaction():
        return _purge_item(entry, _trashed(entry, user_id, item_id), user_id)


@dataclasses.dataclass
class TrashEntry:
    """An item in the trash, as the trash lists it."""

    item_type: str
    item: Any
    deleted_at: float
    title: str


def list_trash(user_id: int) -> list[TrashEntry]:
    """Everything of the user's in the trash, of every registered type, newest first."""
    entries = []
    for name, entry in _TYPES.items():
        model = entry.model
        for item in model.select().where((model.user == user_id)
                                         & model.deleted_at.is_null(False)):
            entries.append(TrashEntry(name, item, item.deleted_at, _title_of(name, item)))
    entries.sort(key=lambda e: (-e.deleted_at, e.item_type, -e.item.id))
    return entries


def trash_entry_to_json(user_id: int, entries: list[TrashEntry],
                        max_age: float | None) -> list[dict]:
    """Render trash entries: ``{type, id, title, deleted_at, purge_at, item}``."""
    tags: dict[str, dict[int, list[Tag]]] = {}
    for name in {e.item_type for e in entries}:
        tags[name] = tags_for(user_id, name, [e.item.id for e in entries if e.item_type == name])
    return [{
        "type": e.item_type,
        "id": e.item.id,
        "title": e.title,
        "deleted_at": iso_time(e.deleted_at),
        "purge_at": iso_time(e.deleted_at + max_age) if max_age else None,
        "item": item_to_json(e.item_type, e.item, tags[e.item_type][e.item.id]),
    } for e in entries]


def empty_trash(user_id: int) -> int:
    """Purge everything in the user's trash; returns how many items were purged."""
    purged = 0
    with write_transaction():
        for entry in _TYPES.values():
            model = entry.model
            for item in list(model.select().where((model.user == user_id)
                                                  & model.deleted_at.is_null(False))):
                if model.get_or_none(model.id == item.id) is not None:  # not purged as a child
                    purged += _purge_item(entry, item, user_id, event=False)
        record_change(user_id, "trash", "purged", payload={"purged": purged})
    return purged


def purge_expired(now: float, max_age: float, user_id: int | None = None) -> int:
    """Purge items that have been in the trash for ``max_age`` seconds or more (of one user,
    or of everyone); returns how many. ``max_age`` 0 or less purges nothing."""
    if not max_age or max_age <= 0:
        return 0
    cutoff = now - max_age
    purged = 0
    for entry in list(_TYPES.values()):
        model = entry.model
        query = model.select().where(model.deleted_at.is_null(False)
                                     & (model.deleted_at <= cutoff))
        if user_id is not None:
            query = query.where(model.user == user_id)
        for item in list(query):
            with write_transaction():
                if model.get_or_none(model.id == item.id) is not None:
                    purged += _purge_item(entry, item, item.user_id, event=False)
    if purged:
        log.info("purged %d item(s) that were in the trash for more than %d days", purged,
                 math.floor(max_age / 86400))
    return purged

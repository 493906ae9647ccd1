"""The trash: move to it, restore, purge, list, empty, and purge what has expired."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import math
from typing import Any

import peewee

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import MAX_ID, ItemTag, Tag, Task

from . import counts, rows
from .fields import _live
from .lists import _title_of, item_to_json, row_reader, rows_to_json
from .tags import tags_for
from .types import (
    _TYPES,
    Conflict,
    InvalidInput,
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
        before = counts.snapshot(item_type, item)
        item.deleted_at = now
        item.save()
        counts.changed(user_id, item_type, before, item)
        record_change(user_id, item_type, "deleted", item)
        children = _children(item_type, item)
        if children is not None:
            for child in children.where(entry.model.deleted_at.is_null()):
                before = counts.snapshot(item_type, child)
                child.deleted_at = now
                child.save()
                counts.changed(user_id, item_type, before, child)
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
        before = counts.snapshot(item_type, item)
        item.deleted_at = None
        item.updated_at = now
        item.save()
        counts.changed(user_id, item_type, before, item)
        record_change(user_id, item_type, "restored", item)
        children = _children(item_type, item)
        if children is not None:
            for child in children.where(entry.model.deleted_at == deleted_at):
                before = counts.snapshot(item_type, child)
                child.deleted_at = None
                child.updated_at = now
                child.save()
                counts.changed(user_id, item_type, before, child)
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
    counts.removed(user_id, entry.name, item)
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


def _kinds() -> list[str]:
    """The types in the order the trash lists entries deleted at the same time: by name
    (``bookmark``, ``file``, ``note``, ``task``); an entry's ``kind`` is its place here."""
    return sorted(_TYPES)


@dataclasses.dataclass(frozen=True)
class TrashPage:
    """One page of the trash: ``(item_type, id, deleted_at)`` of its entries, how many are
    in the trash (of the type asked for), the paging used and the cursor of the next page
    (None on the last)."""

    entries: list[tuple[str, int, float]]
    total: int
    limit: int
    offset: int
    next_cursor: str | None


def encode_cursor(deleted_at: float, kind: int, item_id: int) -> str:
    """An opaque keyset cursor: the position of a trash entry in the listing's order."""
    text = f"{deleted_at!r}:{kind}:{item_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int, int]:
    """``(deleted_at, kind, id)`` of a cursor from :func:`encode_cursor`; a cursor that is
    not one is :class:`InvalidInput` (``cursor``)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, kind, item_id = text.split(":")
        found = float(moment), int(kind), int(item_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput("cursor is not one this server gave (take X-Next-Cursor of the "
                           "previous page).", "cursor") from None
    if (not math.isfinite(found[0]) or not 0 <= found[1] < len(_TYPES)
            or not 0 < found[2] <= MAX_ID):
        raise InvalidInput("cursor is not one this server gave (take X-Next-Cursor of the "
                           "previous page).", "cursor")
    return found


def trash_page(user_id: int, *, limit: int, offset: int = 0, cursor: str | None = None,
               item_type: str | None = None) -> TrashPage:
    """A page of the user's trash, last deleted first (ties: by type name, then newest id),
    of every registered type or of ``item_type`` alone: after ``offset`` entries, or after
    the entry of ``cursor`` (keyset paging: the cost of a page does not grow with its
    depth). One ``UNION ALL`` of each type's ``(user_id, deleted_at, id)`` trash index
    (migration m0009), merged in order by the database and stopped at the page's end; the
    total is the kept count (:mod:`.counts`)."""
    kinds = _kinds()
    wanted = [name for name in kinds if item_type in (None, name)]
    after = decode_cursor(cursor) if cursor is not None else None
    if after is not None and offset:
        raise InvalidInput("Page with offset or with cursor, not both.", "offset",
                           "not_allowed")
    selects: list[str] = []
    params: list[Any] = []
    for name in wanted:
        kind = kinds.index(name)
        where = "user_id = ? AND deleted_at IS NOT NULL"
        params.append(user_id)
        if after is not None:
            moment, after_kind, after_id = after
            if kind < after_kind:  # at the cursor's time this type came before it
                where += " AND deleted_at < ?"
                params.append(moment)
            elif kind > after_kind:
                where += " AND deleted_at <= ?"
                params.append(moment)
            else:
                where += " AND deleted_at <= ? AND (deleted_at < ? OR id < ?)"
                params += [moment, moment, after_id]
        selects.append(f"SELECT {kind} AS kind, id, deleted_at FROM {name} WHERE {where}")
    found: list[tuple] = []
    if selects:
        cursor_rows = database.execute_sql(rows.sql(
            " UNION ALL ".join(selects)
            + " ORDER BY deleted_at DESC, kind, id DESC LIMIT ? OFFSET ?"),
            [*params, limit + 1, offset])
        found = list(cursor_rows.fetchall())
    more = len(found) > limit
    found = found[:limit]
    kept = counts.user_counts(user_id)
    total = sum(kept.get(f"{name}:trash", 0) for name in wanted)
    next_cursor = encode_cursor(found[-1][2], found[-1][0], found[-1][1]) if more else None
    return TrashPage([(kinds[kind], item_id, moment) for kind, item_id, moment in found],
                     total, limit, offset, next_cursor)


def trash_json(user_id: int, entries: list[tuple[str, int, float]],
               max_age: float | None) -> list[dict]:
    """Render a page of trash entries (:func:`trash_page`): ``{type, id, title, deleted_at,
    purge_at, item}``, the items read as rows, one query a type and one for its tags."""
    rendered: dict[tuple[str, int], dict] = {}
    for name in {item_type for item_type, _, _ in entries}:
        reader = row_reader(name)
        if reader is None:
            continue
        table, columns, _ = reader
        ids = [item_id for item_type, item_id, _ in entries if item_type == name]
        found = rows.select(f"SELECT {', '.join(columns)} FROM {table} "
                            f"WHERE user_id = ? AND id IN ({rows.marks(len(ids))})",
                            [user_id, *ids], columns)
        titles = _TYPES[name].title_columns
        for row, item_json in zip(found, rows_to_json(user_id, name, found), strict=True):
            title = next((row[c] for c in titles if row.get(c)), "")
            rendered[(name, row["id"])] = {"title": title, "item": item_json}
    out = []
    for item_type, item_id, deleted_at in entries:
        item = rendered.get((item_type, item_id))
        if item is None:  # purged since the page was read
            continue
        out.append({
            "type": item_type,
            "id": item_id,
            "title": item["title"],
            "deleted_at": iso_time(deleted_at),
            "purge_at": iso_time(deleted_at + max_age) if max_age else None,
            "item": item["item"],
        })
    return out


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


def _expired_entries(cutoff: float, user_id: int | None) -> list[tuple[str, int]]:
    """``(item_type, id)`` of what was trashed at or before ``cutoff`` (of one user, or of
    everyone): one statement over the trash indexes, which the trash listing runs each time,
    and which finds nothing most times."""
    selects: list[str] = []
    params: list[Any] = []
    for name in _TYPES:
        where = "deleted_at IS NOT NULL AND deleted_at <= ?"
        params.append(cutoff)
        if user_id is not None:
            where += " AND user_id = ?"
            params.append(user_id)
        selects.append(f"SELECT '{name}', id FROM {name} WHERE {where}")
    return [(name, item_id) for name, item_id in database.execute_sql(
        rows.sql(" UNION ALL ".join(selects)), params).fetchall()]


def purge_expired(now: float, max_age: float, user_id: int | None = None) -> int:
    """Purge items that have been in the trash for ``max_age`` seconds or more (of one user,
    or of everyone); returns how many. ``max_age`` 0 or less purges nothing."""
    if not max_age or max_age <= 0:
        return 0
    cutoff = now - max_age
    purged = 0
    for name, item_id in _expired_entries(cutoff, user_id):
        entry = _TYPES[name]
        with write_transaction():
            item = entry.model.get_or_none(entry.model.id == item_id)
            if item is not None:  # not purged meanwhile, nor as a child
                purged += _purge_item(entry, item, item.user_id, event=False)
    if purged:
        log.info("purged %d item(s) that were in the trash for more than %d days", purged,
                 math.floor(max_age / 86400))
    return purged

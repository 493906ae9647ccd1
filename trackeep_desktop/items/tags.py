"""Tags: per-user names shared by every item type, with colors, counts, rename, merge and
delete."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import peewee

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import MAX_ID, ItemTag, Tag

from . import counts, rows
from .types import (
    _TYPES,
    TAG_NAME_MAX,
    TAG_PALETTE,
    TAGS_PER_ITEM_MAX,
    Conflict,
    InvalidInput,
    NotFound,
    write_transaction,
)


def normalize_tag_name(name: Any, field: str = "name") -> str:
    """A tag name as stored: trimmed, inner runs of spaces made one; 1-64 characters, no
    commas (they separate tags in filters)."""
    if isinstance(name, Mapping):
        name = name.get("name")
    if not isinstance(name, str):
        raise InvalidInput("A tag name must be a string.", field)
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("A tag name must not be empty.", field, "required")
    if len(name) > TAG_NAME_MAX:
        raise InvalidInput(f"A tag name may have at most {TAG_NAME_MAX} characters.", field,
                           "too_long")
    if "," in name:
        raise InvalidInput("A tag name cannot contain a comma.", field)
    return name


def tag_key(name: str) -> str:
    """The case-insensitive identity of a tag name (unique per user)."""
    return name.casefold()


def parse_tag_names(value: Any, field: str = "tags") -> list[str]:
    """Tag names from what clients send: a list of strings or of ``{"name": ...}`` objects,
    or one comma-separated string. Duplicates (ignoring case) are dropped, order kept."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise InvalidInput("tags must be a list of names.", field)
    names: dict[str, str] = {}
    for entry in value:
        name = normalize_tag_name(entry, field)
        names.setdefault(tag_key(name), name)
    if len(names) > TAGS_PER_ITEM_MAX:
        raise InvalidInput(f"An item may have at most {TAGS_PER_ITEM_MAX} tags.", field,
                           "too_long")
    return list(names.values())


def parse_color(value: Any, field: str = "color") -> str:
    """A colour as ``#rrggbb`` (lower-case); ``#rgb`` is expanded."""
    if not isinstance(value, str) or not re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", value.strip()):
        raise InvalidInput("A colour is written #rrggbb, like #3b82f6.", field)
    value = value.strip().lower()
    if len(value) == 4:
        value = "#" + "".join(c * 2 for c in value[1:])
    return value


def default_color(name: str) -> str:
    """The palette colour a tag without one gets (stable for a name)."""
    digest = hashlib.sha256(tag_key(name).encode("utf-8")).digest()
    return TAG_PALETTE[digest[0] % len(TAG_PALETTE)]


def _find_tag(user_id: int, name: str) -> Tag | None:
    return Tag.get_or_none((Tag.user == user_id) & (Tag.name_key == tag_key(name)))


def get_or_create_tags(user_id: int, names: Iterable[str], *, now: float) -> list[Tag]:
    """The user's tags with these names (ignoring case), creating the missing ones; one query
    finds those that exist."""
    names = list(names)
    keys = list(dict.fromkeys(tag_key(name) for name in names))
    found: dict[str, Tag] = {}
    for start in range(0, len(keys), 500):
        found.update((tag.name_key, tag) for tag in Tag.select().where(
            (Tag.user == user_id) & Tag.name_key.in_(keys[start:start + 500])))
    tags = []
    for name in names:
        tag = found.get(tag_key(name))
        if tag is None:
            try:
                with write_transaction():  # a savepoint: a concurrent insert of the same name
                    tag = Tag.create(user=user_id, name=name, name_key=tag_key(name),
                                     color=default_color(name), created_at=now, updated_at=now)
                counts.tag_created(user_id)
                record_change(user_id, "tag", "created", tag, event=False)
            except peewee.IntegrityError:
                tag = _find_tag(user_id, name)
                if tag is None:
                    raise
            found[tag.name_key] = tag
        tags.append(tag)
    return tags


def _check_owner(user_id: int, item_type: str, item_id: int) -> bool:
    """:class:`NotFound` unless the item is the user's (for a registered type); whether it
    is live (not in the trash), which its tags' counts depend on."""
    entry = _TYPES.get(item_type)
    if entry is None:
        return True
    model = entry.model
    row = (model.select(model.deleted_at).where((model.id == item_id) & (model.user == user_id))
           .tuples().first())
    if row is None:
        raise NotFound(f"{item_type} not found")
    return row[0] is None


def set_tags(user_id: int, item_type: str, item_id: int, names: Iterable[Any],
             now: float | None = None, *, new_item: bool = False) -> list[Tag]:
    """Give an item exactly these tags (names or ``{"name": ...}``; missing tags are
    created). Returns the tags, sorted by name. Runs no change hook: the caller reports the
    item's change. ``new_item``: the caller made the item in this transaction, so it is the
    user's, live and has no tags yet (two queries fewer on every save)."""
    names = parse_tag_names(list(names))
    now = time.time() if now is None else now
    with write_transaction():
        live = True if new_item else _check_owner(user_id, item_type, item_id)
        tags = get_or_create_tags(user_id, names, now=now)
        wanted = {tag.id for tag in tags}
        current: dict[int, int] = {}  # tag id -> link id
        if not new_item:
            current = {tag_id: link_id for link_id, tag_id in database.execute_sql(rows.sql(
                "SELECT it.id, it.tag_id FROM item_tag it JOIN tag t ON t.id = it.tag_id "
                "WHERE it.item_type = ? AND it.item_id = ? AND t.user_id = ?"),
                (item_type, item_id, user_id)).fetchall()}
        stale = [link_id for tag_id, link_id in current.items() if tag_id not in wanted]
        if stale:
            ItemTag.delete().where(ItemTag.id.in_(stale)).execute()
        added = [t for t in wanted if t not in current]
        if added:
            ItemTag.insert_many([{"tag": t, "item_type": item_type, "item_id": item_id}
                                 for t in added]).execute()
        counts.linked(user_id, item_type, live, added,
                      [tag_id for tag_id in current if tag_id not in wanted])
    return sorted(tags, key=lambda t: tag_key(t.name))


def tags_for(user_id: int, item_type: str, ids: Iterable[int]) -> dict[int, list[Tag]]:
    """The user's tags on each of these items: ``{item_id: [Tag, ...]}`` sorted by name
    (every id given is a key)."""
    ids = list(ids)
    found: dict[int, list[Tag]] = {i: [] for i in ids}
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start:chunk_start + 500]
        query = (Tag.select(Tag, ItemTag.item_id.alias("tagged_id")).join(ItemTag)
                 .where((Tag.user == user_id) & (ItemTag.item_type == item_type)
                        & ItemTag.item_id.in_(chunk))
                 .order_by(Tag.name_key))
        for tag in query.objects():
            found[tag.tagged_id].append(tag)  # type: ignore[attr-defined]  # the alias above
    return found


def tag_briefs(user_id: int, item_type: str, ids: Iterable[int]) -> dict[int, list[dict]]:
    """The user's tags on each of these items as the items' JSON shows them, ``{item_id:
    [{id, name, color}, ...]}`` sorted by name (every id given is a key): one query for a
    page, read from the ``(item_type, item_id, tag_id)`` index, as plain rows."""
    ids = list(ids)
    found: dict[int, list[dict]] = {i: [] for i in ids}
    briefs: dict[int, dict] = {}  # one dict per tag, shared by the items carrying it
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        cursor = database.execute_sql(rows.sql(
            "SELECT it.item_id, t.id, t.name, t.color FROM item_tag it "
            "JOIN tag t ON t.id = it.tag_id "
            f"WHERE it.item_type = ? AND it.item_id IN ({rows.marks(len(chunk))}) "
            "AND t.user_id = ? ORDER BY t.name_key"), [item_type, *chunk, user_id])
        for item_id, tag_id, name, color in cursor.fetchall():
            brief = briefs.get(tag_id)
            if brief is None:
                brief = briefs[tag_id] = {"id": tag_id, "name": name, "color": color}
            found[item_id].append(brief)
    return found


def tagged_with(user_id: int, item_type: str, id_field: peewee.Field,
                names: Iterable[str]) -> peewee.Expression | None:
    """A condition on ``id_field`` keeping items that carry every one of ``names`` (None
    when ``names`` is empty); for list filters of any item type."""
    condition = None
    for name in names:
        ids = (ItemTag.select(ItemTag.item_id).join(Tag)
               .where((Tag.user == user_id) & (Tag.name_key == tag_key(name))
                      & (ItemTag.item_type == item_type)))
        term = id_field.in_(ids)
        condition = term if condition is None else condition & term
    return condition


def tag_to_json(tag: Tag, counts: Mapping[str, int] | None = None) -> dict:
    """A tag as the API shows it; with ``counts`` (per item type) also ``count``."""
    return _tag_json(tag.id, tag.name, tag.color, tag.created_at, tag.updated_at, counts)


def _tag_json(tag_id: int, name: str, color: str, created_at: float, updated_at: float,
              counts: Mapping[str, int] | None) -> dict:
    out: dict[str, Any] = {"id": tag_id, "name": name, "color": color,
                           "created_at": iso_time(created_at),
                           "updated_at": iso_time(updated_at)}
    if counts is not None:
        out["count"] = sum(counts.values())
        out["counts"] = dict(counts)
    return out


def _tag_brief(tag: Tag) -> dict:
    return {"id": tag.id, "name": tag.name, "color": tag.color}


def tag_counts(user_id: int, tag_ids: Iterable[int] | None = None) -> dict[int, dict[str, int]]:
    """``{tag_id: {item_type: n}}``: how many live items (not in the trash) carry each of the
    user's tags (or of these), every item type present. Read from the kept counts
    (:mod:`.counts`), not counted: O(tags), not O(tagged items)."""
    wanted = None if tag_ids is None else list(tag_ids)
    kept = counts.tag_counts(user_id, wanted)
    ids = kept if wanted is None else wanted
    return {tag_id: {name: kept.get(tag_id, {}).get(name, 0) for name in _TYPES}
            for tag_id in ids}


def list_tags(user_id: int) -> list[tuple[Tag, dict[str, int]]]:
    """The user's tags by name, each with its counts per item type (every type present)."""
    kept = tag_counts(user_id)
    zero = dict.fromkeys(_TYPES, 0)
    tags = Tag.select().where(Tag.user == user_id).order_by(Tag.name_key)
    return [(tag, kept.get(tag.id, zero)) for tag in tags]


def tags_json(user_id: int) -> list[dict]:
    """``GET /tags``: the user's tags by name with their counts, as the API shows them. Plain
    rows rather than models: building a :class:`Tag` per row cost more than the query."""
    kept = tag_counts(user_id)
    zero = dict.fromkeys(_TYPES, 0)
    cursor = database.execute_sql(
        f"SELECT id, name, color, created_at, updated_at FROM tag WHERE user_id = "
        f"{database.param} ORDER BY name_key", (user_id,))
    return [_tag_json(tag_id, name, color, created_at, updated_at, kept.get(tag_id, zero))
            for tag_id, name, color, created_at, updated_at in cursor.fetchall()]


def get_tag(user_id: int, tag_id: Any) -> Tag:
    """The user's tag, else :class:`NotFound`."""
    if isinstance(tag_id, bool) or not isinstance(tag_id, int):
        raise NotFound("tag not found")
    tag = Tag.get_or_none((Tag.id == tag_id) & (Tag.user == user_id))
    if tag is None:
        raise NotFound("tag not found")
    return tag


def create_tag(user_id: int, data: Mapping[str, Any], *, now: float) -> Tag:
    """Create a tag ``{name, color?}``; :class:`Conflict` if the name exists (any case)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    name = normalize_tag_name(data.get("name"))
    color = parse_color(data["color"]) if data.get("color") is not None else default_color(name)
    with write_transaction():
        if _find_tag(user_id, name) is not None:
            raise Conflict("You already have a tag with this name.", "name", "duplicate")
        try:
            with write_transaction():
                tag = Tag.create(user=user_id, name=name, name_key=tag_key(name), color=color,
                                 created_at=now, updated_at=now)
        except peewee.IntegrityError:
            raise Conflict("You already have a tag with this name.", "name",
                           "duplicate") from None
        counts.tag_created(user_id)
        record_change(user_id, "tag", "created", tag)
    return tag


def _tagged_items(tag: Tag) -> list[tuple[str, Any]]:
    """The live and trashed items carrying ``tag``, as ``(item_type, item)``."""
    out: list[tuple[str, Any]] = []
    links = list(ItemTag.select().where(ItemTag.tag == tag.id))
    by_type: dict[str, list[int]] = {}
    for link in links:
        by_type.setdefault(link.item_type, []).append(link.item_id)
    for name, ids in by_type.items():
        entry = _TYPES.get(name)
        if entry is None:
            continue
        out.extend((name, item) for item in entry.model.select().where(
            entry.model.id.in_(ids) & (entry.model.user == tag.user_id)))
    return out


def _report_items(items: list[tuple[str, Any]], user_id: int) -> None:
    for name, item in items:
        record_change(user_id, name, "updated", item, event=False)


def update_tag(user_id: int, tag_id: int, data: Mapping[str, Any], *, now: float) -> Tag:
    """Rename a tag and/or change its colour (``{name?, color?}``). Renaming onto another
    tag's name is a :class:`Conflict` (merge instead); a change of case alone is allowed."""
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    with write_transaction():
        tag = get_tag(user_id, tag_id)
        renamed = False
        if "name" in data:
            name = normalize_tag_name(data["name"])
            other = _find_tag(user_id, name)
            if other is not None and other.id != tag.id:
                raise Conflict("Another tag has this name; merge the tags instead.", "name",
                               "duplicate")
            renamed = name != tag.name
            tag.name, tag.name_key = name, tag_key(name)
        if "color" in data:
            tag.color = parse_color(data["color"])
        tag.updated_at = now
        tag.save()
        record_change(user_id, "tag", "updated", tag)
        if renamed:
            _report_items(_tagged_items(tag), user_id)
    return tag


def delete_tag(user_id: int, tag_id: int) -> None:
    """Delete a tag; the items keep existing without it."""
    with write_transaction():
        tag = get_tag(user_id, tag_id)
        items = _tagged_items(tag)
        ItemTag.delete().where(ItemTag.tag == tag.id).execute()
        record_change(user_id, "tag", "purged", tag)
        tag.delete_instance()
        counts.tag_deleted(user_id, tag.id)
        _report_items(items, user_id)


def merge_tags(user_id: int, source_id: int, into_id: Any, *, now: float) -> Tag:
    """Move every item of tag ``source_id`` to tag ``into_id`` and delete the source."""
    if isinstance(into_id, bool) or not isinstance(into_id, int):
        raise InvalidInput("into must be the id of the tag to merge into.", "into")
    if into_id == source_id:
        raise InvalidInput("A tag cannot be merged into itself.", "into")
    if not 0 < into_id <= MAX_ID:  # no tag has such an id (and SQLite cannot bind it)
        raise InvalidInput("into must be the id of one of your tags.", "into", "not_found")
    with write_transaction():
        source = get_tag(user_id, source_id)
        try:
            target = get_tag(user_id, into_id)
        except NotFound:
            raise InvalidInput("into must be the id of one of your tags.", "into",
                               "not_found") from None
        items = _tagged_items(source)
        live = {(name, item.id): item.deleted_at is None for name, item in items}
        already = {(link.item_type, link.item_id)
                   for link in ItemTag.select().where(ItemTag.tag == target.id)}
        for link in ItemTag.select().where(ItemTag.tag == source.id):
            if (link.item_type, link.item_id) not in already:
                ItemTag.create(tag=target.id, item_type=link.item_type, item_id=link.item_id)
                counts.linked(user_id, link.item_type,
                              live.get((link.item_type, link.item_id), False), [target.id])
        ItemTag.delete().where(ItemTag.tag == source.id).execute()
        record_change(user_id, "tag", "purged", source)
        source.delete_instance()
        counts.tag_deleted(user_id, source.id)
        target.updated_at = now
        target.save()
        record_change(user_id, "tag", "updated", target)
        _report_items(items, user_id)
    return target

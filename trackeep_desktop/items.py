"""Items: bookmarks, tasks and notes, the tags on them, the trash and the dashboard figures.

The domain, with no Flask in it: functions take the user's id, the input as a plain mapping
(the JSON object a client sent) and the time ``now`` in epoch seconds, validate, write in one
transaction (:func:`write_transaction`) and return peewee models. Refusals are typed
exceptions that the API answers: :class:`InvalidInput` (400, with the field and a reason
code), :class:`NotFound` (404, also for other users' ids), :class:`Conflict` (409) and
:class:`DuplicateBookmark` (409, carrying the bookmark already saved at that URL).

Rules worth knowing:

* **Updates are partial.** Only the fields present in the mapping change; ``false`` and
  ``null`` are applied (``null`` empties a text, clears a flag, removes a date or a parent).
  Unknown fields are ignored, so a client may send back what it read.
* **Bookmark URLs are normalized** (:func:`normalize_url`): http/https only, lower-case
  scheme and host, default port and fragment dropped. Saving a URL that a live bookmark of the
  same user already has raises :class:`DuplicateBookmark` unless ``allow_duplicate``.
* **Tasks** keep ``completed_at`` themselves: set when the status becomes ``completed``
  (progress goes to 100 unless the same update sets it), cleared when it leaves it. Subtasks
  are one level deep: a subtask cannot have subtasks, nor a task with subtasks get a parent.
* **Tags** are per user; a name is unique per user ignoring case. Any item type can be tagged
  through the generic link table: :func:`set_tags` and :func:`tags_for` take the item type
  (``"bookmark"``, ``"task"``, ``"note"``, ``"file"``...). ``set_tags`` checks ownership when
  the type is registered (below) and runs no change hook itself: its caller reports the item's
  change.
* **Trash**: deleting sets ``deleted_at`` (subtasks follow their task); restoring clears it;
  purging deletes the row, its tag links and (for tasks) its subtasks. :func:`purge_expired`
  purges what has been in the trash longer than the retention.

Extension points for other modules:

* ``change_hooks``: a list of callables ``hook(op, item_type, item, user_id)``, called
  *inside* the write transaction after each change, with ``op`` one of ``create``,
  ``update``, ``delete`` (moved to the trash), ``restore`` and ``purge`` (called before the
  row is deleted, so the item can still be read). Tag changes call them too, with
  ``item_type="tag"``, and renaming, merging or deleting a tag reports an ``update`` of every
  item that carried it. A hook that raises aborts the write (the search index stays in step
  with the data). Other modules report their own items' changes with
  :func:`run_change_hooks`.
* :func:`register_item_type` (alias ``register_trash_type``): a type registered with its
  model joins the trash (list, restore, purge, automatic purge), the tag counts and the
  dashboard. The model needs the fields ``id``, ``user`` (a foreign key to the user),
  ``created_at``, ``updated_at`` and ``deleted_at``; ``on_purge(item)`` runs inside the purge
  transaction before the row is deleted (files remove their stored content there).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import peewee

from .accounts import iso_time
from .db import database
from .models import Bookmark, ItemTag, Note, Tag, Task

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


# ----------------------------------------------------------------------------------- errors


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


# ------------------------------------------------------------------------------ transactions


def write_transaction():
    """``database.atomic()`` for a write (on SQLite it begins ``IMMEDIATE``, as every
    transaction does: see :func:`trackeep_desktop.db.open_database`). Nested calls are
    savepoints."""
    return database.atomic()


# ----------------------------------------------------------------------------- change hooks

ChangeHook = Callable[[str, str, Any, int], None]

#: Called inside the write transaction: ``hook(op, item_type, item, user_id)``.
change_hooks: list[ChangeHook] = []

CHANGE_OPS = ("create", "update", "delete", "restore", "purge")


def run_change_hooks(op: str, item_type: str, item: Any, user_id: int) -> None:
    """Call every hook of :data:`change_hooks` (from inside the caller's transaction)."""
    for hook in list(change_hooks):
        hook(op, item_type, item, user_id)


# --------------------------------------------------------------------------- type registry


@dataclasses.dataclass
class ItemType:
    """How the trash, tag counts and dashboard handle one item type."""

    name: str
    model: type[peewee.Model]
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


# ------------------------------------------------------------------------ values and fields


def parse_time(value: Any, field: str) -> float | None:
    """An ISO 8601 date or date-time (``2024-05-01``, ``2024-05-01T10:00:00Z``) as epoch
    seconds; naive times are UTC. ``None`` and ``""`` give None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be an ISO 8601 date or date-time.", field)
    text = value.strip()
    try:
        if len(text) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        else:
            moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 date or date-time, like "
                           "2024-05-01 or 2024-05-01T10:00:00Z.", field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _text(max_length: int, *, required: bool = False, strip: bool = True):
    def parse(value: Any, field: str) -> str:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidInput(f"{field} must be a string.", field)
        if strip:
            value = value.strip()
        if required and not value:
            raise InvalidInput(f"{field} must not be empty.", field, "required")
        if len(value) > max_length:
            raise InvalidInput(f"{field} may have at most {max_length} characters.", field,
                               "too_long")
        return value

    return parse


def _flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false.", field)
    return value


def _choice(choices: tuple[str, ...]):
    def parse(value: Any, field: str) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise InvalidInput(f"{field} is one of {', '.join(choices)}.", field, "not_allowed")
        return value.strip().lower()

    return parse


def _progress(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        raise InvalidInput(f"{field} must be a whole number from 0 to 100.", field)
    if not 0 <= value <= 100:
        raise InvalidInput(f"{field} must be from 0 to 100.", field, "out_of_range")
    return int(value)


def _optional_id(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{field} must be the id of an item, or null.", field)
    return value


def normalize_url(url: Any, field: str = "url") -> str:
    """Validate and normalize a bookmark URL: ``http``/``https`` only (a bare
    ``example.com/x`` gets ``https://``), scheme and host lower-cased, the default port and
    the fragment dropped, an empty path made ``/``. Raises :class:`InvalidInput`."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("Enter the URL of the page.", field, "required")
    url = url.strip()
    if len(url) > URL_MAX:
        raise InvalidInput(f"A URL may have at most {URL_MAX} characters.", field, "too_long")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidInput("A URL cannot contain spaces or control characters.", field)
    if "://" not in url and re.match(r"^[\w.-]+\.[a-zA-Z]{2,}(?::\d+)?(?:[/?#]|$)", url):
        url = "https://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("This is not a valid URL.", field) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidInput("Only http and https URLs can be saved.", field, "not_allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidInput("The URL has no host name.", field)
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    netloc = host
    if parts.username is not None:
        credentials = parts.username + (f":{parts.password}" if parts.password is not None
                                        else "")
        netloc = f"{credentials}@{host}"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_hash(url: str) -> str:
    """The SHA-256 of a normalized URL (indexed, to find duplicates)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class Field:
    """One writable field of an item: its parser and its JSON schema (for OpenAPI)."""

    name: str
    parse: Callable[[Any, str], Any]
    schema: dict


BOOKMARK_FIELDS = {f.name: f for f in (
    Field("url", normalize_url, {"type": "string", "format": "uri", "maxLength": URL_MAX,
                                 "description": "http or https; normalized"}),
    Field("title", _text(TITLE_MAX), {"type": "string", "maxLength": TITLE_MAX}),
    Field("description", _text(DESCRIPTION_MAX), {"type": "string",
                                                   "maxLength": DESCRIPTION_MAX}),
    Field("favicon_url", lambda v, f: "" if v in (None, "") else normalize_url(v, f),
          {"type": "string", "format": "uri"}),
    Field("is_favorite", _flag, {"type": "boolean"}),
    Field("is_read", _flag, {"type": "boolean", "description": "sets or clears read_at"}),
    Field("is_public", _flag, {"type": "boolean"}),
)}

TASK_FIELDS = {f.name: f for f in (
    Field("title", _text(TITLE_MAX, required=True), {"type": "string", "minLength": 1,
                                                      "maxLength": TITLE_MAX}),
    Field("description", _text(DESCRIPTION_MAX), {"type": "string",
                                                   "maxLength": DESCRIPTION_MAX}),
    Field("status", _choice(TASK_STATUSES), {"type": "string", "enum": list(TASK_STATUSES)}),
    Field("priority", _choice(TASK_PRIORITIES), {"type": "string",
                                                 "enum": list(TASK_PRIORITIES)}),
    Field("due_date", parse_time, {"type": "string", "format": "date-time", "nullable": True}),
    Field("progress", _progress, {"type": "integer", "minimum": 0, "maximum": 100}),
    Field("parent_id", _optional_id, {"type": "integer", "nullable": True,
                                      "description": "the parent task (one level only)"}),
)}

NOTE_FIELDS = {f.name: f for f in (
    Field("title", _text(TITLE_MAX, required=True), {"type": "string", "minLength": 1,
                                                      "maxLength": TITLE_MAX}),
    Field("content", _text(NOTE_MAX, strip=False), {"type": "string", "maxLength": NOTE_MAX,
                                                    "description": "Markdown"}),
    Field("is_pinned", _flag, {"type": "boolean"}),
)}

TAGS_SCHEMA = {
    "type": "array", "maxItems": TAGS_PER_ITEM_MAX,
    "description": "replaces the item's tags; names or {name} objects",
    "items": {"oneOf": [{"type": "string"},
                        {"type": "object", "properties": {"name": {"type": "string"}}}]},
}


def input_schema(fields: Mapping[str, Field], required: Iterable[str] = ()) -> dict:
    """The JSON schema of an item's input, from its field table (OpenAPI uses it)."""
    properties = {name: dict(f.schema) for name, f in fields.items()}
    properties["tags"] = TAGS_SCHEMA
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _clean(fields: Mapping[str, Field], data: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    return {name: field.parse(data[name], name) for name, field in fields.items()
            if name in data}


def _live(model: type[peewee.Model], user_id: int, item_id: Any, label: str):
    """The user's item that is not in the trash, else :class:`NotFound`."""
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise NotFound(f"{label} not found")
    item = model.get_or_none((model.id == item_id) & (model.user == user_id)
                             & model.deleted_at.is_null())
    if item is None:
        raise NotFound(f"{label} not found")
    return item


# ---------------------------------------------------------------------------------- tags


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
    """The user's tags with these names (ignoring case), creating the missing ones."""
    tags = []
    for name in names:
        tag = _find_tag(user_id, name)
        if tag is None:
            try:
                with write_transaction():  # a savepoint: a concurrent insert of the same name
                    tag = Tag.create(user=user_id, name=name, name_key=tag_key(name),
                                     color=default_color(name), created_at=now, updated_at=now)
                run_change_hooks("create", "tag", tag, user_id)
            except peewee.IntegrityError:
                tag = _find_tag(user_id, name)
                if tag is None:
                    raise
        tags.append(tag)
    return tags


def _check_owner(user_id: int, item_type: str, item_id: int) -> None:
    entry = _TYPES.get(item_type)
    if entry is None:
        return
    model = entry.model
    if not model.select().where((model.id == item_id) & (model.user == user_id)).exists():
        raise NotFound(f"{item_type} not found")


def set_tags(user_id: int, item_type: str, item_id: int, names: Iterable[Any],
             now: float | None = None) -> list[Tag]:
    """Give an item exactly these tags (names or ``{"name": ...}``; missing tags are
    created). Returns the tags, sorted by name. Runs no change hook: the caller reports the
    item's change."""
    names = parse_tag_names(list(names))
    now = time.time() if now is None else now
    with write_transaction():
        _check_owner(user_id, item_type, item_id)
        tags = get_or_create_tags(user_id, names, now=now)
        wanted = {tag.id for tag in tags}
        current = {link.tag_id: link for link in ItemTag.select().join(Tag).where(
            (ItemTag.item_type == item_type) & (ItemTag.item_id == item_id)
            & (Tag.user == user_id))}
        stale = [link.id for tag_id, link in current.items() if tag_id not in wanted]
        if stale:
            ItemTag.delete().where(ItemTag.id.in_(stale)).execute()
        new = [{"tag": t, "item_type": item_type, "item_id": item_id} for t in wanted
               if t not in current]
        if new:
            ItemTag.insert_many(new).execute()
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
            found[tag.tagged_id].append(tag)
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
    out = {"id": tag.id, "name": tag.name, "color": tag.color,
           "created_at": iso_time(tag.created_at), "updated_at": iso_time(tag.updated_at)}
    if counts is not None:
        out["count"] = sum(counts.values())
        out["counts"] = dict(counts)
    return out


def _tag_brief(tag: Tag) -> dict:
    return {"id": tag.id, "name": tag.name, "color": tag.color}


def tag_counts(user_id: int) -> dict[int, dict[str, int]]:
    """``{tag_id: {item_type: n}}``: how many live items (not in the trash) carry each tag."""
    counts: dict[int, dict[str, int]] = {}
    for name, entry in _TYPES.items():
        model = entry.model
        query = (ItemTag.select(ItemTag.tag, peewee.fn.COUNT(ItemTag.id).alias("n"))
                 .join(model, on=(ItemTag.item_id == model.id))
                 .where((ItemTag.item_type == name) & (model.user == user_id)
                        & model.deleted_at.is_null())
                 .group_by(ItemTag.tag))
        for row in query.dicts():
            counts.setdefault(row["tag"], {})[name] = row["n"]
    return counts


def list_tags(user_id: int) -> list[tuple[Tag, dict[str, int]]]:
    """The user's tags by name, each with its counts per item type (every type present)."""
    counts = tag_counts(user_id)
    tags = Tag.select().where(Tag.user == user_id).order_by(Tag.name_key)
    return [(tag, {name: counts.get(tag.id, {}).get(name, 0) for name in _TYPES})
            for tag in tags]


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
        run_change_hooks("create", "tag", tag, user_id)
    return tag


def _tagged_items(tag: Tag) -> list[tuple[str, Any]]:
    """The live and trashed items carrying ``tag``, as ``(item_type, item)``."""
    out = []
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
        run_change_hooks("update", name, item, user_id)


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
        run_change_hooks("update", "tag", tag, user_id)
        if renamed:
            _report_items(_tagged_items(tag), user_id)
    return tag


def delete_tag(user_id: int, tag_id: int) -> None:
    """Delete a tag; the items keep existing without it."""
    with write_transaction():
        tag = get_tag(user_id, tag_id)
        items = _tagged_items(tag)
        ItemTag.delete().where(ItemTag.tag == tag.id).execute()
        run_change_hooks("purge", "tag", tag, user_id)
        tag.delete_instance()
        _report_items(items, user_id)


def merge_tags(user_id: int, source_id: int, into_id: Any, *, now: float) -> Tag:
    """Move every item of tag ``source_id`` to tag ``into_id`` and delete the source."""
    if isinstance(into_id, bool) or not isinstance(into_id, int):
        raise InvalidInput("into must be the id of the tag to merge into.", "into")
    if into_id == source_id:
        raise InvalidInput("A tag cannot be merged into itself.", "into")
    with write_transaction():
        source = get_tag(user_id, source_id)
        try:
            target = get_tag(user_id, into_id)
        except NotFound:
            raise InvalidInput("into must be the id of one of your tags.", "into",
                               "not_found") from None
        items = _tagged_items(source)
        already = {(link.item_type, link.item_id)
                   for link in ItemTag.select().where(ItemTag.tag == target.id)}
        for link in ItemTag.select().where(ItemTag.tag == source.id):
            if (link.item_type, link.item_id) not in already:
                ItemTag.create(tag=target.id, item_type=link.item_type, item_id=link.item_id)
        ItemTag.delete().where(ItemTag.tag == source.id).execute()
        run_change_hooks("purge", "tag", source, user_id)
        source.delete_instance()
        target.updated_at = now
        target.save()
        run_change_hooks("update", "tag", target, user_id)
        _report_items(items, user_id)
    return target


# ------------------------------------------------------------------------------- bookmarks


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
        run_change_hooks("create", "bookmark", bookmark, user_id)
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
        run_change_hooks("update", "bookmark", bookmark, user_id)
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
        run_change_hooks("update", "bookmark", bookmark, user_id)
    return bookmark


def mark_fetch_pending(user_id: int, bookmark_id: int, *, now: float) -> Bookmark:
    """Mark a bookmark for a new metadata fetch (``fetch_status`` ``pending``)."""
    with write_transaction():
        bookmark = _live(Bookmark, user_id, bookmark_id, "bookmark")
        bookmark.fetch_status = "pending"
        bookmark.updated_at = now
        bookmark.save()
        run_change_hooks("update", "bookmark", bookmark, user_id)
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


# ----------------------------------------------------------------------------------- tasks


def _check_parent(user_id: int, task: Task | None, parent_id: int | None) -> None:
    if parent_id is None:
        return
    if task is not None and parent_id == task.id:
        raise InvalidInput("A task cannot be its own parent.", "parent_id")
    parent = Task.get_or_none((Task.id == parent_id) & (Task.user == user_id)
                              & Task.deleted_at.is_null())
    if parent is None:
        raise InvalidInput("parent_id must be one of your tasks.", "parent_id", "not_found")
    if parent.parent_id is not None:
        raise InvalidInput("Subtasks are one level deep: a subtask cannot have subtasks.",
                           "parent_id", "too_deep")
    if task is not None and Task.select().where(
            (Task.parent == task.id) & Task.deleted_at.is_null()).exists():
        raise InvalidInput("A task with subtasks cannot become a subtask.", "parent_id",
                           "too_deep")


def _apply_status(task: Task, values: dict, now: float) -> None:
    status = values.get("status", task.status)
    if status == "completed" and (task.completed_at is None or task.status != "completed"):
        task.completed_at = now
        if "progress" not in values:
            values["progress"] = 100
    elif status != "completed":
        task.completed_at = None


def create_task(user_id: int, data: Mapping[str, Any], *, now: float) -> Task:
    """Create a task ``{title, description?, status?, priority?, due_date?, progress?,
    parent_id?, tags?}``."""
    values = _clean(TASK_FIELDS, data)
    if "title" not in values:
        raise InvalidInput("A task needs a title.", "title", "required")
    tags = _tag_input(data)
    parent_id = values.pop("parent_id", None)
    with write_transaction():
        _check_parent(user_id, None, parent_id)
        task = Task(user=user_id, parent=parent_id, created_at=now, updated_at=now)
        _apply_status(task, values, now)
        for name, value in values.items():
            setattr(task, name, value)
        task.save()
        if tags:
            set_tags(user_id, "task", task.id, tags, now)
        run_change_hooks("create", "task", task, user_id)
    return task


def update_task(user_id: int, task_id: int, data: Mapping[str, Any], *, now: float) -> Task:
    """Change the fields present in ``data`` (see :func:`create_task`)."""
    values = _clean(TASK_FIELDS, data)
    tags = _tag_input(data)
    with write_transaction():
        task = _live(Task, user_id, task_id, "task")
        if "parent_id" in values:
            parent_id = values.pop("parent_id")
            if parent_id != task.parent_id:
                _check_parent(user_id, task, parent_id)
                task.parent = parent_id
        _apply_status(task, values, now)
        for name, value in values.items():
            setattr(task, name, value)
        task.updated_at = now
        task.save()
        if tags is not None:
            set_tags(user_id, "task", task.id, tags, now)
        run_change_hooks("update", "task", task, user_id)
    return task


def subtasks_of(user_id: int, task_ids: Iterable[int]) -> dict[int, list[Task]]:
    """Live subtasks of each task: ``{task_id: [Task, ...]}`` oldest first."""
    ids = list(task_ids)
    found: dict[int, list[Task]] = {i: [] for i in ids}
    if ids:
        for task in (Task.select().where((Task.user == user_id) & Task.parent.in_(ids)
                                         & Task.deleted_at.is_null())
                     .order_by(Task.created_at, Task.id)):
            found[task.parent_id].append(task)
    return found


def task_to_json(task: Task, tags: list[Tag], subtasks: list[dict] | None = None) -> dict:
    """A task as the API shows it; ``subtasks`` (already rendered) when given."""
    out = {
        "id": task.id,
        "user_id": task.user_id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": task.priority,
        "due_date": iso_time(task.due_date),
        "progress": task.progress,
        "parent_id": task.parent_id,
        "completed_at": iso_time(task.completed_at),
        "tags": [_tag_brief(t) for t in tags],
        "created_at": iso_time(task.created_at),
        "updated_at": iso_time(task.updated_at),
        "deleted_at": iso_time(task.deleted_at),
    }
    if subtasks is not None:
        out["subtasks"] = subtasks
    return out


# ----------------------------------------------------------------------------------- notes


def create_note(user_id: int, data: Mapping[str, Any], *, now: float) -> Note:
    """Create a note ``{title, content?, is_pinned?, tags?}`` (content is Markdown)."""
    values = _clean(NOTE_FIELDS, data)
    if "title" not in values:
        raise InvalidInput("A note needs a title.", "title", "required")
    tags = _tag_input(data)
    with write_transaction():
        note = Note.create(user=user_id, created_at=now, updated_at=now, **values)
        if tags:
            set_tags(user_id, "note", note.id, tags, now)
        run_change_hooks("create", "note", note, user_id)
    return note


def update_note(user_id: int, note_id: int, data: Mapping[str, Any], *, now: float) -> Note:
    """Change the fields present in ``data`` (see :func:`create_note`)."""
    values = _clean(NOTE_FIELDS, data)
    tags = _tag_input(data)
    with write_transaction():
        note = _live(Note, user_id, note_id, "note")
        for name, value in values.items():
            setattr(note, name, value)
        note.updated_at = now
        note.save()
        if tags is not None:
            set_tags(user_id, "note", note.id, tags, now)
        run_change_hooks("update", "note", note, user_id)
    return note


def note_to_json(note: Note, tags: list[Tag], html: str | None = None) -> dict:
    """A note as the API shows it; ``content_html`` (sanitized) when given."""
    out = {
        "id": note.id,
        "user_id": note.user_id,
        "title": note.title,
        "content": note.content,
        "is_pinned": note.is_pinned,
        "tags": [_tag_brief(t) for t in tags],
        "created_at": iso_time(note.created_at),
        "updated_at": iso_time(note.updated_at),
        "deleted_at": iso_time(note.deleted_at),
    }
    if html is not None:
        out["content_html"] = html
    return out


# ----------------------------------------------------------------------- reading and lists

_MODELS: dict[str, type[peewee.Model]] = {"bookmark": Bookmark, "task": Task, "note": Note}


def get_item(user_id: int, item_type: str, item_id: Any):
    """The user's live bookmark, task or note, else :class:`NotFound`."""
    model = _MODELS.get(item_type)
    if model is None:
        raise NotFound(f"unknown item type {item_type!r}")
    return _live(model, user_id, item_id, item_type)


def item_to_json(item_type: str, item: Any, tags: list[Tag]) -> dict:
    """Render a bookmark, task or note (or a registered type with ``to_json``)."""
    if item_type == "bookmark":
        return bookmark_to_json(item, tags)
    if item_type == "task":
        return task_to_json(item, tags)
    if item_type == "note":
        return note_to_json(item, tags)
    entry = _TYPES.get(item_type)
    if entry is not None and entry.to_json is not None:
        return entry.to_json(item, tags)
    return {"id": item.id, "title": _title_of(item_type, item)}


def items_to_json(user_id: int, item_type: str, items: list) -> list[dict]:
    """Render items of one type with their tags, in one query for the tags."""
    tags = tags_for(user_id, item_type, [item.id for item in items])
    return [item_to_json(item_type, item, tags[item.id]) for item in items]


def _bool_param(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise InvalidInput(f"{name} must be true or false.", name)


def _list_param(value: str, name: str, choices: tuple[str, ...]) -> list[str]:
    values = [v.strip().lower() for v in value.split(",") if v.strip()]
    for v in values:
        if v not in choices:
            raise InvalidInput(f"{name} takes {', '.join(choices)} (comma-separated).", name,
                               "not_allowed")
    return values


def _int_param(value: str, name: str, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a whole number.", name) from None
    if number < low or (high is not None and number > high):
        raise InvalidInput(f"{name} must be at least {low}"
                           + (f" and at most {high}." if high is not None else "."), name,
                           "out_of_range")
    return number


def _since(column: peewee.Field, value: str, name: str):
    moment = parse_time(value, name)
    return peewee.SQL("1 = 1") if moment is None else column >= moment


def _before(column: peewee.Field, value: str, name: str):
    moment = parse_time(value, name)
    return peewee.SQL("1 = 1") if moment is None else column < moment


def _parent_filter(value: str, name: str):
    if value.strip().lower() in ("none", "null", ""):
        return Task.parent.is_null()
    return Task.parent == _int_param(value, name, 1)


#: Filters per type: query parameter -> function(text, name) -> condition.
FILTERS: dict[str, dict[str, Callable[[str, str], Any]]] = {
    "bookmark": {
        "favorite": lambda v, n: Bookmark.is_favorite == _bool_param(v, n),
        "read": lambda v, n: Bookmark.is_read == _bool_param(v, n),
        "public": lambda v, n: Bookmark.is_public == _bool_param(v, n),
        "url": lambda v, n: Bookmark.url_hash == url_hash(normalize_url(v, n)),
        "fetch_status": lambda v, n: Bookmark.fetch_status.in_(
            _list_param(v, n, ("pending", "done", "failed", "skipped"))),
    },
    "task": {
        "status": lambda v, n: Task.status.in_(_list_param(v, n, TASK_STATUSES)),
        "priority": lambda v, n: Task.priority.in_(_list_param(v, n, TASK_PRIORITIES)),
        "parent_id": _parent_filter,
        "due_after": lambda v, n: _since(Task.due_date, v, n),
        "due_before": lambda v, n: _before(Task.due_date, v, n),
    },
    "note": {
        "pinned": lambda v, n: Note.is_pinned == _bool_param(v, n),
    },
}

#: Filters every type has (besides ``tag``).
COMMON_FILTERS = ("created_after", "created_before", "updated_after")

_PRIORITY_RANK = peewee.Case(Task.priority, [(p, i) for i, p in enumerate(TASK_PRIORITIES)], 0)
_STATUS_RANK = peewee.Case(Task.status, [(s, i) for i, s in enumerate(TASK_STATUSES)], 0)

#: Sort keys per type (``sort=-created_at,title``: a leading ``-`` sorts descending).
SORTS: dict[str, dict[str, Any]] = {
    "bookmark": {"created_at": Bookmark.created_at, "updated_at": Bookmark.updated_at,
                 "title": peewee.fn.LOWER(Bookmark.title), "url": Bookmark.url,
                 "read_at": Bookmark.read_at},
    "task": {"created_at": Task.created_at, "updated_at": Task.updated_at,
             "title": peewee.fn.LOWER(Task.title), "due_date": Task.due_date,
             "priority": _PRIORITY_RANK, "status": _STATUS_RANK, "progress": Task.progress,
             "completed_at": Task.completed_at},
    "note": {"created_at": Note.created_at, "updated_at": Note.updated_at,
             "title": peewee.fn.LOWER(Note.title), "pinned": Note.is_pinned},
}
#: Sort keys whose empty values go last in either direction.
NULLABLE_SORTS = {"read_at", "due_date", "completed_at"}
DEFAULT_SORTS = {"bookmark": "-created_at", "task": "-created_at", "note": "-pinned,-updated_at"}


@dataclasses.dataclass
class Page:
    """One page of a list: the items, how many match in all, and the paging used."""

    items: list
    total: int
    limit: int
    offset: int


def _params(params: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        out[key] = [str(v) for v in values]
    return out


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def parse_paging(params: Mapping[str, Any]) -> tuple[int, int]:
    """``(limit, offset)`` from query parameters: limit 1-200 (default 50), offset >= 0."""
    params = _params(params)
    limit = _one(params, "limit")
    offset = _one(params, "offset")
    return (_int_param(limit, "limit", 1, MAX_LIMIT) if limit is not None else DEFAULT_LIMIT,
            _int_param(offset, "offset", 0) if offset is not None else 0)


def parse_sort(item_type: str, text: str | None) -> list[tuple[str, bool]]:
    """``[(key, descending), ...]`` from ``-created_at,title``; unknown keys are refused."""
    text = text or DEFAULT_SORTS[item_type]
    keys = []
    for part in text.split(","):
        part = part.strip()
        descending = part.startswith("-")
        key = part.lstrip("+-")
        if key not in SORTS[item_type]:
            raise InvalidInput(f"sort takes {', '.join(SORTS[item_type])} (a leading - sorts "
                               "descending).", "sort", "not_allowed")
        keys.append((key, descending))
    return keys


def list_items(user_id: int, item_type: str, params: Mapping[str, Any]) -> Page:
    """List the user's live bookmarks, tasks or notes with the filters, sort and paging of
    ``params`` (query parameters; a value may be a list): ``tag`` (repeatable or
    comma-separated: items carrying all), ``created_after``/``updated_after`` (inclusive),
    ``created_before`` (exclusive), the type's own :data:`FILTERS`, ``sort`` (see
    :data:`SORTS`), ``limit`` and ``offset``."""
    model = _MODELS[item_type]
    params = _params(params)
    limit, offset = parse_paging(params)
    query = model.select().where((model.user == user_id) & model.deleted_at.is_null())
    names = [n for value in params.get("tag", []) for n in value.split(",") if n.strip()]
    if names:
        query = query.where(tagged_with(user_id, item_type, model.id,
                                        [normalize_tag_name(n, "tag") for n in names]))
    for name, column, condition in (("created_after", model.created_at, _since),
                                    ("created_before", model.created_at, _before),
                                    ("updated_after", model.updated_at, _since)):
        value = _one(params, name)
        if value is not None:
            query = query.where(condition(column, value, name))
    for name, condition in FILTERS[item_type].items():
        value = _one(params, name)
        if value is not None:
            query = query.where(condition(value, name))
    order = []
    for key, descending in parse_sort(item_type, _one(params, "sort")):
        expression = SORTS[item_type][key]
        if key in NULLABLE_SORTS:
            order.append(expression.is_null())
        order.append(expression.desc() if descending else expression.asc())
    order.append(model.id.desc())
    total = query.count()
    items = list(query.order_by(*order).limit(limit).offset(offset))
    return Page(items, total, limit, offset)


# ----------------------------------------------------------------------------------- trash


def _title_of(item_type: str, item: Any) -> str:
    entry = _TYPES.get(item_type)
    title = entry.title(item) if entry is not None else getattr(item, "title", "")
    if not title and item_type == "bookmark":
        title = item.url
    return title or ""


def _children(item_type: str, item: Any) -> peewee.ModelSelect | None:
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
        run_change_hooks("delete", item_type, item, user_id)
        children = _children(item_type, item)
        if children is not None:
            for child in children.where(entry.model.deleted_at.is_null()):
                child.deleted_at = now
                child.save()
                run_change_hooks("delete", item_type, child, user_id)
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
    return bool(max_age) and item.deleted_at <= now - max_age


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
        run_change_hooks("restore", item_type, item, user_id)
        children = _children(item_type, item)
        if children is not None:
            for child in children.where(entry.model.deleted_at == deleted_at):
                child.deleted_at = None
                child.updated_at = now
                child.save()
                run_change_hooks("restore", item_type, child, user_id)
    return item


def _purge_item(entry: ItemType, item: Any, user_id: int) -> int:
    """Delete an item for good (inside the caller's transaction); returns rows purged."""
    purged = 0
    children = _children(entry.name, item)
    if children is not None:
        for child in children:
            purged += _purge_item(entry, child, user_id)
    run_change_hooks("purge", entry.name, item, user_id)
    if entry.on_purge is not None:
        entry.on_purge(item)
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
                    purged += _purge_item(entry, item, user_id)
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
                    purged += _purge_item(entry, item, item.user_id)
    if purged:
        log.info("purged %d item(s) that were in the trash for more than %d days", purged,
                 math.floor(max_age / 86400))
    return purged


# ------------------------------------------------------------------------------- dashboard


def dashboard_stats(user_id: int, *, recent: int = 10) -> dict:
    """The dashboard figures in the original shape (``totalBookmarks``, ``totalTasks``,
    ``totalFiles``, ``totalNotes``, ``recentActivity: [{id, type, title, timestamp}]``) plus
    a few more: task counts by status, unread bookmarks, pinned notes, tags, trash."""
    counts = {}
    activity = []
    trash = 0
    for name, entry in _TYPES.items():
        model = entry.model
        live = model.select().where((model.user == user_id) & model.deleted_at.is_null())
        counts[name] = live.count()
        trash += model.select().where((model.user == user_id)
                                      & model.deleted_at.is_null(False)).count()
        for item in live.order_by(model.updated_at.desc(), model.id.desc()).limit(recent):
            activity.append({
                "id": item.id,
                "type": name,
                "title": _title_of(name, item),
                "action": "created" if item.updated_at == item.created_at else "updated",
                "timestamp": iso_time(item.updated_at),
                "_sort": (item.updated_at, item.id),
            })
    activity.sort(key=lambda a: a.pop("_sort"), reverse=True)
    live_tasks = Task.select().where((Task.user == user_id) & Task.deleted_at.is_null())
    by_status = {status: 0 for status in TASK_STATUSES}
    for row in live_tasks.select(Task.status, peewee.fn.COUNT(Task.id).alias("n")) \
            .group_by(Task.status).dicts():
        by_status[row["status"]] = row["n"]
    return {
        "totalBookmarks": counts.get("bookmark", 0),
        "totalTasks": counts.get("task", 0),
        "totalFiles": counts.get("file", 0),
        "totalNotes": counts.get("note", 0),
        "recentActivity": activity[:recent],
        "tasksByStatus": by_status,
        "unreadBookmarks": Bookmark.select().where(
            (Bookmark.user == user_id) & Bookmark.deleted_at.is_null()
            & (Bookmark.is_read == False)).count(),  # noqa: E712 (SQL, not Python)
        "pinnedNotes": Note.select().where(
            (Note.user == user_id) & Note.deleted_at.is_null()
            & (Note.is_pinned == True)).count(),  # noqa: E712
        "totalTags": Tag.select().where(Tag.user == user_id).count(),
        "trashCount": trash,
    }


register_item_type("bookmark", Bookmark)
register_item_type("task", Task)
register_item_type("note", Note)

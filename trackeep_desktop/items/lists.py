"""Reading items: one item, a page of a list with filters and sorts, and their JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import peewee

from trackeep_desktop.storage.models import Bookmark, Note, Tag, Task

from .bookmarks import bookmark_to_json
from .fields import _live, normalize_url, parse_time, url_hash
from .notes import note_to_json
from .tags import normalize_tag_name, tagged_with, tags_for
from .tasks import task_to_json
from .types import (
    _TYPES,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    TASK_PRIORITIES,
    TASK_STATUSES,
    InvalidInput,
    NotFound,
)

_MODELS: dict[str, type[Bookmark | Task | Note]] = {
    "bookmark": Bookmark, "task": Task, "note": Note}


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
    for name, type_filter in FILTERS[item_type].items():
        value = _one(params, name)
        if value is not None:
            query = query.where(type_filter(value, name))
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


def _title_of(item_type: str, item: Any) -> str:
    entry = _TYPES.get(item_type)
    title = entry.title(item) if entry is not None else getattr(item, "title", "")
    if not title and item_type == "bookmark":
        title = item.url
    return title or ""

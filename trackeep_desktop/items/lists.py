"""Reading items: one item, a page of a list with filters and sorts, and their JSON.

The reads are plain SQL and plain rows (see :mod:`.rows` for why); a page is read in its
sort's order from an index of the user's live rows (migration m0009) and its total comes
from the kept counts when no filter applies, so an unfiltered page costs O(page) whatever
the number of items. The statements are put together from the fragments of :data:`FILTERS`
and :data:`SORTS`, whose values are always parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trackeep_desktop.storage.models import Bookmark, Note, Tag, Task

from . import counts
from .bookmarks import BOOKMARK_COLUMNS, bookmark_json, bookmark_to_json
from .fields import _live, normalize_url, parse_time, url_hash
from .markdown import render_markdown
from .notes import NOTE_COLUMNS, note_json, note_to_json
from .rows import marks, model_row, scalar, select
from .tags import normalize_tag_name, tag_briefs, tag_key
from .tasks import TASK_COLUMNS, subtask_rows, task_json, task_to_json
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

#: A type's row serializer: ``row_json(row, tags) -> dict``.
RowJson = Callable[[Mapping[str, Any], list[dict]], dict]

_ROW_READERS: dict[str, tuple[tuple[str, ...], RowJson]] = {
    "bookmark": (BOOKMARK_COLUMNS, bookmark_json),
    "task": (TASK_COLUMNS, task_json),
    "note": (NOTE_COLUMNS, note_json),
}


def row_reader(item_type: str) -> tuple[str, tuple[str, ...], RowJson] | None:
    """``(table, columns, row_json)`` of a registered item type, None for another."""
    if item_type == "file":
        from trackeep_desktop.files.records import FILE_COLUMNS, file_json  # files build on items

        return "file", FILE_COLUMNS, file_json
    reader = _ROW_READERS.get(item_type)
    return None if reader is None else (item_type, *reader)


def get_item(user_id: int, item_type: str, item_id: Any):
    """The user's live bookmark, task or note, else :class:`NotFound`."""
    model = _MODELS.get(item_type)
    if model is None:
        raise NotFound(f"unknown item type {item_type!r}")
    return _live(model, user_id, item_id, item_type)


def read_item(user_id: int, item_type: str, item_id: Any) -> dict[str, Any]:
    """The user's live bookmark, task or note as a row (see :func:`rows_to_json`), else
    :class:`NotFound`."""
    if item_type not in _MODELS:
        raise NotFound(f"unknown item type {item_type!r}")
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise NotFound(f"{item_type} not found")
    columns, _ = _ROW_READERS[item_type]
    found = select(f"SELECT {', '.join(columns)} FROM {item_type} WHERE id = ? AND user_id = ? "
                   "AND deleted_at IS NULL", [item_id, user_id], columns)
    if not found:
        raise NotFound(f"{item_type} not found")
    return found[0]


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


def rows_to_json(user_id: int, item_type: str, found: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Render rows of one registered type (``row_reader``'s columns) with their tags, in one
    query for the tags."""
    reader = row_reader(item_type)
    if reader is None:
        raise NotFound(f"unknown item type {item_type!r}")
    row_json = reader[2]
    tags = tag_briefs(user_id, item_type, [row["id"] for row in found])
    return [row_json(row, tags[row["id"]]) for row in found]


def as_rows(item_type: str, items: list) -> list[dict[str, Any]]:
    """Models of a registered type as the rows :func:`rows_to_json` renders."""
    reader = row_reader(item_type)
    if reader is None:
        raise NotFound(f"unknown item type {item_type!r}")
    return [model_row(item, reader[1]) for item in items]


def tasks_json(user_id: int, found: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Tasks as ``GET /tasks/{id}`` answers them, each with its live subtasks (two queries
    for them all)."""
    children = subtask_rows(user_id, [row["id"] for row in found])
    flat = [*found, *(sub for row in found for sub in children[row["id"]])]
    by_id = {out["id"]: out for out in rows_to_json(user_id, "task", flat)}
    return [{**by_id[row["id"]], "subtasks": [by_id[sub["id"]] for sub in children[row["id"]]]}
            for row in found]


def notes_json(user_id: int, found: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Notes as ``GET /notes/{id}`` answers them, with their Markdown rendered safely."""
    return [{**out, "content_html": render_markdown(row["content"])}
            for row, out in zip(found, rows_to_json(user_id, "note", found), strict=True)]


def items_to_json(user_id: int, item_type: str, items: list) -> list[dict]:
    """Render models of one type with their tags, in one query for the tags (the same
    serializers as :func:`rows_to_json`)."""
    reader = row_reader(item_type)
    if reader is None:
        return [item_to_json(item_type, item, []) for item in items]
    return rows_to_json(user_id, item_type, [model_row(item, reader[1]) for item in items])


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


#: A filter's condition: an SQL fragment over the item's table and its parameters.
Condition = tuple[str, list[Any]]


def _since(column: str, value: str, name: str) -> Condition:
    moment = parse_time(value, name)
    return ("1 = 1", []) if moment is None else (f"{column} >= ?", [moment])


def _before(column: str, value: str, name: str) -> Condition:
    moment = parse_time(value, name)
    return ("1 = 1", []) if moment is None else (f"{column} < ?", [moment])


def _flag(column: str) -> Callable[[str, str], Condition]:
    return lambda v, n: (f"{column} = ?", [_bool_param(v, n)])


def _among(column: str, choices: tuple[str, ...]) -> Callable[[str, str], Condition]:
    def condition(value: str, name: str) -> Condition:
        values = _list_param(value, name, choices)
        return (f"{column} IN ({marks(len(values))})", values) if values else ("0 = 1", [])

    return condition


def _containing(*columns: str) -> Callable[[str, str], Condition]:
    """``?search=``: rows where any of ``columns`` contains the text, ignoring (ASCII) case;
    an empty text filters nothing."""

    def condition(value: str, name: str) -> Condition:
        needle = value.strip().lower()
        if not needle:
            return "1 = 1", []
        pattern = "%" + needle.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
        return (" OR ".join(f"lower({c}) LIKE ? ESCAPE '!'" for c in columns),
                [pattern] * len(columns))

    return condition


def _parent_filter(value: str, name: str) -> Condition:
    if value.strip().lower() in ("none", "null", ""):
        return "parent_id IS NULL", []
    return "parent_id = ?", [_int_param(value, name, 1)]


#: Filters per type: query parameter -> function(text, name) -> (SQL condition, parameters).
FILTERS: dict[str, dict[str, Callable[[str, str], Condition]]] = {
    "bookmark": {
        "favorite": _flag("is_favorite"),
        "read": _flag("is_read"),
        "public": _flag("is_public"),
        "url": lambda v, n: ("url_hash = ?", [url_hash(normalize_url(v, n))]),
        "fetch_status": _among("fetch_status", ("pending", "done", "failed", "skipped")),
    },
    "task": {
        "status": _among("status", TASK_STATUSES),
        "priority": _among("priority", TASK_PRIORITIES),
        "parent_id": _parent_filter,
        "due_after": lambda v, n: _since("due_date", v, n),
        "due_before": lambda v, n: _before("due_date", v, n),
    },
    "note": {
        "pinned": _flag("is_pinned"),
        "search": _containing("title", "content"),
    },
}

#: Filters every type has (besides ``tag``).
COMMON_FILTERS = ("created_after", "created_before", "updated_after")

#: ``?tag=``: items carrying the named tag (one condition per name).
_TAGGED = ("id IN (SELECT it.item_id FROM item_tag it JOIN tag t ON t.id = it.tag_id "
           "WHERE t.user_id = ? AND t.name_key = ? AND it.item_type = ?)")


def _rank(column: str, values: tuple[str, ...]) -> str:
    """``CASE column WHEN 'a' THEN 0 ... ELSE 0 END``: written with literal values, as the
    index on it (migration m0009) is, since a query with bound ones would not match it."""
    whens = " ".join(f"WHEN '{value}' THEN {rank}" for rank, value in enumerate(values))
    return f"(CASE {column} {whens} ELSE 0 END)"


#: Sort keys per type (``sort=-created_at,title``: a leading ``-`` sorts descending), as
#: SQL expressions; each has an index over the user's live rows (migration m0009) but
#: ``url``.
SORTS: dict[str, dict[str, str]] = {
    "bookmark": {"created_at": "created_at", "updated_at": "updated_at",
                 "title": "lower(title)", "url": "url", "read_at": "read_at"},
    "task": {"created_at": "created_at", "updated_at": "updated_at", "title": "lower(title)",
             "due_date": "due_date", "priority": _rank("priority", TASK_PRIORITIES),
             "status": _rank("status", TASK_STATUSES), "progress": "progress",
             "completed_at": "completed_at"},
    "note": {"created_at": "created_at", "updated_at": "updated_at", "title": "lower(title)",
             "pinned": "is_pinned"},
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


def _conditions(user_id: int, item_type: str, params: dict[str, list[str]]) -> list[Condition]:
    """The filters of ``params`` as SQL conditions, checked in the order of their errors."""
    found: list[Condition] = []
    names = [n for value in params.get("tag", []) for n in value.split(",") if n.strip()]
    for name in [normalize_tag_name(n, "tag") for n in names]:
        found.append((_TAGGED, [user_id, tag_key(name), item_type]))
    for name, column, condition in (("created_after", "created_at", _since),
                                    ("created_before", "created_at", _before),
                                    ("updated_after", "updated_at", _since)):
        value = _one(params, name)
        if value is not None:
            found.append(condition(column, value, name))
    for name, type_filter in FILTERS[item_type].items():
        value = _one(params, name)
        if value is not None:
            found.append(type_filter(value, name))
    return found


def order_by(item_type: str, sort: str | None) -> str:
    """The ORDER BY of a list (ties broken by id, newest first), matching its index."""
    order = []
    for key, descending in parse_sort(item_type, sort):
        expression = SORTS[item_type][key]
        if key in NULLABLE_SORTS:
            order.append(f"({expression} IS NULL)")
        order.append(f"{expression} {'DESC' if descending else 'ASC'}")
    order.append("id DESC")
    return ", ".join(order)


def list_items(user_id: int, item_type: str, params: Mapping[str, Any]) -> Page:
    """List the user's live bookmarks, tasks or notes with the filters, sort and paging of
    ``params`` (query parameters; a value may be a list): ``tag`` (repeatable or
    comma-separated: items carrying all), ``created_after``/``updated_after`` (inclusive),
    ``created_before`` (exclusive), the type's own :data:`FILTERS`, ``sort`` (see
    :data:`SORTS`), ``limit`` and ``offset``. The page's items are rows (render them with
    :func:`rows_to_json`); its total is the kept count when nothing is filtered."""
    params = _params(params)
    limit, offset = parse_paging(params)
    conditions = _conditions(user_id, item_type, params)
    order = order_by(item_type, _one(params, "sort"))
    where = " AND ".join(["user_id = ?", "deleted_at IS NULL",
                          *(f"({sql})" for sql, _ in conditions)])
    values = [user_id, *(value for _, found in conditions for value in found)]
    columns, _ = _ROW_READERS[item_type]
    found = select(f"SELECT {', '.join(columns)} FROM {item_type} WHERE {where} "
                   f"ORDER BY {order} LIMIT ? OFFSET ?", [*values, limit, offset], columns)
    if conditions:
        total = scalar(f"SELECT COUNT(*) FROM {item_type} WHERE {where}", values)
    else:
        total = counts.user_counts(user_id).get(item_type, 0)
    return Page(found, total, limit, offset)


def _title_of(item_type: str, item: Any) -> str:
    entry = _TYPES.get(item_type)
    title = entry.title(item) if entry is not None else getattr(item, "title", "")
    if not title and item_type == "bookmark":
        title = item.url
    return title or ""

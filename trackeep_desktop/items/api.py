"""The items API under ``/api/v1``: bookmarks, tasks, notes, tags, trash and the dashboard.

Shapes follow the original Trackeep clients: ``POST /bookmarks`` takes ``tags`` as names or
``{"name": ...}`` objects and ``is_public``; lists answer bare JSON arrays, paged with
``limit`` (default 50, at most 200) and ``offset``, the total in ``X-Total-Count`` and the
neighbouring pages in ``Link``. Validation errors are 400 ``{"error", "field", "reason"}``;
unknown ids and other users' ids are 404; a body that is not JSON is 415 (wrong content
type) or 400 (malformed). Every write is announced as a change event by the change pipeline
(:mod:`trackeep_desktop.realtime.pipeline`); the views answer with the item as the event
carried it.

Scopes of API keys (sessions may do everything):

* bookmarks, tasks, notes: ``bookmarks:write``, ``tasks:write``, ``notes:write`` for every
  method; ``read`` covers the GETs.
* ``GET /tags``, ``GET /trash``, ``GET /dashboard/stats``: ``read``.
* ``POST /tags`` (create): *any* content write scope (``bookmarks:write``, ``tasks:write``,
  ``notes:write``, ``files:write``): a key that may save items may create their labels.
* ``PATCH``/``DELETE /tags/{id}`` and ``POST /tags/{id}/merge``: *all* content write scopes
  (``*`` has them): renaming, merging or deleting a tag changes items of every type.
* ``POST /trash/{type}/{id}/restore`` and ``DELETE /trash/{type}/{id}``: the write scope of
  that type (``bookmark`` → ``bookmarks:write``, ``file`` → ``files:write``).
  ``DELETE /trash`` (empty it): all content write scopes.
"""

from __future__ import annotations

import logging
from typing import Any

import peewee
from flask import Blueprint, Flask, current_app, jsonify, request

from trackeep_desktop import items
from trackeep_desktop.clock import SystemClock
from trackeep_desktop.items.markdown import render_markdown
from trackeep_desktop.items.metadata import MetadataFetcher
from trackeep_desktop.storage import changes
from trackeep_desktop.web import openapi
from trackeep_desktop.web.auth import current_user, now, require_scope
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.openapi import api_doc, query_param
from trackeep_desktop.web.requests import (
    CONTENT_WRITE_SCOPES,
    check_scopes,
    json_body,
    paged_response,
    require_scopes,
)

log = logging.getLogger(__name__)

bp = Blueprint("items_api", __name__)


#: How often the trash is swept for expired items (besides start-up and each listing).
TRASH_SWEEP_INTERVAL = 3600


def write_scope(item_type: str) -> str:
    """The API-key scope that may write items of a type (``bookmark`` → ``bookmarks:write``)."""
    return f"{item_type}s:write"


# --------------------------------------------------------------------------------- helpers


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def _rendered(item_type: str, item) -> dict:
    """The item as its change event carried it (rendered once, after the commit), else
    rendered now."""
    found = changes.rendered(item_type, item.id)
    if found is not None:
        return found
    if item_type == "tag":
        return _tag_with_counts(item)
    user_id = current_user().id
    rows = items.as_rows(item_type, [item])
    if item_type == "task":
        return items.tasks_json(user_id, rows)[0]
    if item_type == "note":
        return items.notes_json(user_id, rows)[0]
    return items.rows_to_json(user_id, item_type, rows)[0]


def _exists(item_type: str, item_id: int) -> None:
    """404 for an unknown id or another user's, before the body is even read."""
    items.read_item(current_user().id, item_type, item_id)


def _read(item_type: str, item_id: int) -> dict:
    """``GET /<type>s/{id}``: the item read as a row and rendered (a task with its subtasks,
    a note with its HTML)."""
    user_id = current_user().id
    row = items.read_item(user_id, item_type, item_id)
    if item_type == "task":
        return items.tasks_json(user_id, [row])[0]
    if item_type == "note":
        return items.notes_json(user_id, [row])[0]
    return items.rows_to_json(user_id, item_type, [row])[0]


def _list(item_type: str):
    user = current_user()
    page = items.list_items(user.id, item_type, request.args.to_dict(flat=False))
    rendered = items.rows_to_json(user.id, item_type, page.items)
    if item_type == "task":
        _attach_subtasks(user.id, rendered)
    return paged_response(page, rendered)


def _attach_subtasks(user_id: int, rendered: list[dict]) -> None:
    """Give each listed task its live subtasks, as ``GET /tasks/{id}`` does (two queries for
    the whole page, not two per task)."""
    children = items.subtask_rows(user_id, [out["id"] for out in rendered])
    flat = [sub for subs in children.values() for sub in subs]
    by_id = {out["id"]: out for out in items.rows_to_json(user_id, "task", flat)}
    for out in rendered:
        out["subtasks"] = [by_id[sub["id"]] for sub in children[out["id"]]]


def _moved_to_trash(item_type: str, item_id: int):
    items.move_to_trash(current_user().id, item_type, item_id, now=now())
    return jsonify({"message": f"The {item_type} is in the trash.", "id": item_id,
                    "type": item_type})


def retention_seconds(config) -> float:
    """``TRASH_RETENTION_DAYS`` in seconds (0: keep forever)."""
    return float(config["TRASH_RETENTION_DAYS"]) * 86400


def metadata_fetcher() -> MetadataFetcher:
    """This app's background metadata fetcher."""
    return current_app.extensions["trackeep_metadata"]


# ------------------------------------------------------------------------------- schemas

TIMESTAMP = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP = {"type": "string", "format": "date-time", "nullable": True}
TAG_BRIEF = openapi.schema("TagBrief", {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                   "color": {"type": "string", "example": "#3b82f6"}},
})
_COMMON = {"id": {"type": "integer"}, "user_id": {"type": "integer"},
           "tags": {"type": "array", "items": TAG_BRIEF}, "created_at": TIMESTAMP,
           "updated_at": TIMESTAMP,
           "deleted_at": dict(NULLABLE_TIMESTAMP, description="set while in the trash")}
BOOKMARK = openapi.schema("Bookmark", {"type": "object", "properties": {
    **_COMMON, "url": {"type": "string"}, "title": {"type": "string"},
    "description": {"type": "string"}, "favicon_url": {"type": "string"},
    "favicon": {"type": "string", "description": "the same as favicon_url (original API)"},
    "is_favorite": {"type": "boolean"}, "is_read": {"type": "boolean"},
    "read_at": NULLABLE_TIMESTAMP, "is_public": {"type": "boolean"},
    "fetch_status": {"type": "string", "enum": ["pending", "done", "failed", "skipped"],
                     "description": "the background fetch of title, description, icon"},
}})
TASK = openapi.schema("Task", {"type": "object", "properties": {
    **_COMMON, "title": {"type": "string"}, "description": {"type": "string"},
    "status": {"type": "string", "enum": list(items.TASK_STATUSES)},
    "priority": {"type": "string", "enum": list(items.TASK_PRIORITIES)},
    "due_date": NULLABLE_TIMESTAMP, "progress": {"type": "integer"},
    "parent_id": {"type": "integer", "nullable": True}, "completed_at": NULLABLE_TIMESTAMP,
    "subtasks": {"type": "array", "items": {"type": "object"},
                 "description": "in single-task answers only"},
}})
NOTE = openapi.schema("Note", {"type": "object", "properties": {
    **_COMMON, "title": {"type": "string"}, "content": {"type": "string"},
    "content_html": {"type": "string", "description": "sanitized HTML (single-note answers)"},
    "is_pinned": {"type": "boolean"},
}})
BOOKMARK_INPUT = openapi.schema("BookmarkInput", {
    **items.input_schema(items.BOOKMARK_FIELDS, required=["url"]),
})
TASK_INPUT = openapi.schema("TaskInput", items.input_schema(items.TASK_FIELDS, ["title"]))
NOTE_INPUT = openapi.schema("NoteInput", items.input_schema(items.NOTE_FIELDS, ["title"]))
TAG = openapi.schema("Tag", {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "color": {"type": "string"},
    "count": {"type": "integer", "description": "live items carrying the tag"},
    "counts": {"type": "object", "additionalProperties": {"type": "integer"},
               "description": "per item type"},
    "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
}})
TAG_INPUT = openapi.schema("TagInput", {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": items.TAG_NAME_MAX},
    "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
}, "required": ["name"]})
MERGE_INPUT = openapi.schema("TagMerge", {"type": "object", "properties": {
    "into": {"type": "integer", "description": "the tag that receives the items"},
}, "required": ["into"]})
TRASH_ENTRY = openapi.schema("TrashEntry", {"type": "object", "properties": {
    "type": {"type": "string"}, "id": {"type": "integer"}, "title": {"type": "string"},
    "deleted_at": TIMESTAMP,
    "purge_at": dict(NULLABLE_TIMESTAMP, description="when it is purged automatically"),
    "item": {"type": "object"},
}})
MESSAGE = openapi.schema("Message", {"type": "object", "properties": {
    "message": {"type": "string"}, "id": {"type": "integer"}, "type": {"type": "string"},
}})
DASHBOARD = openapi.schema("DashboardStats", {"type": "object", "properties": {
    "totalBookmarks": {"type": "integer"}, "totalTasks": {"type": "integer"},
    "totalFiles": {"type": "integer"}, "totalNotes": {"type": "integer"},
    "recentActivity": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "integer"}, "type": {"type": "string"}, "title": {"type": "string"},
        "action": {"type": "string", "enum": ["created", "updated"]}, "timestamp": TIMESTAMP,
    }}},
    "tasksByStatus": {"type": "object", "additionalProperties": {"type": "integer"}},
    "unreadBookmarks": {"type": "integer"}, "pinnedNotes": {"type": "integer"},
    "totalTags": {"type": "integer"}, "trashCount": {"type": "integer"},
}})
PREVIEW = openapi.schema("MarkdownPreview", {"type": "object", "properties": {
    "content": {"type": "string"}, "html": {"type": "string"}}})


def list_params(item_type: str) -> list[dict]:
    """The query parameters of a list endpoint, from the domain's filter and sort tables."""
    params = [
        query_param("limit", f"page size, 1-{items.MAX_LIMIT} (default {items.DEFAULT_LIMIT})",
                    {"type": "integer", "minimum": 1, "maximum": items.MAX_LIMIT}),
        query_param("offset", "items to skip", {"type": "integer", "minimum": 0}),
        query_param("sort", "comma-separated keys, - for descending: "
                    + ", ".join(items.SORTS[item_type])
                    + f" (default {items.DEFAULT_SORTS[item_type]})"),
        query_param("tag", "only items with this tag (repeat, or separate with commas: all "
                    "must match)"),
        query_param("created_after", "ISO date or date-time, inclusive"),
        query_param("created_before", "ISO date or date-time, exclusive"),
        query_param("updated_after", "ISO date or date-time, inclusive"),
    ]
    descriptions = {
        "favorite": "true or false", "read": "true or false", "public": "true or false",
        "url": "the (normalized) URL: is this page saved?",
        "fetch_status": "pending, done, failed or skipped (comma-separated)",
        "status": ", ".join(items.TASK_STATUSES) + " (comma-separated)",
        "priority": ", ".join(items.TASK_PRIORITIES) + " (comma-separated)",
        "parent_id": "a task id (its subtasks), or none (top-level tasks only)",
        "due_after": "ISO date or date-time, inclusive",
        "due_before": "ISO date or date-time, exclusive",
        "pinned": "true or false",
        "search": "only notes whose title or text contains this (ignoring case)",
    }
    params += [query_param(name, descriptions.get(name, "")) for name in items.FILTERS[item_type]]
    return params


ALLOW_DUPLICATE = query_param("allow_duplicate", "true saves the URL again even if it is "
                              "saved already (also accepted in the body)")


# ------------------------------------------------------------------------------- bookmarks


@bp.get("/bookmarks")
@api_doc(response=BOOKMARK, array=True, paged=True, params=list_params("bookmark"))
@require_scope("bookmarks:write")
def list_bookmarks():
    """List bookmarks (not those in the trash), newest first."""
    return _list("bookmark")


@bp.post("/bookmarks")
@api_doc(body=BOOKMARK_INPUT, response=BOOKMARK, status=201, params=[ALLOW_DUPLICATE],
         responses={409: "the URL is saved already; the body's duplicate is that bookmark"})
@require_scope("bookmarks:write")
def create_bookmark():
    """Save a bookmark.

    Title, description and icon left empty are fetched in the background (fetch_status
    pending); the save never waits for them. Tags are names or {"name": ...} objects.
    """
    data = json_body()
    allow = _truthy(request.args.get("allow_duplicate", data.get("allow_duplicate", False)))
    fetch = bool(current_app.config["FETCH_METADATA"]) and not all(
        data.get(name) for name in ("title", "description", "favicon_url"))
    user = current_user()
    bookmark = items.create_bookmark(user.id, data, now=now(), allow_duplicate=allow,
                                     fetch_metadata=fetch)
    if fetch:
        metadata_fetcher().schedule(user.id, bookmark.id, bookmark.url)
    rendered = _rendered("bookmark", bookmark)
    return jsonify(rendered), 201


@bp.get("/bookmarks/<id:bookmark_id>")
@api_doc(response=BOOKMARK)
@require_scope("bookmarks:write")
def get_bookmark(bookmark_id: int):
    """One bookmark."""
    return jsonify(_read("bookmark", bookmark_id))


@bp.route("/bookmarks/<id:bookmark_id>", methods=["PATCH", "PUT"])
@api_doc(body=BOOKMARK_INPUT, response=BOOKMARK, params=[ALLOW_DUPLICATE],
         responses={409: "another bookmark has this URL"})
@require_scope("bookmarks:write")
def update_bookmark(bookmark_id: int):
    """Change a bookmark: only the fields sent (PUT does the same as PATCH)."""
    _exists("bookmark", bookmark_id)
    data = json_body()
    allow = _truthy(request.args.get("allow_duplicate", data.get("allow_duplicate", False)))
    bookmark = items.update_bookmark(current_user().id, bookmark_id, data, now=now(),
                                     allow_duplicate=allow)
    rendered = _rendered("bookmark", bookmark)
    return jsonify(rendered)


@bp.delete("/bookmarks/<id:bookmark_id>")
@api_doc(response=MESSAGE)
@require_scope("bookmarks:write")
def delete_bookmark(bookmark_id: int):
    """Move a bookmark to the trash."""
    return _moved_to_trash("bookmark", bookmark_id)


@bp.post("/bookmarks/<id:bookmark_id>/fetch-metadata")
@bp.post("/bookmarks/<id:bookmark_id>/refresh-metadata")  # the original's path
@api_doc(response=BOOKMARK, status=202,
         responses={409: "fetching page details is turned off (FETCH_METADATA)"})
@require_scope("bookmarks:write")
def refetch_bookmark_metadata(bookmark_id: int):
    """Fetch the page's title, description and icon again, in the background.

    Only fields that are empty are filled. 409 when fetching is turned off.
    """
    if not current_app.config["FETCH_METADATA"]:
        raise ApiError(409, "fetching page details is turned off (FETCH_METADATA)")
    user = current_user()
    bookmark = items.mark_fetch_pending(user.id, bookmark_id, now=now())
    metadata_fetcher().schedule(user.id, bookmark.id, bookmark.url)
    rendered = _rendered("bookmark", bookmark)
    return jsonify(rendered), 202


# ----------------------------------------------------------------------------------- tasks


@bp.get("/tasks")
@api_doc(response=TASK, array=True, paged=True, params=list_params("task"))
@require_scope("tasks:write")
def list_tasks():
    """List tasks and subtasks (not those in the trash), newest first."""
    return _list("task")


@bp.post("/tasks")
@api_doc(body=TASK_INPUT, response=TASK, status=201)
@require_scope("tasks:write")
def create_task():
    """Create a task (parent_id makes it a subtask; one level only).

    completed_at is kept by the server: set when the status becomes completed.
    """
    task = items.create_task(current_user().id, json_body(), now=now())
    rendered = _rendered("task", task)
    return jsonify(rendered), 201


@bp.get("/tasks/<id:task_id>")
@api_doc(response=TASK)
@require_scope("tasks:write")
def get_task(task_id: int):
    """One task, with its subtasks."""
    return jsonify(_read("task", task_id))


@bp.route("/tasks/<id:task_id>", methods=["PATCH", "PUT"])
@api_doc(body=TASK_INPUT, response=TASK)
@require_scope("tasks:write")
def update_task(task_id: int):
    """Change a task: only the fields sent (PUT does the same as PATCH)."""
    _exists("task", task_id)
    task = items.update_task(current_user().id, task_id, json_body(), now=now())
    rendered = _rendered("task", task)
    return jsonify(rendered)


@bp.post("/tasks/<id:task_id>/complete")
@api_doc(response=TASK)
@require_scope("tasks:write")
def complete_task(task_id: int):
    """Mark a task completed (sets completed_at and progress 100)."""
    task = items.update_task(current_user().id, task_id, {"status": "completed"},
                             now=now())
    rendered = _rendered("task", task)
    return jsonify(rendered)


@bp.delete("/tasks/<id:task_id>")
@api_doc(response=MESSAGE)
@require_scope("tasks:write")
def delete_task(task_id: int):
    """Move a task (and its subtasks) to the trash."""
    return _moved_to_trash("task", task_id)


# ----------------------------------------------------------------------------------- notes


@bp.get("/notes")
@api_doc(response=NOTE, array=True, paged=True, params=list_params("note"))
@require_scope("notes:write")
def list_notes():
    """List notes (not those in the trash), pinned first, then last changed first."""
    return _list("note")


@bp.post("/notes")
@api_doc(body=NOTE_INPUT, response=NOTE, status=201)
@require_scope("notes:write")
def create_note():
    """Create a note; content is Markdown, rendered safely in content_html."""
    note = items.create_note(current_user().id, json_body(), now=now())
    rendered = _rendered("note", note)
    return jsonify(rendered), 201


@bp.post("/notes/preview")
@api_doc(body=PREVIEW, response=PREVIEW)
@require_scope("notes:write")
def preview_note():
    """Render Markdown to sanitized HTML without saving (the editor's preview)."""
    data = json_body()
    content = data.get("content", "")
    if not isinstance(content, str):
        raise ApiError(400, "content must be a string", field="content", reason="invalid")
    if len(content) > items.NOTE_MAX:
        raise ApiError(400, f"content may have at most {items.NOTE_MAX} characters",
                       field="content", reason="too_long")
    return jsonify({"html": render_markdown(content)})


@bp.get("/notes/<id:note_id>")
@api_doc(response=NOTE)
@require_scope("notes:write")
def get_note(note_id: int):
    """One note, with its content rendered to sanitized HTML."""
    return jsonify(_read("note", note_id))


@bp.route("/notes/<id:note_id>", methods=["PATCH", "PUT"])
@api_doc(body=NOTE_INPUT, response=NOTE)
@require_scope("notes:write")
def update_note(note_id: int):
    """Change a note: only the fields sent (PUT does the same as PATCH)."""
    _exists("note", note_id)
    note = items.update_note(current_user().id, note_id, json_body(), now=now())
    rendered = _rendered("note", note)
    return jsonify(rendered)


@bp.delete("/notes/<id:note_id>")
@api_doc(response=MESSAGE)
@require_scope("notes:write")
def delete_note(note_id: int):
    """Move a note to the trash."""
    return _moved_to_trash("note", note_id)


# ------------------------------------------------------------------------------------ tags


def _tag_with_counts(tag) -> dict:
    return items.tag_to_json(tag, items.tag_counts(current_user().id, [tag.id])[tag.id])


@bp.get("/tags")
@api_doc(response=TAG, array=True)
@require_scope("read")
def list_tags():
    """Your tags by name, each with how many live items carry it (in all and per type)."""
    return jsonify(items.tags_json(current_user().id))


@bp.post("/tags")
@api_doc(body=TAG_INPUT, response=TAG, status=201,
         responses={409: "you have a tag with this name (in any case)"})
@require_scopes(CONTENT_WRITE_SCOPES)
def create_tag():
    """Create a tag (a colour is picked when none is given)."""
    tag = items.create_tag(current_user().id, json_body(), now=now())
    rendered = _rendered("tag", tag)
    return jsonify(rendered), 201


@bp.get("/tags/<id:tag_id>")
@api_doc(response=TAG)
@require_scope("read")
def get_tag(tag_id: int):
    """One tag with its counts."""
    tag = items.get_tag(current_user().id, tag_id)
    return jsonify(_tag_with_counts(tag))


@bp.route("/tags/<id:tag_id>", methods=["PATCH", "PUT"])
@api_doc(body=TAG_INPUT, response=TAG,
         responses={409: "another tag has this name: merge instead"})
@require_scopes(CONTENT_WRITE_SCOPES, every=True)
def update_tag(tag_id: int):
    """Rename a tag or change its colour."""
    items.get_tag(current_user().id, tag_id)  # 404 before any complaint about the body
    tag = items.update_tag(current_user().id, tag_id, json_body(), now=now())
    rendered = _rendered("tag", tag)
    return jsonify(rendered)


@bp.delete("/tags/<id:tag_id>")
@api_doc(response=MESSAGE)
@require_scopes(CONTENT_WRITE_SCOPES, every=True)
def delete_tag(tag_id: int):
    """Delete a tag; the items that carried it stay."""
    items.delete_tag(current_user().id, tag_id)
    return jsonify({"message": "The tag is deleted.", "id": tag_id, "type": "tag"})


@bp.post("/tags/<id:tag_id>/merge")
@api_doc(body=MERGE_INPUT, response=TAG)
@require_scopes(CONTENT_WRITE_SCOPES, every=True)
def merge_tag(tag_id: int):
    """Merge this tag into another ({"into": id}): its items get the other tag, and this
    one is deleted."""
    items.get_tag(current_user().id, tag_id)  # 404 before any complaint about the body
    data = json_body()
    target = items.merge_tags(current_user().id, tag_id, data.get("into"), now=now())
    rendered = _rendered("tag", target)
    return jsonify(rendered)


# ----------------------------------------------------------------------------------- trash


@bp.get("/trash")
@api_doc(response=TRASH_ENTRY, array=True, paged=True, cursor=True, params=[
    query_param("limit", f"page size, 1-{items.MAX_LIMIT}", {"type": "integer"}),
    query_param("offset", "items to skip", {"type": "integer"}),
    query_param("cursor", "the X-Next-Cursor of the previous page: the page after it, at "
                "the same cost however deep (keyset paging; not with offset)"),
    query_param("type", "only this item type (bookmark, task, note, file)"),
])
@require_scope("read")
def list_trash():
    """Everything in your trash, of every type, last deleted first.

    Items older than the retention (TRASH_RETENTION_DAYS) are purged first. Page with limit
    and offset, or follow X-Next-Cursor: each page that has more after it names the next in
    that header (and, on a cursor page, in Link rel="next"); ?cursor= reads it in constant
    time where a deep offset costs its depth.
    """
    user = current_user()
    max_age = retention_seconds(current_app.config)
    params = request.args.to_dict(flat=False)
    limit, offset = items.parse_paging(params)
    cursor = params["cursor"][-1] if params.get("cursor") else None
    if max_age:
        items.purge_expired(now(), max_age, user_id=user.id)
    page = items.trash_page(user.id, limit=limit, offset=offset, cursor=cursor,
                            item_type=request.args.get("type") or None)
    return paged_response(page, items.trash_json(user.id, page.entries, max_age),
                          next_cursor=page.next_cursor, by_cursor=cursor is not None)


def _trash_scope(item_type: str) -> None:
    if item_type not in items.item_types():
        raise ApiError(404, f"unknown item type {item_type!r}")
    check_scopes((write_scope(item_type),), every=True)


@bp.post("/trash/<item_type>/<id:item_id>/restore")
@api_doc(response={"type": "object"},
         responses={409: "a subtask whose parent task is still in the trash"})
@require_scopes(CONTENT_WRITE_SCOPES)
def restore_item(item_type: str, item_id: int):
    """Take an item out of the trash (a task with its subtasks deleted along with it).

    An API key needs the write scope of the item's type (bookmark: bookmarks:write).
    """
    _trash_scope(item_type)
    item = items.restore_from_trash(current_user().id, item_type, item_id, now=now(),
                                    max_age=retention_seconds(current_app.config))
    rendered = items.items_to_json(current_user().id, item_type, [item])[0]
    return jsonify(rendered)


@bp.delete("/trash/<item_type>/<id:item_id>")
@api_doc(response=MESSAGE)
@require_scopes(CONTENT_WRITE_SCOPES)
def purge_item(item_type: str, item_id: int):
    """Delete an item in the trash for good (its tags links, and a task's subtasks, too).

    An API key needs the write scope of the item's type.
    """
    _trash_scope(item_type)
    purged = items.purge(current_user().id, item_type, item_id)
    return jsonify({"message": "Deleted for good.", "id": item_id, "type": item_type,
                    "purged": purged})


@bp.delete("/trash")
@api_doc(response={"type": "object", "properties": {"purged": {"type": "integer"}}})
@require_scopes(CONTENT_WRITE_SCOPES, every=True)
def empty_trash():
    """Empty the trash: delete everything in it for good."""
    purged = items.empty_trash(current_user().id)
    return jsonify({"message": "The trash is empty.", "purged": purged})


# ------------------------------------------------------------------------------- dashboard


@bp.get("/dashboard/stats")
@api_doc(response=DASHBOARD)
@require_scope("read")
def dashboard_stats():
    """Counts per type and recent activity across types (the original shape, plus task
    counts by status, unread bookmarks, pinned notes, tags and trash)."""
    return jsonify(items.dashboard_stats(current_user().id))


# ----------------------------------------------------------------------------- app wiring


def _purge_expired(clock, max_age: float) -> None:
    try:
        items.purge_expired(clock.now(), max_age)
    except (peewee.DatabaseError, peewee.InterfaceError) as exc:  # down, or not migrated yet
        log.warning("could not purge the trash (%s: %s); will retry", type(exc).__name__, exc)


def init_app(app: Flask, state) -> None:
    """The items API under ``/api/v1``, the metadata fetcher, and the automatic purge of the
    trash (now, then every :data:`TRASH_SWEEP_INTERVAL` seconds)."""
    app.register_blueprint(bp, url_prefix="/api/v1")
    clock = app.config.get("CLOCK") or SystemClock()
    fetcher = MetadataFetcher(state.db, state.pipeline, clock=clock,
                              allow_private=bool(app.config["FETCH_PRIVATE_ADDRESSES"]))
    app.extensions["trackeep_metadata"] = fetcher
    state.on_close.append(fetcher.close)

    max_age = retention_seconds(app.config)
    if max_age:
        def purge() -> None:
            _purge_expired(clock, max_age)

        state.periodic.run_now("trash purge", purge)
        state.periodic.every(TRASH_SWEEP_INTERVAL, "trash purge", purge)

"""The dashboard's figures: counts per type and recent activity."""

from __future__ import annotations

import peewee

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.models import Bookmark, Note, Tag, Task

from .lists import _title_of
from .types import _TYPES, TASK_STATUSES


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
    by_status = dict.fromkeys(TASK_STATUSES, 0)
    for row in live_tasks.select(Task.status, peewee.fn.COUNT(Task.id).alias("n")) \
            .group_by(Task.status).dicts():
        # peewee's stubs type these rows as models, not dicts
        by_status[row["status"]] = row["n"]  # type: ignore[index]
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


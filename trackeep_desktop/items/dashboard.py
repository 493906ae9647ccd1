"""The dashboard's figures: counts per type and recent activity.

Every figure is O(1) in the user's items: the counts are the kept ones (:mod:`.counts`,
one query), and the recent activity reads the newest live rows of each type from its
``(user_id, updated_at, id)`` index (migration m0009), ``recent`` rows a type. Plain rows:
ten items a type are rendered as four fields each, not as models.
"""

from __future__ import annotations

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.db import database

from . import counts
from .types import _TYPES, TASK_STATUSES


def _recent(table: str, title_columns: tuple[str, ...], user_id: int, limit: int) -> list:
    """``(id, created_at, updated_at, *title_columns)`` of the type's last changed live
    items, newest first."""
    param = database.param
    return database.execute_sql(
        f"SELECT id, created_at, updated_at, {', '.join(title_columns)} FROM {table} "
        f"WHERE user_id = {param} AND deleted_at IS NULL "
        f"ORDER BY updated_at DESC, id DESC LIMIT {param}", (user_id, limit)).fetchall()


def dashboard_stats(user_id: int, *, recent: int = 10) -> dict:
    """The dashboard figures in the original shape (``totalBookmarks``, ``totalTasks``,
    ``totalFiles``, ``totalNotes``, ``recentActivity: [{id, type, title, timestamp}]``) plus
    a few more: task counts by status, unread bookmarks, pinned notes, tags, trash."""
    kept = counts.user_counts(user_id)
    activity = []
    for name, entry in _TYPES.items():
        for item_id, created_at, updated_at, *titles in _recent(
                entry.model._meta.table_name, entry.title_columns, user_id, recent):
            activity.append({
                "id": item_id,
                "type": name,
                "title": next((t for t in titles if t), ""),
                "action": "created" if updated_at == created_at else "updated",
                "timestamp": iso_time(updated_at),
                "_sort": (updated_at, item_id),
            })
    activity.sort(key=lambda a: a.pop("_sort"), reverse=True)
    return {
        "totalBookmarks": kept.get("bookmark", 0),
        "totalTasks": kept.get("task", 0),
        "totalFiles": kept.get("file", 0),
        "totalNotes": kept.get("note", 0),
        "recentActivity": activity[:recent],
        "tasksByStatus": {status: kept.get(f"task:{status}", 0) for status in TASK_STATUSES},
        "unreadBookmarks": kept.get("bookmark:unread", 0),
        "pinnedNotes": kept.get("note:pinned", 0),
        "totalTags": kept.get("tags", 0),
        "trashCount": sum(kept.get(f"{name}:trash", 0) for name in _TYPES),
    }

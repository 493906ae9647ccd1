"""Tasks: statuses, priorities, due dates, progress and one level of subtasks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.models import Tag, Task

from . import counts
from .bookmarks import _tag_input
from .fields import TASK_FIELDS, _clean, _live
from .rows import marks, model_row, select
from .tags import _tag_brief, set_tags
from .types import InvalidInput, write_transaction


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
            set_tags(user_id, "task", task.id, tags, now, new_item=True)
        counts.added(user_id, "task", task)
        record_change(user_id, "task", "created", task)
    return task


def update_task(user_id: int, task_id: int, data: Mapping[str, Any], *, now: float) -> Task:
    """Change the fields present in ``data`` (see :func:`create_task`)."""
    values = _clean(TASK_FIELDS, data)
    tags = _tag_input(data)
    with write_transaction():
        task = _live(Task, user_id, task_id, "task")
        before = counts.snapshot("task", task)
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
        counts.changed(user_id, "task", before, task)
        if tags is not None:
            set_tags(user_id, "task", task.id, tags, now)
        record_change(user_id, "task", "updated", task)
    return task


def subtasks_of(user_id: int, task_ids: Iterable[int]) -> dict[int, list[Task]]:
    """Live subtasks of each task: ``{task_id: [Task, ...]}`` oldest first."""
    ids = list(task_ids)
    found: dict[int, list[Task]] = {i: [] for i in ids}
    if ids:
        for task in (Task.select().where((Task.user == user_id) & Task.parent.in_(ids)
                                         & Task.deleted_at.is_null())
                     .order_by(Task.created_at, Task.id)):
            found[cast(int, task.parent_id)].append(task)  # a subtask: parent_id is set
    return found


#: The columns of a task's JSON: what :func:`task_json` reads from a row.
TASK_COLUMNS = ("id", "user_id", "title", "description", "status", "priority", "due_date",
                "progress", "parent_id", "completed_at", "created_at", "updated_at",
                "deleted_at")


def task_json(row: Mapping[str, Any], tags: list[dict],
              subtasks: list[dict] | None = None) -> dict:
    """A task as the API shows it, from a row of :data:`TASK_COLUMNS` and its tags as
    ``{id, name, color}``; ``subtasks`` (already rendered) when given."""
    out = {
        "id": row["id"],
        "user_id": row["user_id"],
        "title": row["title"],
        "description": row["description"],
        "status": row["status"],
        "priority": row["priority"],
        "due_date": iso_time(row["due_date"]),
        "progress": row["progress"],
        "parent_id": row["parent_id"],
        "completed_at": iso_time(row["completed_at"]),
        "tags": tags,
        "created_at": iso_time(row["created_at"]),
        "updated_at": iso_time(row["updated_at"]),
        "deleted_at": iso_time(row["deleted_at"]),
    }
    if subtasks is not None:
        out["subtasks"] = subtasks
    return out


def task_to_json(task: Task, tags: list[Tag], subtasks: list[dict] | None = None) -> dict:
    """A task model as the API shows it (see :func:`task_json`)."""
    return task_json(model_row(task, TASK_COLUMNS), [_tag_brief(t) for t in tags], subtasks)


def subtask_rows(user_id: int, task_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Live subtasks of each task as rows: ``{task_id: [row, ...]}`` oldest first. ``+user_id``
    keeps SQLite (which plans without statistics) on the ``parent_id`` index: on ``user_id``
    it would walk the user's tasks in ``created_at`` order to spare sorting a few rows."""
    ids = list(task_ids)
    found: dict[int, list[dict]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for row in select(f"SELECT {', '.join(TASK_COLUMNS)} FROM task "
                          f"WHERE parent_id IN ({marks(len(chunk))}) AND +user_id = ? "
                          "AND deleted_at IS NULL ORDER BY created_at, id",
                          [*chunk, user_id], TASK_COLUMNS):
            found[row["parent_id"]].append(row)
    return found

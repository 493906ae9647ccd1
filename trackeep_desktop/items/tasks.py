"""Tasks: statuses, priorities, due dates, progress and one level of subtasks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.models import Tag, Task

from .bookmarks import _tag_input
from .fields import TASK_FIELDS, _clean, _live
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
            set_tags(user_id, "task", task.id, tags, now)
        record_change(user_id, "task", "created", task)
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

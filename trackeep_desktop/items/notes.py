"""Notes: Markdown text, pinned or not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.models import Note, Tag

from . import counts
from .bookmarks import _tag_input
from .fields import NOTE_FIELDS, _clean, _live
from .rows import model_row
from .tags import _tag_brief, set_tags
from .types import InvalidInput, write_transaction


def create_note(user_id: int, data: Mapping[str, Any], *, now: float) -> Note:
    """Create a note ``{title, content?, is_pinned?, tags?}`` (content is Markdown)."""
    values = _clean(NOTE_FIELDS, data)
    if "title" not in values:
        raise InvalidInput("A note needs a title.", "title", "required")
    tags = _tag_input(data)
    with write_transaction():
        note = Note.create(user=user_id, created_at=now, updated_at=now, **values)
        if tags:
            set_tags(user_id, "note", note.id, tags, now, new_item=True)
        counts.added(user_id, "note", note)
        record_change(user_id, "note", "created", note)
    return note


def update_note(user_id: int, note_id: int, data: Mapping[str, Any], *, now: float) -> Note:
    """Change the fields present in ``data`` (see :func:`create_note`)."""
    values = _clean(NOTE_FIELDS, data)
    tags = _tag_input(data)
    with write_transaction():
        note = _live(Note, user_id, note_id, "note")
        before = counts.snapshot("note", note)
        for name, value in values.items():
            setattr(note, name, value)
        note.updated_at = now
        note.save()
        counts.changed(user_id, "note", before, note)
        if tags is not None:
            set_tags(user_id, "note", note.id, tags, now)
        record_change(user_id, "note", "updated", note)
    return note


#: The columns of a note's JSON: what :func:`note_json` reads from a row.
NOTE_COLUMNS = ("id", "user_id", "title", "content", "is_pinned", "created_at", "updated_at",
                "deleted_at")


def note_json(row: Mapping[str, Any], tags: list[dict], html: str | None = None) -> dict:
    """A note as the API shows it, from a row of :data:`NOTE_COLUMNS` and its tags as
    ``{id, name, color}``; ``content_html`` (sanitized) when given."""
    out = {
        "id": row["id"],
        "user_id": row["user_id"],
        "title": row["title"],
        "content": row["content"],
        "is_pinned": bool(row["is_pinned"]),
        "tags": tags,
        "created_at": iso_time(row["created_at"]),
        "updated_at": iso_time(row["updated_at"]),
        "deleted_at": iso_time(row["deleted_at"]),
    }
    if html is not None:
        out["content_html"] = html
    return out


def note_to_json(note: Note, tags: list[Tag], html: str | None = None) -> dict:
    """A note model as the API shows it (see :func:`note_json`)."""
    return note_json(model_row(note, NOTE_COLUMNS), [_tag_brief(t) for t in tags], html)

"""Notes: Markdown text, pinned or not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.models import Note, Tag

from .bookmarks import _tag_input
from .fields import NOTE_FIELDS, _clean, _live
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
            set_tags(user_id, "note", note.id, tags, now)
        record_change(user_id, "note", "created", note)
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
        record_change(user_id, "note", "updated", note)
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

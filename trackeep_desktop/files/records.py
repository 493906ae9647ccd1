"""File records: upload, read, update, list and trash a user's files."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import peewee

from trackeep_desktop import items
from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.items import counts
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import File

from .names import detect_mime, file_kind, preview_kind, sanitize_name
from .store import (
    ITEM_TYPE,
    MAX_DESCRIPTION_LENGTH,
    SORT_FIELDS,
    BlobStore,
    InvalidInput,
    NotFound,
    Spool,
    lock_blobs,
    remove_unreferenced,
)

log = logging.getLogger(__name__)


def check_description(description: Any) -> str:
    """A description as stored: a string of at most :data:`MAX_DESCRIPTION_LENGTH`."""
    if description is None:
        return ""
    if not isinstance(description, str):
        raise InvalidInput("The description must be text.", "description")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"The description may have at most {MAX_DESCRIPTION_LENGTH} "
                           "characters.", "description")
    return description


def _check_tags(tags: Any) -> list[str]:
    try:
        return items.parse_tag_names(tags)
    except items.InvalidInput as exc:
        raise InvalidInput(exc.message, "tags") from exc


def tag_names_of(value: str) -> list[str]:
    """Tag names from a ``tag`` filter (comma-separated)."""
    try:
        return [items.normalize_tag_name(n, "tag") for n in value.split(",") if n.strip()]
    except items.InvalidInput as exc:
        raise InvalidInput(exc.message, "tag") from exc


def create_file(user_id: int, spool: Spool, *, name: str | None, now: float,
                store: BlobStore, description: Any = "", tags: Any = None) -> File:
    """Keep an uploaded file: the spool's bytes go into the store (or are dropped when the
    store has them already), and a row records the name, type, size and hash. The spool is
    consumed either way."""
    placed = False
    try:
        name = sanitize_name(name)
        description = check_description(description)
        tag_names = _check_tags(tags)
        spool.close()
        mime_type = detect_mime(name, spool.head)
        with database.atomic(), counts.batch():
            record = File.create(user=user_id, name=name, description=description,
                                 mime_type=mime_type, kind=file_kind(mime_type),
                                 size=spool.size, sha256=spool.sha256, created_at=now,
                                 updated_at=now)
            if tag_names:
                items.set_tags(user_id, ITEM_TYPE, record.id, tag_names, now, new_item=True)
            counts.added(user_id, ITEM_TYPE, record)
            lock_blobs()
            placed = store.place(spool)
            record_change(user_id, ITEM_TYPE, "created", record)
    except BaseException:
        spool.discard()
        if placed:
            _forget_blob(store, spool.sha256)
        raise
    log.info("user %s uploaded file %s (%d bytes, %s%s)", user_id, record.id, record.size,
             mime_type, "" if placed else ", content already stored")
    return record


def _forget_blob(store: BlobStore, sha256: str) -> None:
    """After a failed transaction: remove a blob it placed, unless something else uses it."""
    try:
        with database.atomic():
            remove_unreferenced(store, [sha256])
    except Exception:
        log.exception("could not remove blob %s after a failed upload", sha256)


def get_file(user_id: int, file_id: Any, *, include_deleted: bool = False) -> File:
    """The user's file with this id; :class:`NotFound` for anything else (another user's,
    unknown, not a number, or in the trash unless ``include_deleted``)."""
    try:
        file_id = int(file_id)
    except (TypeError, ValueError):
        raise NotFound("No such file.") from None
    query = File.select().where(File.id == file_id, File.user == user_id)
    if not include_deleted:
        query = query.where(File.deleted_at.is_null())
    record = query.first()
    if record is None:
        raise NotFound("No such file.")
    return record


@dataclasses.dataclass(frozen=True)
class FileQuery:
    """Filters, order and page of :func:`list_files`."""

    limit: int = 50
    offset: int = 0
    tag: str | None = None
    kind: str | None = None  # image, video, audio, document, archive, other
    q: str | None = None  # in the name or the description
    created_after: float | None = None
    created_before: float | None = None
    sort: str = "-created_at"


KINDS = ("image", "video", "audio", "document", "archive", "other")


def list_files(user_id: int, query: FileQuery) -> tuple[list[File], int]:
    """A page of the user's files (not the trashed ones) and the total that match."""
    sort = query.sort.removeprefix("-")
    if sort not in SORT_FIELDS:
        raise InvalidInput(f"sort by one of {', '.join(SORT_FIELDS)} (prefix - for "
                           "descending)", "sort")
    if query.kind is not None and query.kind not in KINDS:
        raise InvalidInput(f"type must be one of {', '.join(KINDS)}", "type")
    select = File.select().where(File.user == user_id, File.deleted_at.is_null())
    names = tag_names_of(query.tag) if query.tag else []
    if names:
        select = select.where(items.tagged_with(user_id, ITEM_TYPE, File.id, names))
    if query.kind is not None:
        select = select.where(File.kind == query.kind)
    if query.q:
        needle = query.q.lower()
        select = select.where(peewee.fn.LOWER(File.name).contains(needle)
                              | peewee.fn.LOWER(File.description).contains(needle))
    if query.created_after is not None:
        select = select.where(File.created_at >= query.created_after)
    if query.created_before is not None:
        select = select.where(File.created_at < query.created_before)
    total = select.count()
    field: peewee.ColumnBase = SORT_FIELDS[sort]
    if sort == "name":
        field = peewee.fn.LOWER(field)
    if query.sort.startswith("-"):
        order = (field.desc(), File.id.desc())
    else:
        order = (field.asc(), File.id.asc())
    rows = list(select.order_by(*order).limit(query.limit).offset(query.offset))
    return rows, total


def update_file(user_id: int, file_id: Any, changes: dict[str, Any], *, now: float) -> File:
    """Change the name, description and/or tags of a file; only the keys present in
    ``changes`` change, and other keys are ignored (a client may send back what it read,
    as with the other items)."""
    record = get_file(user_id, file_id)
    updates: dict[str, Any] = {}
    if "name" in changes:
        if not isinstance(changes["name"], str) or not changes["name"].strip():
            raise InvalidInput("The name must be non-empty text.", "name")
        updates["name"] = sanitize_name(changes["name"])
    if "description" in changes:
        updates["description"] = check_description(changes["description"])
    tag_names = _check_tags(changes["tags"]) if "tags" in changes else None
    with database.atomic():
        for name, value in updates.items():
            setattr(record, name, value)
        record.updated_at = now
        record.save()
        if tag_names is not None:
            items.set_tags(user_id, ITEM_TYPE, record.id, tag_names, now)
        record_change(user_id, ITEM_TYPE, "updated", record)
    return record


def trash_file(user_id: int, file_id: Any, *, now: float) -> File:
    """Move a file to the trash (the items domain restores and purges it from there)."""
    try:
        return items.move_to_trash(user_id, ITEM_TYPE, file_id, now=now)
    except items.NotFound:
        raise NotFound("No such file.") from None


def tags_of(user_id: int, file_ids: list[int]) -> dict[int, list]:
    """The tags (``Tag`` rows) of each file: ``{file_id: [Tag, ...]}``."""
    return items.tags_for(user_id, ITEM_TYPE, file_ids)


#: The columns of a file's JSON: what :func:`file_json` reads from a row.
FILE_COLUMNS = ("id", "user_id", "name", "description", "mime_type", "size", "sha256",
                "created_at", "updated_at", "deleted_at")


def file_json(row: Mapping[str, Any], tags: list[dict]) -> dict:
    """A file as the API answers it (the original client's field names included), from a
    row of :data:`FILE_COLUMNS` and its tags as ``{id, name, color}``."""
    kind = preview_kind(row["mime_type"])
    file_id = row["id"]
    return {
        "id": file_id,
        "user_id": row["user_id"],
        "name": row["name"],
        "original_name": row["name"],
        "file_name": row["name"],
        "description": row["description"],
        "mime_type": row["mime_type"],
        "file_type": file_kind(row["mime_type"]),
        "file_size": row["size"],
        "sha256": row["sha256"],
        "tags": tags,
        "is_public": False,
        "previewable": kind in ("image", "text"),
        "download_url": f"/api/v1/files/{file_id}/download",
        # The original's field: where the client fetches the bytes (never a server path).
        "file_path": f"/api/v1/files/{file_id}/download",
        "preview_url": f"/api/v1/files/{file_id}/preview" if kind in ("image", "text")
        else None,
        "created_at": iso_time(row["created_at"]),
        "updated_at": iso_time(row["updated_at"]),
        "deleted_at": iso_time(row["deleted_at"]),
    }


def file_to_json(record: File, tags: list | None = None) -> dict:
    """A file model as the API answers it (see :func:`file_json`); ``tags`` are the file's
    ``Tag`` rows."""
    return file_json({column: getattr(record, column) for column in FILE_COLUMNS},
                     [{"id": t.id, "name": t.name, "color": t.color} for t in tags or []])

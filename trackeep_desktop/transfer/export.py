"""Export: everything a user owns as one consistent manifest, written into a ZIP with the
file contents."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import peewee

from trackeep_desktop import files
from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.db import database, is_postgres
from trackeep_desktop.storage.models import (
    Bookmark,
    File,
    ItemTag,
    Note,
    Tag,
    Task,
    TimeEntry,
    User,
)

from .archive import _CHUNK, FORMAT, MANIFEST, VERSION


@dataclasses.dataclass(frozen=True)
class Section:
    """One list of the manifest: its model, its item type, and the derived columns left out
    (recomputed on import)."""

    name: str
    model: type[Tag | Bookmark | Task | Note | File | TimeEntry]
    item_type: str | None
    derived: frozenset[str]

    def columns(self) -> list[peewee.Field]:
        """The exported columns: all but ``id``, ``user`` and the derived ones."""
        return [f for f in self.model._meta.sorted_fields
                if f.name not in ("id", "user") and f.name not in self.derived]


SECTIONS = (
    Section("tags", Tag, None, frozenset({"name_key"})),
    Section("bookmarks", Bookmark, "bookmark", frozenset({"url_hash"})),
    Section("tasks", Task, "task", frozenset()),
    Section("notes", Note, "note", frozenset()),
    Section("files", File, "file", frozenset({"kind"})),
    # last: its task_id, bookmark_id and note_id name rows of the sections above
    Section("time_entries", TimeEntry, "time_entry", frozenset()),
)


def _key(field: peewee.Field) -> str:
    """A column's name in the manifest (foreign keys as ``<name>_id``)."""
    return f"{field.name}_id" if isinstance(field, peewee.ForeignKeyField) else field.name


def build_manifest(user: User, *, now: float, app_version: str = "") -> dict[str, Any]:
    """Everything the user owns, as the manifest of a full export (read in one transaction,
    so it is one consistent picture)."""
    with database.atomic():
        if is_postgres():
            database.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        tag_names = {t.id: t.name for t in Tag.select(Tag.id, Tag.name)
                     .where(Tag.user == user.id)}
        tagged: dict[tuple[str, int], list[str]] = {}
        for link in (ItemTag.select(ItemTag.item_type, ItemTag.item_id, ItemTag.tag)
                     .join(Tag).where(Tag.user == user.id).order_by(Tag.name_key)):
            tagged.setdefault((link.item_type, link.item_id), []).append(
                tag_names[link.tag_id])
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": iso_time(now),
            "app_version": app_version,
            "user": {"username": user.username, "email": user.email,
                     "full_name": user.full_name},
        }
        for section in SECTIONS:
            columns = section.columns()
            rows = []
            for row in (section.model.select().where(section.model.user == user.id)
                        .order_by(section.model.id)):
                entry: dict[str, Any] = {"id": row.id}
                entry.update({_key(f): row.__data__.get(f.name) for f in columns})
                if section.item_type is not None:
                    entry["tags"] = tagged.get((section.item_type, row.id), [])
                if isinstance(row, File):  # the files section
                    entry["blob"] = f"blobs/{row.sha256}"
                rows.append(entry)
            manifest[section.name] = rows
    manifest["counts"] = {s.name: len(manifest[s.name]) for s in SECTIONS}
    return manifest


class _Pipe:
    """A write-only stream ``zipfile`` writes into and :func:`iter_export` drains."""

    def __init__(self):
        self._chunks: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        return None

    def close(self) -> None:
        """Nothing to release (zipfile does not close a stream it was given)."""
        return None

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def iter_export(manifest: dict[str, Any], store: files.BlobStore) -> Iterator[bytes]:
    """The ZIP archive of a manifest and its blobs, in chunks (a streamed response body);
    each blob is read from the store a megabyte at a time."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        yield pipe.drain()
        seen = set()
        for entry in manifest["files"]:
            sha = entry["sha256"]
            if sha in seen:
                continue
            seen.add(sha)
            info = zipfile.ZipInfo(entry["blob"], date_time=_zip_time(entry["created_at"]))
            info.compress_type = zipfile.ZIP_DEFLATED
            with store.open(sha) as blob, zf.open(info, "w", force_zip64=True) as out:
                while chunk := blob.read(_CHUNK):
                    out.write(chunk)
                    data = pipe.drain()
                    if data:
                        yield data
            yield pipe.drain()
    yield pipe.drain()


def _zip_time(timestamp: float) -> tuple[int, int, int, int, int, int]:
    moment = dt.datetime.fromtimestamp(max(timestamp, 315532800), dt.UTC)  # ZIP starts at 1980
    return moment.timetuple()[:6]


def export_filename(user: User, now: float) -> str:
    """``trackeep-export-<username>-<YYYY-MM-DD>.zip``."""
    day = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")
    return f"trackeep-export-{user.username}-{day}.zip"

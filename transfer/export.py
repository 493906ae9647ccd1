"""TODO export."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import peewee
from trackeep_desktop.db import database, is_postgres
from trackeep_desktop.models import Bookmark, File, ItemTag, Note, Tag, Task, User

from trackeep_desktop import events, files
from trackeep_desktop.accounts import iso_time

from .importer import ImportReport

log = logging.getLogger(__name__)


FORMAT = "trackeep-export"


VERSION = 1


MANIFEST = "manifest.json"


MAX_MANIFEST_BYTES = 256 * 1024 * 1024


_CHUNK = 1024 * 1024


#: ``progress(stage, done, total)``: stages are ``checking``, ``files`` and ``saving``.
Progress = Callable[[str, int, int], None]



class TransferError(Exception):
    """An import the domain refuses; ``message`` is fit to show the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArchive(TransferError):
    """The upload is not a Trackeep export, or something in it is damaged or malformed."""


class InvalidBookmarkFile(TransferError):
    """The upload is not a Netscape bookmark file."""


class AccountNotEmpty(TransferError):
    """A full import goes only into an account with no items, files or tags."""


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def _write_transaction():
    """A transaction that takes SQLite's write lock at once (``BEGIN IMMEDIATE``): one that
    read first could fail to upgrade its lock (``database is locked``) if another connection
    committed a write meanwhile. PostgreSQL: a plain transaction."""
    return database.atomic() if is_postgres() else database.atomic("IMMEDIATE")


def pubsub_progress(pubsub, user_id: int, interval: float = 0.25,
                    also: Progress | None = None) -> Progress:
    """A progress callback that publishes ``{"type": "import", "action": "progress", "item":
    {stage, done, total}}`` on the user's change-event channel at most every ``interval``
    seconds (and always the last step of a stage), and calls ``also`` every time."""
    last = {"at": 0.0}

    def report(stage: str, done: int, total: int) -> None:
        if also is not None:
            also(stage, done, total)
        moment = time.monotonic()
        if done < total and moment - last["at"] < interval:
            return
        last["at"] = moment
        message = {"type": "import", "action": "progress", "id": None,
                   "item": {"stage": stage, "done": done, "total": total},
                   "at": iso_time(time.time())}
        try:
            pubsub.publish(events.channel_for(user_id), message)
        except Exception:
            log.exception("could not publish import progress for user %s", user_id)

    return report


def publish_finished(pubsub, user_id: int, kind: str, report: ImportReport) -> None:
    """Tell the user's other windows an import is done (``{"type": "import", "action":
    "finished", "item": {kind, imported, ...}}``), so they reload; never raises."""
    message = {"type": "import", "action": "finished", "id": None,
               "item": {"kind": kind, **report.to_json()}, "at": iso_time(time.time())}
    try:
        pubsub.publish(events.channel_for(user_id), message)
    except Exception:
        log.exception("could not publish the end of an import for user %s", user_id)


@dataclasses.dataclass(frozen=True)
class Section:
    """One list of the manifest: its model, its item type, and the derived columns left out
    (recomputed on import)."""

    name: str
    model: type[peewee.Model]
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
                entry = {"id": row.id}
                entry.update({_key(f): row.__data__.get(f.name) for f in columns})
                if section.item_type is not None:
                    entry["tags"] = tagged.get((section.item_type, row.id), [])
                if section.name == "files":
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

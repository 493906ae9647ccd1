"""Import of a full export: check the whole archive first, then write it in one transaction
into an empty account."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import peewee

from trackeep_desktop import files, items, safejson
from trackeep_desktop.items import counts as item_counts
from trackeep_desktop.storage.changes import quiet, record_change
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import ItemTag, Tag, Task

from .archive import (
    _CHUNK,
    FORMAT,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    VERSION,
    AccountNotEmpty,
    ImportReport,
    InvalidArchive,
    Progress,
    _no_progress,
    _write_transaction,
)
from .export import SECTIONS, Section, _key

log = logging.getLogger(__name__)


def _fail(where: str, message: str) -> InvalidArchive:
    return InvalidArchive(f"{where}: {message}")


def _check_column(field: peewee.Field, value: Any, where: str) -> Any:
    """A manifest value of a column, checked against the column's type."""
    if value is None:
        if field.null:
            return None
        raise _fail(where, "must not be null")
    if isinstance(field, (peewee.DoubleField, peewee.FloatField)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                value):
            raise _fail(where, "must be a number")
        return float(value)
    if isinstance(field, peewee.BooleanField):
        if not isinstance(value, bool):
            raise _fail(where, "must be true or false")
        return value
    if isinstance(field, (peewee.IntegerField, peewee.ForeignKeyField)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, "must be a whole number")
        return value
    if isinstance(field, (peewee.CharField, peewee.TextField)):
        if not isinstance(value, str):
            raise _fail(where, "must be text")
        if isinstance(field, peewee.CharField) and len(value) > field.max_length:
            raise _fail(where, f"may have at most {field.max_length} characters")
        return value
    raise _fail(where, f"has a column type the import does not know ({type(field).__name__})")


@dataclasses.dataclass
class _Row:
    old_id: int
    values: dict[str, Any]
    tags: list[str]


def _check_rows(section: Section, raw: Any) -> list[_Row]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _fail(section.name, "must be a list")
    columns = section.columns()
    rows, seen = [], set()
    for index, entry in enumerate(raw):
        where = f"{section.name}[{index}]"
        if not isinstance(entry, dict):
            raise _fail(where, "must be an object")
        old_id = entry.get("id")
        if isinstance(old_id, bool) or not isinstance(old_id, int) or old_id in seen:
            raise _fail(f"{where}.id", "must be a whole number, unique in its list")
        seen.add(old_id)
        values = {}
        for field in columns:
            key = _key(field)
            if key not in entry:
                if field.default is None and not field.null:
                    raise _fail(f"{where}.{key}", "is missing")
                value = field.default() if callable(field.default) else field.default
            else:
                value = _check_column(field, entry[key], f"{where}.{key}")
            values[key] = value
        tags = entry.get("tags", [])
        if section.item_type is not None and not (
                isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise _fail(f"{where}.tags", "must be a list of tag names")
        rows.append(_Row(old_id, values, tags if section.item_type else []))
    return rows


def _domain_check(where: str, check: Callable[[Any], Any], value: Any) -> Any:
    """``check(value)``, with a domain error reported at ``where`` in the archive."""
    try:
        return check(value)
    except (items.ItemError, files.FileError) as exc:
        raise _fail(where, exc.message) from None


@dataclasses.dataclass
class PreparedImport:
    """An archive that passed every check: its rows per section and the spools of blobs the
    store does not have yet (checked against their size and hash)."""

    rows: dict[str, list[_Row]]
    spools: dict[str, files.Spool]

    def discard(self) -> None:
        """Delete the extracted blobs that were not moved into the store."""
        for spool in self.spools.values():
            if spool.active:
                spool.discard()


def _check_manifest(manifest: Any) -> dict[str, list[_Row]]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidArchive("This is not a Trackeep export (its manifest.json is not one).")
    version = manifest.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise InvalidArchive(f"This export has format version {version!r}; this Trackeep reads "
                             f"versions 1 to {VERSION}.")
    rows = {s.name: _check_rows(s, manifest.get(s.name)) for s in SECTIONS}

    keys = set()
    for index, row in enumerate(rows["tags"]):
        where = f"tags[{index}]"
        row.values["name"] = _domain_check(f"{where}.name", items.normalize_tag_name,
                                           row.values["name"])
        row.values["color"] = _domain_check(f"{where}.color", items.parse_color,
                                            row.values["color"])
        key = items.tag_key(row.values["name"])
        if key in keys:
            raise _fail(f"{where}.name", "names a tag twice")
        keys.add(key)
    for section in SECTIONS[1:]:
        for index, row in enumerate(rows[section.name]):
            for name in row.tags:
                if items.tag_key(name) not in keys:
                    raise _fail(f"{section.name}[{index}].tags",
                                f"names the tag {name!r}, which is not in the archive")
    for index, row in enumerate(rows["bookmarks"]):
        where = f"bookmarks[{index}]"
        row.values["url"] = _domain_check(f"{where}.url", items.normalize_url,
                                          row.values["url"])
        if row.values["favicon_url"]:
            row.values["favicon_url"] = _domain_check(
                f"{where}.favicon_url", items.normalize_url, row.values["favicon_url"])
    parents = {r.old_id: r for r in rows["tasks"]}
    for index, row in enumerate(rows["tasks"]):
        where = f"tasks[{index}]"
        if row.values["status"] not in items.TASK_STATUSES:
            raise _fail(f"{where}.status", f"is one of {', '.join(items.TASK_STATUSES)}")
        if row.values["priority"] not in items.TASK_PRIORITIES:
            raise _fail(f"{where}.priority", f"is one of {', '.join(items.TASK_PRIORITIES)}")
        if not 0 <= row.values["progress"] <= 100:
            raise _fail(f"{where}.progress", "must be from 0 to 100")
        parent_id = row.values["parent_id"]
        if parent_id is not None:
            parent = parents.get(parent_id)
            if parent is None or parent.values["parent_id"] is not None:
                raise _fail(f"{where}.parent_id", "must be the id of a top-level task in the "
                                                  "archive")
    _check_time_entries(rows)
    for index, row in enumerate(rows["files"]):
        where = f"files[{index}]"
        if not re.fullmatch(r"[0-9a-f]{64}", row.values["sha256"]):
            raise _fail(f"{where}.sha256", "must be 64 lower-case hex digits")
        if row.values["size"] < 0:
            raise _fail(f"{where}.size", "must not be negative")
        row.values["name"] = files.sanitize_name(row.values["name"])
    return rows


#: A time entry's links: column -> the section whose ids it names.
TIME_LINKS = {"task_id": "tasks", "bookmark_id": "bookmarks", "note_id": "notes"}


def _check_time_entries(rows: dict[str, list[_Row]]) -> None:
    """Each entry ends after it starts, links at most one item, and that item is in the
    archive; at most one live entry runs."""
    known = {section: {r.old_id for r in rows[section]} for section in TIME_LINKS.values()}
    running = 0
    for index, row in enumerate(rows["time_entries"]):
        where = f"time_entries[{index}]"
        values = row.values
        if values["end_time"] is not None and values["end_time"] <= values["start_time"]:
            raise _fail(f"{where}.end_time", "must be after start_time")
        if values["end_time"] is None and values["deleted_at"] is None:
            running += 1
        linked = [key for key in TIME_LINKS if values[key] is not None]
        if len(linked) > 1:
            raise _fail(where, "links to one item at most")
        for key in linked:
            if values[key] not in known[TIME_LINKS[key]]:
                raise _fail(f"{where}.{key}", f"must be the id of one of the archive's "
                                              f"{TIME_LINKS[key]}")
    if running > 1:
        raise _fail("time_entries", "has more than one running timer")


def _read_manifest(archive: zipfile.ZipFile) -> Any:
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise InvalidArchive("This is not a Trackeep export: it has no manifest.json.") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise InvalidArchive("The manifest of this archive is too large.")
    try:
        with archive.open(info) as fh:
            return safejson.loads(fh.read(MAX_MANIFEST_BYTES + 1).decode("utf-8"))
    except safejson.UnsafeJson as exc:
        where = f" (at {exc.field})" if exc.field else ""
        raise InvalidArchive(f"The manifest of this archive cannot be imported{where}: "
                             f"{exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArchive(f"The manifest of this archive is not valid JSON: {exc}") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise InvalidArchive(f"The archive is damaged: {exc}") from None


def _extract_blobs(archive: zipfile.ZipFile, file_rows: list[_Row], store: files.BlobStore,
                   progress: Progress) -> dict[str, files.Spool]:
    wanted: dict[str, int] = {}
    for index, row in enumerate(file_rows):
        sha, size = row.values["sha256"], row.values["size"]
        if wanted.setdefault(sha, size) != size:
            raise _fail(f"files[{index}].size", "differs from another file with the same hash")
    spools: dict[str, files.Spool] = {}
    try:
        for done, (sha, size) in enumerate(wanted.items(), start=1):
            if not store.exists(sha):
                name = f"blobs/{sha}"
                try:
                    info = archive.getinfo(name)
                except KeyError:
                    raise InvalidArchive(f"The archive lacks {name}, the content of a file "
                                         "its manifest lists.") from None
                if info.file_size != size:
                    raise InvalidArchive(f"{name} has {info.file_size} bytes; the manifest "
                                         f"says {size}.")
                spool = store.spool(limit=size)
                spools[sha] = spool
                try:
                    with archive.open(info) as blob:
                        while chunk := blob.read(_CHUNK):
                            spool.write(chunk)
                except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                    raise InvalidArchive(f"{name} is damaged: {exc}") from None
                except files.TooLarge:
                    raise InvalidArchive(f"{name} is larger than the manifest says.") from None
                spool.close()
                if spool.sha256 != sha or spool.size != size:
                    raise InvalidArchive(f"{name} is damaged: its content does not match its "
                                         "SHA-256.")
            progress("files", done, len(wanted))
    except BaseException:
        for spool in spools.values():
            spool.discard()
        raise
    return spools


def account_is_empty(user_id: int) -> bool:
    """True if the user has no tag and no item of any kind (trash included)."""
    if Tag.select().where(Tag.user == user_id).exists():
        return False
    return not any(s.model.select().where(s.model.user == user_id).exists()
                   for s in SECTIONS[1:])


def prepare_archive(user_id: int, archive_path: str | Path, *, store: files.BlobStore,
                    progress: Progress | None = None) -> PreparedImport:
    """Check an archive for :func:`import_archive` and extract the blobs the store lacks;
    raises :class:`InvalidArchive` or :class:`AccountNotEmpty` and writes nothing."""
    progress = progress or _no_progress
    if not account_is_empty(user_id):
        raise AccountNotEmpty("A full export can only be imported into an empty account: this "
                              "one already has items, files or tags (the trash counts too).")
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidArchive(f"This is not a ZIP archive ({exc}). Upload the file that "
                             "Export made.") from None
    with archive:
        progress("checking", 0, 1)
        rows = _check_manifest(_read_manifest(archive))
        progress("checking", 1, 1)
        spools = _extract_blobs(archive, rows["files"], store, progress)
    return PreparedImport(rows, spools)


def write_import(user_id: int, prepared: PreparedImport, *, store: files.BlobStore,
                 progress: Progress | None = None) -> ImportReport:
    """Write a checked archive in one transaction: tags, then items (parent tasks before
    their subtasks), tag links, blobs into the store; then the change hooks of every row
    (and of the move to the trash for trashed ones). Nothing stays on failure."""
    progress = progress or _no_progress
    rows = prepared.rows
    total = sum(len(r) for r in rows.values())
    done = 0
    placed: list[str] = []
    created: list[tuple[str, Any]] = []
    try:
        with _write_transaction(), quiet(), item_counts.batch():
            tag_ids = {}
            for row in rows["tags"]:
                tag = Tag.create(user=user_id, name_key=items.tag_key(row.values["name"]),
                                 **row.values)
                tag_ids[tag.name_key] = tag.id
                created.append(("tag", tag))
                item_counts.tag_created(user_id)
                done += 1
                progress("saving", done, total)
            links: list[dict[str, Any]] = []
            ids_of: dict[str, dict[int, int]] = {}  # section -> old id -> new id
            for section in SECTIONS[1:]:
                item_type = cast(str, section.item_type)  # every section after the tags
                new_ids: dict[int, int] = ids_of.setdefault(section.name, {})
                parents: list[tuple[Any, int]] = []
                for row in rows[section.name]:  # in their order, so the ids keep it too
                    values = dict(row.values)
                    if section.name == "bookmarks":
                        values["url_hash"] = items.url_hash(values["url"])
                    elif section.name == "tasks":
                        parent = values.pop("parent_id")
                        if parent is not None:
                            parents.append((row, parent))
                    elif section.name == "files":
                        values["kind"] = files.file_kind(values["mime_type"])
                    elif section.name == "time_entries":
                        for key, linked in TIME_LINKS.items():
                            if values[key] is not None:
                                values[key] = ids_of[linked][values[key]]
                    item = section.model.create(user=user_id, **values)
                    new_ids[row.old_id] = item.id
                    created.append((item_type, item))
                    item_counts.added(user_id, item_type, item)
                    tagged = [tag_ids[items.tag_key(name)] for name in dict.fromkeys(row.tags)]
                    live = getattr(item, "deleted_at", None) is None
                    item_counts.linked(user_id, item_type, live, tagged)
                    links.extend({"tag": tag_id, "item_type": section.item_type,
                                  "item_id": item.id} for tag_id in tagged)
                    done += 1
                    progress("saving", done, total)
                for row, parent in parents:  # a parent may come after its subtask
                    Task.update(parent=new_ids[parent]).where(
                        Task.id == new_ids[row.old_id]).execute()
            for start in range(0, len(links), 500):
                ItemTag.insert_many(links[start:start + 500]).execute()
            files.lock_blobs()
            for sha, spool in prepared.spools.items():
                if store.place(spool):
                    placed.append(sha)
            for item_type, item in created:
                if item_type == "task" and item.parent_id is None:
                    item = Task.get_by_id(item.id)  # with its parent set
                record_change(user_id, item_type, "created", item)
                if getattr(item, "deleted_at", None) is not None:
                    record_change(user_id, item_type, "deleted", item)
    except BaseException:
        prepared.discard()
        if placed:
            with database.atomic():
                files.remove_unreferenced(store, placed)
        raise
    counts = {s.name: len(rows[s.name]) for s in SECTIONS}
    log.info("user %s imported a full export: %s", user_id,
             ", ".join(f"{n} {k}" for k, n in counts.items()))
    return ImportReport(counts)


def import_archive(user_id: int, archive_path: str | Path, *, store: files.BlobStore,
                   progress: Progress | None = None) -> ImportReport:
    """Restore a full export into the user's (empty) account: :func:`prepare_archive`, then
    :func:`write_import`."""
    prepared = prepare_archive(user_id, archive_path, store=store, progress=progress)
    try:
        return write_import(user_id, prepared, store=store, progress=progress)
    finally:
        prepared.discard()

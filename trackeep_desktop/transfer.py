"""Import and export: a user's full backup as one ZIP archive, and the Netscape bookmark file
that Chrome, Firefox and Safari read and write.

**The full export** is a ZIP with ``manifest.json`` (every tag, bookmark, task, note and file
of the user, trash included, every column, times as epoch seconds) and ``blobs/<sha256>``,
the bytes of each file once. :func:`build_manifest` reads the rows; :func:`iter_export`
streams the archive in chunks without ever holding a file in memory. Share links are not
exported: they are secrets of the instance that made them.

**Importing an archive** (:func:`import_archive`) restores it into an empty account exactly:
the same fields, tags, trash state and file bytes (only the ids are new). Everything is
checked first (the manifest's shape and values, each blob's size and SHA-256); then all rows
are written in one transaction and the blobs moved into the store under the same lock as an
upload. A bad archive leaves nothing behind.

**Netscape bookmark files** (:func:`parse_netscape`, :func:`import_bookmarks`,
:func:`export_bookmarks`): folders become tags (not the browsers' own top-level containers
such as the bookmarks bar), ``ADD_DATE`` becomes the creation time, Firefox's ``TAGS`` and
``<DD>`` descriptions are kept, and URLs already saved (after normalization) or repeated in
the file are skipped and counted. Bookmarks are created through the items domain, so its
change hooks (the search index) see each one; a file that is not a bookmark file is refused
before anything is written, and the rest is written in one transaction.

Long imports report progress through a callback ``progress(stage, done, total)``;
:func:`pubsub_progress` makes one that publishes to the user's change-event channel.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import html
import json
import logging
import math
import re
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

import peewee

from . import events, files, items
from .accounts import iso_time
from .db import database, is_postgres
from .models import Bookmark, File, ItemTag, Note, Tag, Task, User

log = logging.getLogger(__name__)

FORMAT = "trackeep-export"
VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_CHUNK = 1024 * 1024

#: ``progress(stage, done, total)``: stages are ``checking``, ``files`` and ``saving``.
Progress = Callable[[str, int, int], None]


# ----------------------------------------------------------------------------------- errors


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


# ---------------------------------------------------------------------------------- export


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


# ------------------------------------------------------------------------ import: checking


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
        if section.item_type is not None:
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise _fail(f"{where}.tags", "must be a list of tag names")
        rows.append(_Row(old_id, values, tags if section.item_type else []))
    return rows


def _domain_check(where: str, check: Callable[[], Any]) -> Any:
    try:
        return check()
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
        row.values["name"] = _domain_check(f"{where}.name",
                                           lambda r=row: items.normalize_tag_name(r.values["name"]))
        row.values["color"] = _domain_check(f"{where}.color",
                                            lambda r=row: items.parse_color(r.values["color"]))
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
        row.values["url"] = _domain_check(f"{where}.url",
                                          lambda r=row: items.normalize_url(r.values["url"]))
        if row.values["favicon_url"]:
            row.values["favicon_url"] = _domain_check(
                f"{where}.favicon_url", lambda r=row: items.normalize_url(r.values["favicon_url"]))
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
    for index, row in enumerate(rows["files"]):
        where = f"files[{index}]"
        if not re.fullmatch(r"[0-9a-f]{64}", row.values["sha256"]):
            raise _fail(f"{where}.sha256", "must be 64 lower-case hex digits")
        if row.values["size"] < 0:
            raise _fail(f"{where}.size", "must not be negative")
        row.values["name"] = files.sanitize_name(row.values["name"])
    return rows


def _read_manifest(archive: zipfile.ZipFile) -> Any:
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise InvalidArchive("This is not a Trackeep export: it has no manifest.json.") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise InvalidArchive("The manifest of this archive is too large.")
    try:
        with archive.open(info) as fh:
            return json.loads(fh.read(MAX_MANIFEST_BYTES + 1).decode("utf-8"))
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


# ------------------------------------------------------------------------- import: writing


@dataclasses.dataclass
class ImportReport:
    """What an import did: rows created per section (``tags``, ``bookmarks``...), and for a
    bookmark file the entries skipped."""

    counts: dict[str, int]
    duplicates: int = 0
    invalid: int = 0
    total: int = 0

    def to_json(self) -> dict:
        """The report as the API answers it."""
        out: dict[str, Any] = {"imported": dict(self.counts)}
        if self.total:
            out.update(total=self.total, duplicates=self.duplicates, invalid=self.invalid)
        return out


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
        with _write_transaction():
            tag_ids = {}
            for row in rows["tags"]:
                tag = Tag.create(user=user_id, name_key=items.tag_key(row.values["name"]),
                                 **row.values)
                tag_ids[tag.name_key] = tag.id
                created.append(("tag", tag))
                done += 1
                progress("saving", done, total)
            links = []
            for section in SECTIONS[1:]:
                new_ids: dict[int, int] = {}
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
                    item = section.model.create(user=user_id, **values)
                    new_ids[row.old_id] = item.id
                    created.append((section.item_type, item))
                    links.extend({"tag": tag_ids[items.tag_key(name)],
                                  "item_type": section.item_type, "item_id": item.id}
                                 for name in dict.fromkeys(row.tags))
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
                items.run_change_hooks("create", item_type, item, user_id)
                if getattr(item, "deleted_at", None) is not None:
                    items.run_change_hooks("delete", item_type, item, user_id)
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


# ------------------------------------------------------------------ Netscape bookmark files


#: Top-level folders that are the browser's own containers, not the user's: they do not
#: become tags (Chrome, Firefox and Edge mark them; Safari's have fixed names).
ROOT_FOLDER_MARKS = ("personal_toolbar_folder", "unfiled_bookmarks_folder")
ROOT_FOLDER_NAMES = frozenset({"favorites", "favourites", "bookmarks bar", "bookmarks toolbar",
                               "bookmarks menu", "other bookmarks", "mobile bookmarks",
                               "bookmarksbar", "bookmarksmenu"})
_NETSCAPE_DOCTYPE = "doctype netscape-bookmark-file-1"


@dataclasses.dataclass
class NetscapeBookmark:
    """One ``<A HREF>`` of a bookmark file."""

    url: str
    title: str = ""
    description: str = ""
    add_date: float | None = None
    last_modified: float | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


def _epoch(value: str | None) -> float | None:
    """``ADD_DATE`` as epoch seconds (some tools write milli- or microseconds)."""
    if not value:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    while number > 1e11:  # beyond the year 5138 in seconds: ms or µs
        number /= 1000
    return number


def _tag_name(text: str) -> str | None:
    name = " ".join(text.replace(",", " ").split())[: items.TAG_NAME_MAX].strip()
    return name or None


def _distinct_tags(names: list[str]) -> list[str]:
    """Names without repeats (ignoring case), at most the items' limit per item."""
    kept: dict[str, str] = {}
    for name in names:
        kept.setdefault(items.tag_key(name), name)
    return list(kept.values())[: items.TAGS_PER_ITEM_MAX]


class _NetscapeParser(HTMLParser):
    """Reads ``<DL>``/``<DT>``/``<H3>``/``<A>``/``<DD>`` as browsers write them: tags are
    seldom closed, so the state is the stack of open folders and which text is being read."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.bookmarks: list[NetscapeBookmark] = []
        self.doctype = False
        self.structured = False  # saw an <A HREF> right after a <DT> inside a <DL>
        self.folders = 0
        self._stack: list[str | None] = []  # per open <DL>: its folder's tag (None: no tag)
        self._folder: tuple[str, bool] | None = None  # the last </H3>: (name, is_root)
        self._h3: tuple[list[str], bool, bool] | None = None  # (text, marked, top level)
        self._anchor: tuple[NetscapeBookmark, list[str]] | None = None
        self._dd: list[str] | None = None
        self._last: NetscapeBookmark | None = None  # whose <DD> this would be
        self._last_start = ""

    def handle_decl(self, decl: str) -> None:
        if " ".join(decl.lower().split()) == _NETSCAPE_DOCTYPE:
            self.doctype = True

    def _end_description(self) -> None:
        if self._dd is not None and self._last is not None:
            self._last.description = "".join(self._dd).strip()[: items.DESCRIPTION_MAX]
        self._dd = None

    def _end_anchor(self) -> None:
        if self._anchor is not None:
            bookmark, parts = self._anchor
            bookmark.title = " ".join("".join(parts).split())[: items.TITLE_MAX]
            self.bookmarks.append(bookmark)
            self._last = bookmark
            self._anchor = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag in ("dt", "dd", "dl", "h3", "a", "hr", "p"):
            self._end_anchor()  # an <A> left open ends where the next entry starts
            self._end_description()
        if tag == "h3":
            marked = any(mark in attributes for mark in ROOT_FOLDER_MARKS)
            self._h3 = ([], marked, len(self._stack) <= 1)
            self._last = None  # a <DD> after a folder describes the folder
        elif tag == "dl":
            if self._folder is not None:
                name, is_root = self._folder
                self._stack.append(None if is_root else _tag_name(name))
                self._folder = None
            else:
                self._stack.append(None)
        elif tag == "a" and "href" in attributes:
            if self._stack and self._last_start == "dt":
                self.structured = True
            bookmark = NetscapeBookmark(
                url=attributes["href"].strip(), add_date=_epoch(attributes.get("add_date")),
                last_modified=_epoch(attributes.get("last_modified")),
                tags=[name for name in self._stack if name])
            for extra in attributes.get("tags", "").split(","):
                name = _tag_name(extra)
                if name:
                    bookmark.tags.append(name)
            self._anchor = (bookmark, [])
        elif tag == "dd":
            self._dd = []
        self._last_start = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3" and self._h3 is not None:
            parts, marked, top_level = self._h3
            name = " ".join("".join(parts).split())
            self._folder = (name, marked or (top_level and name.lower() in ROOT_FOLDER_NAMES))
            self.folders += 1
            self._h3 = None
        elif tag == "a":
            self._end_anchor()
        elif tag == "dl":
            self._end_anchor()
            self._end_description()
            if self._stack:
                self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._anchor[1].append(data)
        elif self._h3 is not None:
            self._h3[0].append(data)
        elif self._dd is not None:
            self._dd.append(data)

    def close(self) -> None:
        super().close()
        self._end_anchor()
        self._end_description()


def _charset_of(head: bytes) -> str:
    match = re.search(rb"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", head[:4096], re.IGNORECASE)
    if match:
        try:
            return codecs.lookup(match.group(1).decode("ascii")).name
        except LookupError:
            pass
    return "utf-8"


@dataclasses.dataclass
class NetscapeFile:
    """What a bookmark file holds: its bookmarks in file order, and how many folders."""

    bookmarks: list[NetscapeBookmark]
    folders: int


def parse_netscape(stream: IO[bytes], chunk_size: int = 256 * 1024) -> NetscapeFile:
    """Read a Netscape bookmark file (Chrome, Firefox, Edge, Safari exports) from a binary
    stream, a chunk at a time; raises :class:`InvalidBookmarkFile` for anything else."""
    head = stream.read(chunk_size)
    if not head.strip():
        raise InvalidBookmarkFile("The file is empty. Export your bookmarks from the browser "
                                  "as an HTML file and upload that.")
    if b"\x00" in head[:8192]:
        raise InvalidBookmarkFile("This is not a bookmark file: it is not text. Export your "
                                  "bookmarks from the browser as an HTML file.")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    decoder = codecs.getincrementaldecoder(_charset_of(head))(errors="replace")
    parser = _NetscapeParser()
    chunk = head
    while chunk:
        parser.feed(decoder.decode(chunk))
        chunk = stream.read(chunk_size)
    parser.feed(decoder.decode(b"", final=True))
    parser.close()
    if not parser.doctype and not parser.structured:
        raise InvalidBookmarkFile("This is not a bookmark file: it has neither the Netscape "
                                  "bookmark header nor a list of links. Export your bookmarks "
                                  "from the browser as an HTML file.")
    return NetscapeFile(parser.bookmarks, parser.folders)


def import_bookmarks(user_id: int, stream: IO[bytes], *, now: float,
                     progress: Progress | None = None) -> ImportReport:
    """Import a Netscape bookmark file: each new URL becomes a bookmark (through the items
    domain, with its folders and ``TAGS`` as tags and ``ADD_DATE`` as its creation time);
    URLs already saved or repeated in the file count as ``duplicates``, links that are not
    http(s) (``javascript:``, ``place:``...) as ``invalid``. All in one transaction; a file
    that is not a bookmark file raises :class:`InvalidBookmarkFile` and writes nothing."""
    progress = progress or _no_progress
    parsed = parse_netscape(stream)
    total = len(parsed.bookmarks)
    progress("checking", 0, total)
    existing = {row.url_hash for row in Bookmark.select(Bookmark.url_hash).where(
        (Bookmark.user == user_id) & Bookmark.deleted_at.is_null())}
    wanted: list[tuple[str, NetscapeBookmark]] = []
    duplicates = invalid = 0
    for entry in parsed.bookmarks:
        try:
            url = items.normalize_url(entry.url)
        except items.InvalidInput:
            invalid += 1
            continue
        digest = items.url_hash(url)
        if digest in existing:
            duplicates += 1
            continue
        existing.add(digest)
        wanted.append((url, entry))
    progress("checking", total, total)
    imported = 0
    with _write_transaction():
        # Tags are made once and linked in bulk (set_tags per bookmark would look each name
        # up again); the bookmarks that got tags are reported to the change hooks once more
        # so the search index sees them.
        names: dict[str, str] = {}
        for _, entry in wanted:
            entry.tags = _distinct_tags(entry.tags)
            names.update((items.tag_key(n), n) for n in entry.tags if items.tag_key(n)
                         not in names)
        tag_ids = {items.tag_key(t.name): t.id
                   for t in items.get_or_create_tags(user_id, list(names.values()), now=now)}
        links, tagged = [], []
        for url, entry in wanted:
            data = {"url": url, "title": entry.title, "description": entry.description}
            try:
                bookmark = items.create_bookmark(user_id, data, now=entry.add_date or now,
                                                 allow_duplicate=True)
            except items.InvalidInput:
                invalid += 1
                continue
            if entry.tags:
                links.extend({"tag": tag_ids[items.tag_key(n)], "item_type": "bookmark",
                              "item_id": bookmark.id} for n in entry.tags)
                tagged.append(bookmark)
            imported += 1
            if imported % 100 == 0 or imported == len(wanted):
                progress("saving", imported, len(wanted))
        for start in range(0, len(links), 500):
            ItemTag.insert_many(links[start:start + 500]).execute()
        for bookmark in tagged:
            items.run_change_hooks("update", "bookmark", bookmark, user_id)
    log.info("user %s imported a bookmark file: %d new, %d duplicates, %d invalid of %d",
             user_id, imported, duplicates, invalid, total)
    return ImportReport({"bookmarks": imported}, duplicates=duplicates, invalid=invalid,
                        total=total)


def export_bookmarks(user_id: int) -> Iterator[str]:
    """The user's bookmarks (not the trashed ones) as a Netscape bookmark file, in pieces:
    one list, each bookmark with ``ADD_DATE``, ``LAST_MODIFIED``, its tags in ``TAGS`` (as
    Firefox writes them) and its description in ``<DD>``."""
    yield ("<!DOCTYPE NETSCAPE-Bookmark-file-1>\n"
           "<!-- This is an automatically generated file.\n"
           "     It will be read and overwritten.\n"
           "     DO NOT EDIT! -->\n"
           '<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">\n'
           "<TITLE>Bookmarks</TITLE>\n<H1>Bookmarks</H1>\n<DL><p>\n")
    query = (Bookmark.select().where((Bookmark.user == user_id) & Bookmark.deleted_at.is_null())
             .order_by(Bookmark.created_at, Bookmark.id))
    batch: list[Bookmark] = []

    def render(rows: list[Bookmark]) -> str:
        tags = items.tags_for(user_id, "bookmark", [r.id for r in rows])
        out = []
        for row in rows:
            attrs = (f' ADD_DATE="{int(row.created_at)}" LAST_MODIFIED="{int(row.updated_at)}"')
            names = ",".join(t.name for t in tags[row.id])
            if names:
                attrs += f' TAGS="{html.escape(names)}"'
            title = html.escape(row.title or row.url, quote=False)
            out.append(f'    <DT><A HREF="{html.escape(row.url)}"{attrs}>{title}</A>\n')
            if row.description:
                out.append(f"    <DD>{html.escape(row.description, quote=False)}\n")
        return "".join(out)

    for row in query.iterator():
        batch.append(row)
        if len(batch) == 500:
            yield render(batch)
            batch = []
    if batch:
        yield render(batch)
    yield "</DL><p>\n"


def detect_format(path: str | Path) -> str:
    """``archive`` for a ZIP (a full export), else ``netscape`` (a bookmark file)."""
    with open(path, "rb") as fh:
        return "archive" if fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06") else "netscape"

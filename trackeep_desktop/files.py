"""Files: uploads kept by content hash, with a display name, description, tags, trash and
share links.

The bytes of a file live in a content-addressed :class:`BlobStore` in the data folder
(``files/ab/cd/<sha256>``): two uploads of the same content share one blob, and the blob goes
only when the last row naming it is purged. An upload is written to a :class:`Spool` (a
temporary file in the store that hashes and counts as it is written and refuses bytes beyond
the size limit), then moved into place. The original name is kept in the database, cleaned
for display (:func:`sanitize_name`) and never used as a path.

Placing and removing blobs happen inside a database transaction that has already written (so
SQLite's write lock is held) and, on PostgreSQL, holds an advisory lock: an upload that reuses
a blob and a purge that removes it can never interleave.

No Flask here: the API (:mod:`trackeep_desktop.files_api`), the import (:mod:`.transfer`) and
tests call these functions with the user id, the time and the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import mimetypes
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import peewee

from . import items
from .accounts import iso_time
from .db import database, is_postgres
from .models import File, FileShare

log = logging.getLogger(__name__)

ITEM_TYPE = "file"
MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 10_000
#: Text previews show at most this many bytes of the file.
PREVIEW_TEXT_BYTES = 200 * 1024
#: How many leading bytes the type sniffer looks at.
SNIFF_BYTES = 2048
#: Share links live at most ten years; no expiry at all is also allowed.
MAX_SHARE_HOURS = 24 * 365 * 10
#: Temporary files untouched for this long are orphans of a crash (cleaned at start-up).
TEMP_GRACE_SECONDS = 60
#: Sort orders of :func:`list_files` (``-`` for descending).
SORT_FIELDS = {"created_at": File.created_at, "updated_at": File.updated_at,
               "name": File.name, "size": File.size}

BLOB_LOCK_ID = 7_146_251_004  # the PostgreSQL advisory lock that serializes blob changes
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# ----------------------------------------------------------------------------------- errors


class FileError(Exception):
    """A request the files domain refuses; ``str(exc)`` is a message fit to show the user."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(FileError):
    """The input is malformed or breaks a rule (an empty upload field, a bad expiry)."""


class NotFound(FileError):
    """No such file (or share) for this user: unknown, another user's, or purged."""


class TooLarge(FileError):
    """An upload is bigger than the limit (``limit`` bytes)."""

    def __init__(self, limit: int):
        super().__init__(f"The file is larger than the upload limit of {format_size(limit)}.")
        self.limit = limit


def format_size(size: int) -> str:
    """``536870912`` → ``512 MB`` (binary units, as the limit settings count)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if value == int(value) else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------ blob store


class Spool:
    """A temporary file in a :class:`BlobStore`: what is written is hashed (SHA-256) and
    counted, the first bytes are kept for type sniffing, and a write that would pass
    ``limit`` bytes removes the file and raises :class:`TooLarge`.

    It is readable and seekable too, as werkzeug's form parser wants of an upload stream.
    """

    def __init__(self, path: Path, limit: int | None):
        self.path = path
        self.limit = limit
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: IO[bytes] | None = os.fdopen(fd, "w+b")
        self._discarded = False

    @property
    def sha256(self) -> str:
        """The SHA-256 (hex) of everything written so far."""
        return self._hash.hexdigest()

    @property
    def active(self) -> bool:
        """True until the spool is moved into the store or discarded."""
        return not self._discarded and self.path.exists()

    def write(self, data: bytes) -> int:
        """Append ``data``; raise :class:`TooLarge` (and discard the spool) past the limit."""
        if self.limit is not None and self.size + len(data) > self.limit:
            self.discard()
            raise TooLarge(self.limit)
        if len(self.head) < SNIFF_BYTES:
            self.head += bytes(data[: SNIFF_BYTES - len(self.head)])
        self._hash.update(data)
        self.size += len(data)
        return self._file.write(data)

    # The rest of the file protocol, as werkzeug's FileStorage and zipfile use it.

    def read(self, size: int = -1) -> bytes:
        """Read from the current position (after ``seek(0)``: the upload)."""
        return self._file.read(size)

    def readline(self, size: int = -1) -> bytes:
        """Read one line from the current position."""
        return self._file.readline(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the read/write position."""
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        """The read/write position."""
        return self._file.tell()

    def flush(self) -> None:
        """Flush buffered writes to the operating system."""
        self._file.flush()

    def seekable(self) -> bool:
        """Always True."""
        return True

    def readable(self) -> bool:
        """Always True."""
        return True

    def writable(self) -> bool:
        """Always True."""
        return True

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`discard` ran."""
        return self._file is None or self._file.closed

    def close(self) -> None:
        """Flush to disk and close the handle (the temporary file stays until moved or
        discarded)."""
        if self._file is not None and not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def discard(self) -> None:
        """Close and delete the temporary file (safe to call twice)."""
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._discarded = True
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class BlobStore:
    """Content-addressed storage in a folder: blob ``<sha256>`` at ``ab/cd/<sha256>``,
    temporary files in ``tmp/`` (on the same file system, so moving one in is atomic)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.temp_dir = self.root / "tmp"

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this hash lives (whether or not it exists)."""
        if not _SHA256.match(sha256 or ""):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        """True if the blob is in the store."""
        return self.path_for(sha256).is_file()

    def open(self, sha256: str) -> IO[bytes]:
        """The blob for reading (``FileNotFoundError`` if it is missing)."""
        return self.path_for(sha256).open("rb")

    def spool(self, limit: int | None = None) -> Spool:
        """A new temporary file to write an upload into (see :class:`Spool`)."""
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        return Spool(self.temp_dir / f"upload-{secrets.token_hex(12)}.part", limit)

    def place(self, spool: Spool) -> bool:
        """Move a finished spool into the store under its hash; True if the blob is new,
        False if the store had it already (the spool is then discarded). Call it with the
        blob lock held (see :func:`lock_blobs`)."""
        spool.close()
        dest = self.path_for(spool.sha256)
        if dest.is_file():
            spool.discard()
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(spool.path, dest)
        spool._discarded = True
        return True

    def remove(self, sha256: str) -> bool:
        """Delete a blob; False if it was not there. Call it with the blob lock held."""
        try:
            self.path_for(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def clean_temp(self, older_than: float = TEMP_GRACE_SECONDS, now: float | None = None) -> int:
        """Delete temporary files not written to for ``older_than`` seconds (what a crash
        or a killed upload left behind); returns how many went."""
        if not self.temp_dir.is_dir():
            return 0
        now = time.time() if now is None else now
        removed = 0
        for path in self.temp_dir.iterdir():
            try:
                if path.is_file() and now - path.stat().st_mtime >= older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.info("removed %d orphaned temporary upload file(s) from %s", removed,
                     self.temp_dir)
        return removed


def lock_blobs() -> None:
    """Serialize blob changes for the rest of this transaction. On PostgreSQL an advisory
    lock; on SQLite the transaction's first write already holds the database's write lock,
    so callers write a row before they touch the store."""
    if is_postgres():
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (BLOB_LOCK_ID,))


def references(sha256: str) -> int:
    """How many file rows (any user, trash included) name this blob."""
    return File.select().where(File.sha256 == sha256).count()


def remove_unreferenced(store: BlobStore, hashes: Iterable[str]) -> int:
    """Delete each blob no row names any more (call inside a transaction that has written,
    see :func:`lock_blobs`); returns how many were deleted."""
    lock_blobs()
    removed = 0
    for sha in set(hashes):
        if references(sha) == 0 and store.remove(sha):
            removed += 1
    return removed


# --------------------------------------------------------------------- names and mime types


def sanitize_name(raw: str | None) -> str:
    """A file name fit for display and for a download header: no folders (``a/../b`` →
    ``b``), no control, bidi-override or zero-width characters, no newlines, whitespace
    collapsed, at most :data:`MAX_NAME_LENGTH` characters (the extension kept); ``file``
    when nothing is left."""
    text = unicodedata.normalize("NFC", str(raw or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp", "Zs"):
            kept.append(" ")
        elif category in ("Cf", "Cs", "Co", "Cn"):
            continue  # format (bidi overrides, zero-width), surrogates, private, unassigned
        else:
            kept.append(char)
    text = " ".join("".join(kept).split())
    if not text.strip("."):
        return "file"
    if len(text) > MAX_NAME_LENGTH:
        stem, dot, ext = text.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            text = stem[: MAX_NAME_LENGTH - len(ext) - 1].rstrip() + "." + ext
        else:
            text = text[:MAX_NAME_LENGTH].rstrip()
    return text


def content_disposition(disposition: str, name: str) -> str:
    """A ``Content-Disposition`` header value (RFC 6266): an ASCII ``filename`` every client
    understands, and the exact name as ``filename*=UTF-8''...`` (RFC 5987)."""
    if disposition not in ("attachment", "inline"):
        raise ValueError(f"unknown disposition {disposition!r}")
    name = sanitize_name(name)
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    # Quotes, backslashes and percent signs are read differently by different browsers.
    fallback = " ".join(re.sub(r'["\\%\x00-\x1f\x7f]', "_", fallback).split())
    stem, dot, ext = fallback.rpartition(".")
    if not re.search(r"[A-Za-z0-9]", stem if dot else fallback):
        ascii_ext = re.sub(r"[^A-Za-z0-9]", "", ext)[:16] if dot else ""
        fallback = "download" + (f".{ascii_ext}" if ascii_ext else "")
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


_MIME = mimetypes.MimeTypes()  # the standard table only: the same answers on every machine
for _type, _ext in (("text/markdown", ".md"), ("text/yaml", ".yaml"), ("text/yaml", ".yml"),
                    ("application/toml", ".toml"), ("text/plain", ".log"),
                    ("image/avif", ".avif"), ("image/heic", ".heic"), ("image/webp", ".webp"),
                    ("audio/flac", ".flac"), ("audio/ogg", ".opus"),
                    ("video/x-matroska", ".mkv"), ("application/vnd.sqlite3", ".sqlite"),
                    ("application/epub+zip", ".epub"), ("application/java-archive", ".jar"),
                    ("application/vnd.android.package-archive", ".apk"),
                    ("application/vnd.oasis.opendocument.text", ".odt"),
                    ("application/vnd.oasis.opendocument.spreadsheet", ".ods"),
                    ("application/vnd.oasis.opendocument.presentation", ".odp"),
                    *((f"application/vnd.openxmlformats-officedocument.{kind}", ext)
                      for kind, ext in (("wordprocessingml.document", ".docx"),
                                        ("spreadsheetml.sheet", ".xlsx"),
                                        ("presentationml.presentation", ".pptx")))):
    _MIME.add_type(_type, _ext)

_ENCODING_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
                   "xz": "application/x-xz", "br": "application/x-brotli",
                   "compress": "application/x-compress"}

#: Textual types that are not ``text/*``.
TEXT_APPLICATION_TYPES = frozenset({
    "application/json", "application/xml", "application/javascript", "application/toml",
    "application/x-sh", "application/x-yaml", "application/yaml", "application/sql",
    "application/x-python", "application/ld+json", "application/x-ndjson",
})

#: Images a browser may show inline: raster formats that cannot carry script.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp",
                                "image/bmp", "image/vnd.microsoft.icon", "image/avif"})

_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (0, b"\x00asm", "application/wasm"),
    (257, b"ustar", "application/x-tar"),
]

_ISO_MEDIA_BRANDS = {b"avif": "image/avif", b"avis": "image/avif", b"heic": "image/heic",
                     b"heix": "image/heic", b"mif1": "image/heic", b"qt  ": "video/quicktime",
                     b"M4A ": "audio/mp4", b"M4B ": "audio/mp4"}

# A content type from the name is believed over the sniffed one only within its family:
# a .docx is a zip, an .mkv starts like a .webm, an .m4a like an .mp4.
_FAMILIES = {
    "application/zip": lambda t: t.endswith("+zip") or "openxmlformats" in t
    or "opendocument" in t or t in ("application/java-archive", "application/vnd.android"
                                    ".package-archive", "application/x-zip-compressed"),
    "video/webm": lambda t: t in ("video/x-matroska", "audio/webm", "audio/x-matroska"),
    "audio/ogg": lambda t: t in ("video/ogg", "application/ogg", "audio/opus"),
    "video/mp4": lambda t: t.startswith(("video/", "audio/")),
    "application/gzip": lambda t: t in ("application/x-tar", "application/x-gtar"),
}


def sniff(head: bytes) -> str | None:
    """The type the first bytes of a file prove, or None (text and unknown formats)."""
    for offset, magic, kind in _MAGIC:
        if head[offset: offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}[
            head[8:12]]
    if head[4:8] == b"ftyp":
        return _ISO_MEDIA_BRANDS.get(head[8:12], "video/mp4")
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (
            12, 40, 52, 56, 64, 108, 124):
        return "image/bmp"
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if looks_like_text(head):
        start = _strip_text_prologue(head)
        if re.match(rb"<svg[\s>/]", start, re.IGNORECASE):
            return "image/svg+xml"
        if re.match(rb"<(!doctype\s+html|html[\s>])", start, re.IGNORECASE):
            return "text/html"
    return None


def _strip_text_prologue(head: bytes) -> bytes:
    """Skip a BOM, whitespace, an XML declaration, comments and a non-HTML doctype."""
    text = head.removeprefix(b"\xef\xbb\xbf")
    while True:
        text = text.lstrip()
        match = re.match(rb"<\?xml[^>]*\?>|<!--.*?-->|<!doctype\s+svg[^>]*>", text,
                         re.IGNORECASE | re.DOTALL)
        if not match:
            return text
        text = text[match.end():]


def looks_like_text(head: bytes) -> bool:
    """True if these bytes read as UTF-8 (or UTF-16 with a BOM) text: no NUL bytes, no
    invalid sequences except a character cut at the end."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls <= len(head) // 100


def guess_from_name(name: str) -> str | None:
    """The content type the file name's extension suggests, or None."""
    kind, encoding = _MIME.guess_type(name, strict=False)
    if encoding in _ENCODING_TYPES:
        return _ENCODING_TYPES[encoding]
    return kind


def is_textual(mime_type: str) -> bool:
    """True for ``text/*`` and the textual ``application/*`` types (JSON, XML, ...)."""
    base = mime_type.split(";")[0].strip().lower()
    return base.startswith("text/") or base in TEXT_APPLICATION_TYPES or base.endswith(
        ("+json", "+xml"))


def detect_mime(name: str, head: bytes) -> str:
    """The content type of a file from its name and its first bytes.

    What the bytes prove wins (a PNG named ``x.txt`` is ``image/png``), except where the name
    is more precise within the same family (a ``.docx`` is a zip). A name's claim to be an
    image, audio or video that the bytes do not back is not believed, so nothing is ever
    shown inline on the strength of its name alone.
    """
    by_name = guess_from_name(name)
    sniffed = sniff(head)
    if sniffed:
        family = _FAMILIES.get(sniffed)
        if by_name and family and family(by_name):
            return by_name
        return sniffed
    if looks_like_text(head):
        if by_name and is_textual(by_name) and by_name != "image/svg+xml":
            return by_name
        return "text/plain" if head else (by_name if by_name and not by_name.startswith(
            ("image/", "audio/", "video/")) else "application/octet-stream")
    if by_name and not by_name.startswith(("image/", "audio/", "video/", "text/")) and (
            not is_textual(by_name)):
        return by_name
    return "application/octet-stream"


def file_kind(mime_type: str) -> str:
    """The original API's ``file_type``: image, video, audio, document, archive or other."""
    base = mime_type.split(";")[0].lower()
    if base.startswith("image/"):
        return "image"
    if base.startswith("video/"):
        return "video"
    if base.startswith("audio/"):
        return "audio"
    if base in ("application/zip", "application/gzip", "application/x-7z-compressed",
                "application/vnd.rar", "application/x-tar", "application/x-bzip2",
                "application/x-xz"):
        return "archive"
    if is_textual(base) or base == "application/pdf" or "officedocument" in base or (
            "opendocument" in base) or base in ("application/msword", "application/rtf",
                                                "application/epub+zip"):
        return "document"
    return "other"


def preview_kind(mime_type: str) -> str | None:
    """How a file may be previewed: ``image`` (shown inline as itself), ``text`` (shown as
    ``text/plain``), ``attachment`` (SVG: it can carry script, so it is only downloaded), or
    None (no preview)."""
    base = mime_type.split(";")[0].strip().lower()
    if base == "image/svg+xml":
        return "attachment"
    if base in INLINE_IMAGE_TYPES:
        return "image"
    if is_textual(base):
        return "text"
    return None


def text_preview(store: BlobStore, record: File, limit: int = PREVIEW_TEXT_BYTES
                 ) -> tuple[str, bool]:
    """The first ``limit`` bytes of a file as text (invalid UTF-8 replaced, a character cut
    at the end dropped), and whether the file was longer."""
    with store.open(record.sha256) as blob:
        data = blob.read(limit + 1)
    truncated = len(data) > limit
    data = data[:limit]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace"), truncated
    text = data.decode("utf-8", "replace")
    if truncated and text.endswith("\ufffd"):
        text = text.rstrip("\ufffd")
    return text.removeprefix("\ufeff"), truncated


# ------------------------------------------------------------------------------------ files


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
        with database.atomic():
            record = File.create(user=user_id, name=name, description=description,
                                 mime_type=mime_type, kind=file_kind(mime_type),
                                 size=spool.size, sha256=spool.sha256, created_at=now,
                                 updated_at=now)
            if tag_names:
                items.set_tags(user_id, ITEM_TYPE, record.id, tag_names, now)
            lock_blobs()
            placed = store.place(spool)
            items.run_change_hooks("create", ITEM_TYPE, record, user_id)
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
    field = SORT_FIELDS[sort]
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
        items.run_change_hooks("update", ITEM_TYPE, record, user_id)
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


def file_to_json(record: File, tags: list | None = None) -> dict:
    """A file as the API answers it (the original client's field names included); ``tags``
    are the file's ``Tag`` rows."""
    kind = preview_kind(record.mime_type)
    return {
        "id": record.id,
        "user_id": record.user_id,
        "name": record.name,
        "original_name": record.name,
        "file_name": record.name,
        "description": record.description,
        "mime_type": record.mime_type,
        "file_type": file_kind(record.mime_type),
        "file_size": record.size,
        "sha256": record.sha256,
        "tags": [{"id": t.id, "name": t.name, "color": t.color} for t in tags or []],
        "is_public": False,
        "previewable": kind in ("image", "text"),
        "download_url": f"/api/v1/files/{record.id}/download",
        "preview_url": f"/api/v1/files/{record.id}/preview" if kind in ("image", "text")
        else None,
        "created_at": iso_time(record.created_at),
        "updated_at": iso_time(record.updated_at),
        "deleted_at": iso_time(record.deleted_at),
    }


def purge_blob_callback(store: BlobStore):
    """The items domain's ``on_purge`` for files: runs inside the purge transaction before
    the row goes, drops the file's share links and deletes its blob unless another row
    (of any user, trash included) still names it."""

    def on_purge(record: File) -> None:
        # A write first: on SQLite it takes the write lock that serializes blob changes.
        FileShare.delete().where(FileShare.file == record.id).execute()
        lock_blobs()
        shared = File.select().where((File.sha256 == record.sha256)
                                     & (File.id != record.id)).exists()
        if not shared and store.remove(record.sha256):
            log.info("deleted blob %s: its last file was purged", record.sha256)

    return on_purge


def register_item_type(store: BlobStore) -> None:
    """Make files an item type of the trash, the tag counts and the dashboard, their purge
    removing blobs from ``store`` (the application calls this at start-up)."""
    items.register_item_type(ITEM_TYPE, File, title=lambda record: record.name,
                             to_json=file_to_json, on_purge=purge_blob_callback(store))


# ------------------------------------------------------------------------------ share links


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_share(user_id: int, file_id: Any, *, now: float,
                 expires_in_hours: Any = None) -> tuple[FileShare, str]:
    """Make a share link to a file; returns ``(share, token)``. The token is shown once and
    stored only as its hash. ``expires_in_hours`` None means the link never expires."""
    record = get_file(user_id, file_id)
    expires_at = None
    if expires_in_hours is not None:
        if isinstance(expires_in_hours, bool) or not isinstance(expires_in_hours, (int, float)):
            raise InvalidInput("expires_in_hours must be a number of hours.", "expires_in_hours")
        if not 0 < expires_in_hours <= MAX_SHARE_HOURS:
            raise InvalidInput(f"expires_in_hours must be between 0 and {MAX_SHARE_HOURS}.",
                               "expires_in_hours")
        expires_at = now + float(expires_in_hours) * 3600
    token = secrets.token_urlsafe(32)
    share = FileShare.create(file=record.id, token_hash=_hash_token(token), prefix=token[:6],
                             created_at=now, expires_at=expires_at)
    log.info("user %s shared file %s (link %s, expires %s)", user_id, record.id, share.id,
             iso_time(expires_at) or "never")
    return share, token


def list_shares(user_id: int, file_id: Any) -> list[FileShare]:
    """Every share link of a file, newest first (revoked and expired ones included)."""
    record = get_file(user_id, file_id)
    return list(FileShare.select().where(FileShare.file == record.id)
                .order_by(FileShare.created_at.desc(), FileShare.id.desc()))


def revoke_share(user_id: int, file_id: Any, share_id: Any, *, now: float) -> None:
    """Turn a share link off for good; :class:`NotFound` unless it is a link of this file."""
    record = get_file(user_id, file_id)
    try:
        share_id = int(share_id)
    except (TypeError, ValueError):
        raise NotFound("No such share link.") from None
    updated = (FileShare.update(revoked_at=peewee.fn.COALESCE(FileShare.revoked_at, now))
               .where(FileShare.id == share_id, FileShare.file == record.id).execute())
    if not updated:
        raise NotFound("No such share link.")
    log.info("user %s revoked share link %s of file %s", user_id, share_id, record.id)


def share_state(share: FileShare, now: float) -> str:
    """``active``, ``expired`` or ``revoked``."""
    if share.revoked_at is not None:
        return "revoked"
    if share.expires_at is not None and share.expires_at <= now:
        return "expired"
    return "active"


def share_to_json(share: FileShare, now: float) -> dict:
    """A share link as listed (the token itself is never shown again, only its prefix)."""
    return {
        "id": share.id,
        "file_id": share.file_id,
        "prefix": share.prefix,
        "state": share_state(share, now),
        "created_at": iso_time(share.created_at),
        "expires_at": iso_time(share.expires_at),
        "revoked_at": iso_time(share.revoked_at),
        "download_count": share.download_count,
        "last_download_at": iso_time(share.last_download_at),
    }


def open_share(token: str, *, now: float) -> File | None:
    """The file a share token gives access to, counting the download; None when the token is
    unknown, revoked or expired, or the file is in the trash (the caller answers all of
    these alike)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    share = (FileShare.select(FileShare, File).join(File)
             .where(FileShare.token_hash == _hash_token(token), FileShare.revoked_at.is_null(),
                    File.deleted_at.is_null())
             .first())
    if share is None or share_state(share, now) != "active":
        return None
    (FileShare.update(download_count=FileShare.download_count + 1, last_download_at=now)
     .where(FileShare.id == share.id).execute())
    return share.file

"""The blob store: file contents, content-addressed in the data folder, written through a
spool and removed only when no file row refers to them; and the files domain's errors."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import peewee

from trackeep_desktop import errors
from trackeep_desktop.storage.db import database, is_postgres
from trackeep_desktop.storage.models import File

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

#: A blob no row names is swept only once it is this old (seconds since it was written), so
#: an upload between placing its blob and committing its row is never robbed.
ORPHAN_GRACE_SECONDS = 3600

#: How often the running program sweeps orphaned blobs (it also does at start-up).
ORPHAN_SWEEP_INTERVAL = 24 * 3600


#: Sort orders of :func:`list_files` (``-`` for descending).
SORT_FIELDS: dict[str, peewee.Field] = {
    "created_at": File.created_at, "updated_at": File.updated_at, "name": File.name,
    "size": File.size}


BLOB_LOCK_ID = 7_146_251_004  # the PostgreSQL advisory lock that serializes blob changes


_SHA256 = re.compile(r"^[0-9a-f]{64}$")



class FileError(errors.DomainError):
    """A request the files domain refuses; ``str(exc)`` is a message fit to show the user."""


class InvalidInput(FileError, errors.Invalid):
    """The input is malformed or breaks a rule (an empty upload field, a bad expiry)."""


class NotFound(FileError, errors.NotFound):
    """No such file (or share) for this user: unknown, another user's, or purged."""


class TooLarge(FileError, errors.TooLarge):
    """An upload is bigger than the limit (``limit`` bytes, answered as ``limit_bytes``)."""

    def __init__(self, limit: int):
        super().__init__(f"The file is larger than the upload limit of {format_size(limit)}.",
                         limit_bytes=limit)
        self.limit = limit


def format_size(size: int) -> str:
    """``536870912`` → ``512 MB`` (binary units, as the limit settings count)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if value == int(value) else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


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
        self._file: IO[bytes] = os.fdopen(fd, "w+b")
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
        return self._file.closed

    def close(self) -> None:
        """Flush to disk and close the handle (the temporary file stays until moved or
        discarded)."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def discard(self) -> None:
        """Close and delete the temporary file (safe to call twice)."""
        if not self._file.closed:
            self._file.close()
        self._discarded = True
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


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

    def blobs(self) -> Iterator[tuple[str, Path]]:
        """``(sha256, path)`` of every blob in the store (temporary files aside)."""
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if not (first.is_dir() and len(first.name) == 2) or first == self.temp_dir:
                continue
            for second in sorted(first.iterdir()):
                if not second.is_dir():
                    continue
                for path in sorted(second.iterdir()):
                    if _SHA256.match(path.name) and path.name.startswith(
                            first.name + second.name) and path.is_file():
                        yield path.name, path

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


def sweep_orphans(store: BlobStore, *, now: float | None = None,
                  older_than: float = ORPHAN_GRACE_SECONDS, batch: int = 500) -> int:
    """Delete the blobs in the store that no file row names (any user, trash included) and
    that were written ``older_than`` seconds ago or more; returns how many went. Each batch
    is checked and deleted under the blob lock, serialized with uploads and purges."""
    now = time.time() if now is None else now
    candidates = []
    for sha, path in store.blobs():
        try:
            if now - path.stat().st_mtime >= older_than:
                candidates.append(sha)
        except FileNotFoundError:
            continue
    removed = 0
    for start in range(0, len(candidates), batch):
        chunk = candidates[start:start + batch]
        with database.atomic():
            lock_blobs()
            named = {row.sha256 for row in File.select(File.sha256).where(File.sha256.in_(chunk))}
            removed += sum(1 for sha in chunk if sha not in named and store.remove(sha))
    if removed:
        log.info("deleted %d orphaned blob(s) no file names", removed)
    return removed


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

"""Online, consistent backups: the database snapshot, then the blobs it refers to.

SQLite is copied with its own backup API (``sqlite3.Connection.backup``), which reads one
consistent state of the database while other connections keep writing; the list of blobs
and the row counts are then read from that copy, so they describe exactly the snapshot.
PostgreSQL is dumped with ``pg_dump --format=custom --snapshot=...`` inside a REPEATABLE
READ transaction that exported the snapshot, and the blob list and counts come from the same
transaction. Blobs are content-addressed and never change, so copying the referenced ones
after the snapshot is consistent with it (a blob is only removed when no row names it, and
the snapshot's rows still name theirs only if they still exist; a blob purged meanwhile is
reported and the backup fails rather than leaving a hole).

Everything goes into one uncompressed tar, ``trackeep-backup-YYYYmmdd-HHMMSS.tar``, written
under a temporary name and renamed when complete, with ``manifest.json`` first: the version,
the database kind, the applied migrations, the rows per table and the SHA-256 of every other
member. Nothing here imports Flask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import glob
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from trackeep_desktop import errors

log = logging.getLogger(__name__)

FORMAT = 1
PREFIX = "trackeep-backup-"
SUFFIX = ".tar"
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/trackeep.db"
POSTGRES_MEMBER = "database/trackeep.pgdump"
#: Files of the data folder kept beside the database (the secret key signs sessions and keys).
EXTRA_FILES = ("secret_key", "trackeep.toml")

#: ``progress(stage, done, total)``: stages ``database``, ``files``, ``finished``.
Progress = Callable[[str, int, int], None]


class BackupError(errors.DomainError):
    """A backup or restore that cannot be made; the message says why."""


class BackupFailed(BackupError, errors.Unavailable):
    """The backup could not be written (a tool missing, a blob gone, the disk full)."""


class BackupNotFound(BackupError, errors.NotFound):
    """No such backup in the backup folder."""


@dataclasses.dataclass(frozen=True)
class BackupInfo:
    name: str
    path: Path
    size: int
    created_at: float
    #: ``time.monotonic()`` when the database snapshot began: whatever was committed before
    #: is in the backup.
    snapshot_started: float = 0.0
    seconds: float = 0.0
    counts: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "size": self.size, "created_at": self.created_at,
                **({"seconds": round(self.seconds, 3)} if self.seconds else {}),
                **({"counts": self.counts} if self.counts else {})}


def database_kind(url: str) -> str:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgres", "postgresql"):
        return "postgresql"
    raise BackupError(f"unsupported database URL {url!r}")


def sqlite_path(url: str) -> Path:
    parsed = urlparse(url)
    path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(path)


def pg_bin(name: str) -> str:
    """A PostgreSQL client program on the PATH, or the newest under /usr/lib/postgresql."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise BackupFailed(f"{name} was not found (install the PostgreSQL client programs)")
    return candidates[0]


def pg_conninfo(url: str) -> str:
    """The URL without the query parameters that are ours, not libpq's."""
    parsed = urlparse(url)
    if not parsed.query:
        return url
    from urllib.parse import parse_qsl, urlencode

    kept = [(k, v) for k, v in parse_qsl(parsed.query) if k not in ("max_connections",
                                                                      "pool_timeout")]
    return parsed._replace(query=urlencode(kept)).geturl()


def backup_name(at: float) -> str:
    return PREFIX + dt.datetime.fromtimestamp(at).strftime("%Y%m%d-%H%M%S") + SUFFIX


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _describe(cursor, tables: list[str], quote: str) -> tuple[list[str], dict[str, int],
                                                              list[str]]:
    """(applied migrations, rows per table, referenced blob hashes) through one cursor."""
    counts = {}
    for table in tables:
        cursor.execute(f"SELECT COUNT(*) FROM {quote}{table}{quote}")
        counts[table] = int(cursor.fetchone()[0])
    migrations: list[str] = []
    if "migration" in tables:
        cursor.execute("SELECT name FROM migration ORDER BY name")
        migrations = [row[0] for row in cursor.fetchall()]
    hashes: list[str] = []
    if "file" in tables:
        cursor.execute('SELECT DISTINCT sha256 FROM "file" ORDER BY sha256')
        hashes = [row[0] for row in cursor.fetchall()]
    return migrations, counts, hashes


def _snapshot_sqlite(url: str, work: Path) -> tuple[Path, list[str], dict[str, int],
                                                    list[str], float]:
    source_path = sqlite_path(url)
    if not source_path.is_file():
        raise BackupFailed(f"the database {source_path} does not exist")
    target = work / "trackeep.db"
    source = sqlite3.connect(str(source_path), timeout=30)
    try:
        source.execute("PRAGMA busy_timeout = 30000")
        dest = sqlite3.connect(str(target))
        try:
            started = time.monotonic()
            # One step (pages=-1): the copy is one read transaction, a consistent snapshot,
            # however busy the writers are (a stepped copy restarts on every write).
            source.backup(dest, pages=-1)
            dest.execute("PRAGMA journal_mode = DELETE")
            tables = [row[0] for row in dest.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            migrations, counts, hashes = _describe(dest.cursor(), tables, '"')
        finally:
            dest.close()
    finally:
        source.close()
    return target, migrations, counts, hashes, started


def _snapshot_postgres(url: str, work: Path) -> tuple[Path, list[str], dict[str, int],
                                                      list[str], float]:
    import psycopg

    target = work / "trackeep.pgdump"
    conninfo = pg_conninfo(url)
    with psycopg.connect(conninfo) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        started = time.monotonic()
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        cursor = conn.cursor()
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                       "ORDER BY tablename")
        tables = [row[0] for row in cursor.fetchall()]
        migrations, counts, hashes = _describe(cursor, tables, '"')
        # pg_dump joins the exported snapshot, which lives while this transaction is open.
        result = subprocess.run(
            [pg_bin("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
             f"--snapshot={snapshot}", f"--file={target}",
             f"--dbname={conninfo}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        conn.rollback()
    if result.returncode != 0:
        raise BackupFailed(f"pg_dump failed: {result.stderr.strip()}")
    return target, migrations, counts, hashes, started


def _add_file(tar: tarfile.TarFile, path: Path, name: str, mtime: float) -> None:
    info = tar.gettarinfo(str(path), arcname=name)
    info.mtime = int(mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    with path.open("rb") as fh:
        tar.addfile(info, fh)


class _BlobGone(BackupFailed):
    """A blob the snapshot names was purged before it was copied (try a new snapshot)."""


#: Snapshots tried when files are purged between a snapshot and the copy of their blobs.
ATTEMPTS = 3


def create_backup(*, database_url: str, data_dir: str | Path, dest_dir: str | Path,
                  version: str, progress: Progress | None = None,
                  now: float | None = None) -> BackupInfo:
    """Write one backup archive into ``dest_dir`` and return what it is.

    A file purged between the snapshot and the copy of its blob takes its blob with it;
    the backup then starts again from a new snapshot (up to :data:`ATTEMPTS` times)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _create_backup(database_url=database_url, data_dir=data_dir,
                                  dest_dir=dest_dir, version=version, progress=progress,
                                  now=now)
        except _BlobGone:
            if attempt == ATTEMPTS:
                raise
            log.info("a file was purged during the backup; taking a new snapshot")
    raise AssertionError("unreachable")


def _create_backup(*, database_url: str, data_dir: str | Path, dest_dir: str | Path,
                   version: str, progress: Progress | None = None,
                   now: float | None = None) -> BackupInfo:
    progress = progress or (lambda stage, done, total: None)
    started_at = time.perf_counter()
    created = time.time() if now is None else now
    data_dir = Path(data_dir)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    kind = database_kind(database_url)
    name = backup_name(created)
    final = dest_dir / name
    n = 1
    while final.exists():  # two backups in one second
        name = f"{PREFIX}{dt.datetime.fromtimestamp(created):%Y%m%d-%H%M%S}-{n}{SUFFIX}"
        final = dest_dir / name
        n += 1
    blob_root = data_dir / "files"

    with tempfile.TemporaryDirectory(prefix=".backup-", dir=dest_dir) as tmp:
        work = Path(tmp)
        progress("database", 0, 1)
        snapshot = _snapshot_sqlite if kind == "sqlite" else _snapshot_postgres
        db_file, migrations, counts, hashes, snapshot_started = snapshot(database_url, work)
        db_member = SQLITE_MEMBER if kind == "sqlite" else POSTGRES_MEMBER
        progress("database", 1, 1)

        members: dict[str, dict] = {db_member: {"sha256": _sha256_file(db_file),
                                                "size": db_file.stat().st_size}}
        blobs: list[tuple[str, Path]] = []
        for sha in hashes:
            path = blob_root / sha[:2] / sha[2:4] / sha
            if not path.is_file():
                raise _BlobGone(f"the stored content of a file ({sha}) is missing from "
                                f"{blob_root}; no backup was written")
            blobs.append((f"files/{sha[:2]}/{sha[2:4]}/{sha}", path))
        extras = [(f"data/{f}", data_dir / f) for f in EXTRA_FILES if (data_dir / f).is_file()]

        partial = work / (name + ".partial")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            # The manifest goes first, so every blob is hashed (and checked against its
            # name) before anything is added; a restore reads the manifest, then checks.
            for index, (member, path) in enumerate(blobs):
                digest = _sha256_file(path)
                if digest != path.name:
                    raise BackupFailed(f"the stored content {path} is damaged (its SHA-256 "
                                       f"is {digest}); no backup was written")
                members[member] = {"sha256": digest, "size": path.stat().st_size}
                progress("files", index, len(blobs))
            for member, path in extras:
                members[member] = {"sha256": _sha256_file(path), "size": path.stat().st_size}
            manifest = {
                "format": FORMAT, "kind": "trackeep-backup", "version": version,
                "created_at": created, "database": kind, "migrations": migrations,
                "counts": counts, "members": members,
            }
            data = json.dumps(manifest, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(created), 0o600
            tar.addfile(info, io.BytesIO(data))
            _add_file(tar, db_file, db_member, created)
            for index, (member, path) in enumerate(blobs):
                _add_file(tar, path, member, created)
                progress("files", index + 1, len(blobs))
            for member, path in extras:
                _add_file(tar, path, member, created)
            if not blobs:
                progress("files", 0, 0)
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, final)
    info = BackupInfo(name=name, path=final, size=final.stat().st_size, created_at=created,
                      snapshot_started=snapshot_started,
                      seconds=time.perf_counter() - started_at, counts=counts)
    progress("finished", 1, 1)
    log.info("backup %s written: %d bytes, %d file blob(s), in %.2f s", final, info.size,
             len(blobs), info.seconds)
    return info


def list_backups(dest_dir: str | Path) -> list[BackupInfo]:
    """The finished backups in ``dest_dir``, newest first."""
    folder = Path(dest_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.name.startswith(PREFIX) and path.name.endswith(SUFFIX) and path.is_file():
            stat = path.stat()
            found.append(BackupInfo(name=path.name, path=path, size=stat.st_size,
                                    created_at=stat.st_mtime))
    found.sort(key=lambda b: (b.name, b.created_at), reverse=True)
    return found


def find_backup(dest_dir: str | Path, name: str) -> BackupInfo:
    """The backup called ``name`` (only names :func:`list_backups` shows)."""
    for info in list_backups(dest_dir):
        if info.name == name:
            return info
    raise BackupNotFound("No such backup.")


def prune_backups(dest_dir: str | Path, keep: int) -> list[str]:
    """Delete all but the ``keep`` newest backups; returns the names deleted."""
    if keep <= 0:
        return []
    removed = []
    for info in list_backups(dest_dir)[keep:]:
        with contextlib.suppress(FileNotFoundError):
            info.path.unlink()
            removed.append(info.name)
    if removed:
        log.info("removed %d old backup(s): %s", len(removed), ", ".join(removed))
    return removed

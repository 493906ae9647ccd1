"""Restore a backup archive into an empty data folder and database.

Every member's SHA-256 is checked against the manifest before anything is written; a damaged
archive (a flipped byte, a truncated file, a member missing or added) is refused with a
message that says so, and the target is left as it was. The archive is then extracted into a
temporary folder beside the data folder, the database restored (SQLite: the snapshot file
moved into place; PostgreSQL: ``pg_restore --single-transaction``), and only then are the
files moved into place. A target that is not empty is refused unless ``force`` is given;
with it, what the backup carries replaces what is there (other files stay). Flask-free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path

from trackeep_desktop import errors
from trackeep_desktop.backup.backup import (
    FORMAT,
    MANIFEST,
    POSTGRES_MEMBER,
    SQLITE_MEMBER,
    BackupError,
    Progress,
    database_kind,
    pg_bin,
    pg_conninfo,
    sqlite_path,
)

log = logging.getLogger(__name__)


class CorruptArchive(BackupError, errors.Invalid):
    """The archive is damaged or is not a Trackeep backup."""


class TargetNotEmpty(BackupError, errors.Conflict):
    """The data folder or the database already holds data (and ``force`` was not given)."""


class RestoreFailed(BackupError, errors.Unavailable):
    """The restore could not be completed (nothing was moved into place)."""


@dataclasses.dataclass(frozen=True)
class RestoreReport:
    database: str
    version: str
    counts: dict[str, int]
    files: int


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> tuple[dict, tarfile.TarInfo]:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile():
        raise CorruptArchive(f"{archive.name} is not a Trackeep backup (it has no manifest).")
    fh = tar.extractfile(first)
    assert fh is not None
    try:
        manifest = json.loads(fh.read())
    except (ValueError, RecursionError) as exc:
        raise CorruptArchive(f"The manifest of {archive.name} is damaged: {exc}.") from exc
    if not isinstance(manifest, dict) or manifest.get("kind") != "trackeep-backup":
        raise CorruptArchive(f"{archive.name} is not a Trackeep backup.")
    if manifest.get("format") != FORMAT:
        raise CorruptArchive(f"{archive.name} is a backup of format {manifest.get('format')}, "
                             f"which this version cannot read (it reads format {FORMAT}).")
    members = manifest.get("members")
    if not isinstance(members, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in members.values()):
        raise CorruptArchive(f"The manifest of {archive.name} is damaged (no member list).")
    return manifest, first


def _safe_name(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def _walk(archive: Path, extract_to: Path | None = None) -> dict:
    """Read the whole archive, checking every member against the manifest; with
    ``extract_to``, write each member there as well. Returns the manifest."""
    try:
        with tarfile.open(archive, "r:") as tar:
            manifest, first = _read_manifest(tar, archive)
            expected = manifest["members"]
            seen: set[str] = set()
            for member in tar:  # from the start again: the manifest comes first
                if member is first:
                    continue
                name = member.name
                if name not in expected or name in seen or not member.isfile() \
                        or not _safe_name(name):
                    raise CorruptArchive(f"{archive.name} holds {name!r}, which its manifest "
                                         "does not list; it is not a backup this program "
                                         "wrote, or it was altered.")
                seen.add(name)
                source = tar.extractfile(member)
                assert source is not None
                digest = hashlib.sha256()
                out = None
                if extract_to is not None:
                    path = extract_to / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    out = path.open("wb")
                try:
                    for chunk in iter(lambda src=source: src.read(1024 * 1024), b""):
                        digest.update(chunk)
                        if out is not None:
                            out.write(chunk)
                finally:
                    if out is not None:
                        out.close()
                if digest.hexdigest() != expected[name]["sha256"]:
                    raise CorruptArchive(f"{archive.name} is damaged: the checksum of {name} "
                                         "does not match its manifest. Nothing was restored.")
            missing = sorted(set(expected) - seen)
            if missing:
                raise CorruptArchive(f"{archive.name} is incomplete: {len(missing)} member(s) "
                                     f"listed in its manifest are missing (first: {missing[0]})."
                                     " Nothing was restored.")
    except CorruptArchive:
        raise
    except (tarfile.TarError, EOFError, OSError, UnicodeError) as exc:
        raise CorruptArchive(f"{archive.name} is damaged or truncated ({exc}). Nothing was "
                             "restored.") from exc
    return manifest


def verify_archive(archive: str | Path) -> dict:
    """Check every checksum of ``archive`` and return its manifest (raise
    :class:`CorruptArchive` otherwise). Writes nothing."""
    archive = Path(archive)
    if not archive.is_file():
        raise CorruptArchive(f"No such backup file: {archive}.")
    return _walk(archive)


def _data_dir_is_empty(data_dir: Path) -> bool:
    return not data_dir.exists() or not any(data_dir.iterdir())


def _postgres_tables(conninfo: str) -> list[str]:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        return [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]


def _sqlite_counts(path: Path, tables: list[str]) -> dict[str, int]:
    conn = sqlite3.connect(str(path))
    try:
        return {t: int(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0])
                for t in tables}
    finally:
        conn.close()


def _restore_list(dump: Path, work: Path) -> Path:
    """The dump's table of contents without the ``public`` schema itself, which every
    target database has (a dump of a schema that was dropped and made again names it)."""
    result = subprocess.run([pg_bin("pg_restore"), "--list", str(dump)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise RestoreFailed(f"pg_restore cannot read the dump: {result.stderr.strip()}")
    kept = [line for line in result.stdout.splitlines()
            if not re.search(r"\b(SCHEMA|COMMENT) - (SCHEMA )?public\b", line)]
    path = work / "restore.list"
    path.write_text("\n".join(kept) + "\n")
    return path


def _replace(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, replacing what is there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        aside = target.with_name(f".{target.name}.replaced")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(target, aside)
        shutil.move(str(source), str(target))
        shutil.rmtree(aside, ignore_errors=True)
    else:
        shutil.move(str(source), str(target))


def restore_backup(archive: str | Path, *, data_dir: str | Path, database_url: str,
                   force: bool = False, progress: Progress | None = None) -> RestoreReport:
    """Restore ``archive`` into ``data_dir`` and the database at ``database_url``."""
    progress = progress or (lambda stage, done, total: None)
    archive = Path(archive).resolve()
    data_dir = Path(data_dir).resolve()
    progress("checking", 0, 1)
    manifest = verify_archive(archive)
    progress("checking", 1, 1)
    kind = database_kind(database_url)
    if manifest.get("database") != kind:
        raise BackupError(f"{archive.name} is a backup of a {manifest.get('database')} "
                          f"database; it cannot be restored into {kind}.")

    if not force:
        if not _data_dir_is_empty(data_dir):
            raise TargetNotEmpty(f"The data folder {data_dir} is not empty; restore into an "
                                 "empty folder, or give --force to replace its contents.")
        if kind == "sqlite":
            db_path = sqlite_path(database_url)
            if db_path.exists() and db_path.stat().st_size > 0:
                raise TargetNotEmpty(f"The database {db_path} exists; restore into an empty "
                                     "one, or give --force to replace it.")
        elif _postgres_tables(pg_conninfo(database_url)):
            raise TargetNotEmpty("The PostgreSQL database is not empty; restore into an "
                                 "empty one, or give --force to replace its tables.")

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = manifest.get("counts") or {}
    with tempfile.TemporaryDirectory(prefix=f".{data_dir.name}-restore-",
                                     dir=data_dir.parent) as tmp:
        work = Path(tmp)
        progress("extracting", 0, 1)
        _walk(archive, extract_to=work)  # checked again as it is written
        progress("extracting", 1, 1)
        files = work / "files"
        blob_count = sum(1 for p in files.rglob("*") if p.is_file()) if files.is_dir() else 0

        progress("database", 0, 1)
        if kind == "sqlite":
            db_file = work / SQLITE_MEMBER
            restored = _sqlite_counts(db_file, list(counts))
            if restored != counts:
                raise RestoreFailed("The restored database does not hold the rows the "
                                    "manifest counts; nothing was restored.")
        else:
            dump = work / POSTGRES_MEMBER
            command = [pg_bin("pg_restore"), "--single-transaction", "--exit-on-error",
                       "--no-owner", "--no-privileges", f"--use-list={_restore_list(dump, work)}",
                       f"--dbname={pg_conninfo(database_url)}"]
            if force:
                command[1:1] = ["--clean", "--if-exists"]
            result = subprocess.run([*command, str(dump)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, check=False)
            if result.returncode != 0:
                raise RestoreFailed("pg_restore failed, nothing was restored: "
                                    f"{result.stderr.strip()}")
        progress("database", 1, 1)

        # Everything is checked and the database is in; move the files into place.
        data_dir.mkdir(parents=True, exist_ok=True)
        if kind == "sqlite":
            target = sqlite_path(database_url)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(str(target) + suffix).unlink()
            _replace(work / SQLITE_MEMBER, target)
        if files.is_dir():
            _replace(files, data_dir / "files")
        elif force:
            shutil.rmtree(data_dir / "files", ignore_errors=True)
        extra = work / "data"
        if extra.is_dir():
            for path in extra.iterdir():
                _replace(path, data_dir / path.name)
        progress("finished", 1, 1)
    log.info("restored %s into %s (%s)", archive, data_dir, kind)
    return RestoreReport(database=kind, version=str(manifest.get("version")), counts=counts,
                         files=blob_count)

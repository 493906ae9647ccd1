"""How long importing a 10,000-bookmark Netscape file takes (target: under 10 s).

It writes a bookmark file shaped like a browser's export (nested folders, which become tags;
``ADD_DATE`` on every link; Firefox-style ``TAGS`` and ``<DD>`` descriptions on some), then,
for each run, builds the application on a fresh SQLite database in a temporary folder (so
whatever change hooks the application wires, the search index included, run as in
production), creates an account and times :func:`trackeep_desktop.transfer.import_bookmarks`
from the file on disk: parsing, duplicate checks, one transaction, every bookmark created
through the items domain with its tags.

Floors, measured in the same run:

* ``parse only``: :func:`~trackeep_desktop.transfer.parse_netscape` of the same file;
* ``raw sqlite3``: the same rows (bookmarks, their distinct tags and the tag links) inserted
  with sqlite3 ``executemany`` in one transaction into tables of the same shape, with the
  application's pragmas: what storing the data costs with no domain at all.

Run from the checkout::

    .venv/bin/python bench/import_bookmarks.py              # 10,000 bookmarks, 3 runs
    .venv/bin/python bench/import_bookmarks.py --count 2000 --runs 1
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import random
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trackeep_desktop import accounts, transfer  # noqa: E402
from trackeep_desktop.app import create_app  # noqa: E402
from trackeep_desktop.storage.changes import use_pipeline  # noqa: E402
from trackeep_desktop.storage.db import SQLITE_PRAGMAS, connection  # noqa: E402

TARGET_SECONDS = 10.0
WORDS = ("python", "sqlite", "garden", "recipes", "travel", "music", "linux", "design",
         "history", "physics", "rust", "coffee", "cycling", "photography", "finance", "maps")


def write_bookmark_file(path: Path, count: int, folders: int, seed: int = 7) -> None:
    """A Netscape bookmark file with ``count`` distinct links in nested folders."""
    rng = random.Random(seed)
    names = [f"{rng.choice(WORDS).title()} {n}" for n in range(folders)]
    per_folder = [[] for _ in range(folders)]
    for n in range(count):
        per_folder[n % folders].append(n)
    lines = ["<!DOCTYPE NETSCAPE-Bookmark-file-1>",
             '<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">',
             "<TITLE>Bookmarks</TITLE>", "<H1>Bookmarks</H1>", "<DL><p>",
             '    <DT><H3 ADD_DATE="1600000000" PERSONAL_TOOLBAR_FOLDER="true">Bookmarks bar'
             "</H3>", "    <DL><p>"]
    for index, name in enumerate(names):
        lines.append(f'        <DT><H3 ADD_DATE="1600000000">{name}</H3>')
        lines.append("        <DL><p>")
        links = per_folder[index]
        half = len(links) // 2
        for position, n in enumerate(links):
            if position == half:  # the second half one level deeper
                lines.append(f'            <DT><H3 ADD_DATE="1600000000">{name} archive</H3>')
                lines.append("            <DL><p>")
            indent = "                " if position >= half else "            "
            word = rng.choice(WORDS)
            extra = f' TAGS="{rng.choice(WORDS)},{word}"' if n % 5 == 0 else ""
            lines.append(f'{indent}<DT><A HREF="https://{word}.example.org/articles/{n}?ref=bm"'
                         f' ADD_DATE="{1_500_000_000 + n * 37}"{extra}>{word.title()} article '
                         f"number {n}</A>")
            if n % 7 == 0:
                lines.append(f"{indent}<DD>Notes about {word} article {n}.")
        if half < len(links):
            lines.append("            </DL><p>")
        lines.append("        </DL><p>")
    lines += ["    </DL><p>", "</DL><p>"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def time_import(bookmark_file: Path, workdir: Path) -> tuple[float, int]:
    """Seconds to import the file into a fresh app and account; and how many were saved."""
    app = create_app({"DATA_DIR": str(workdir), "LOG_LEVEL": "WARNING",
                      "COUNTER_FLUSH_INTERVAL": 0, "FETCH_METADATA": False})
    state = app.extensions["trackeep"]
    try:
        with app.app_context(), connection(state.db), use_pipeline(state.pipeline):
            user = accounts.create_owner("bench@example.com", "bench", "bench-password-1",
                                         now=time.time(), min_password_length=8)
            with bookmark_file.open("rb") as fh:
                started = time.perf_counter()
                report = transfer.import_bookmarks(user.id, fh, now=time.time())
                elapsed = time.perf_counter() - started
    finally:
        state.close()
    return elapsed, report.counts["bookmarks"]


def time_parse(bookmark_file: Path) -> float:
    with bookmark_file.open("rb") as fh:
        started = time.perf_counter()
        transfer.parse_netscape(fh)
        return time.perf_counter() - started


def time_raw_sqlite(bookmark_file: Path, workdir: Path) -> float:
    """The floor: the parsed rows stored with plain sqlite3 in one transaction."""
    with bookmark_file.open("rb") as fh:
        parsed = transfer.parse_netscape(fh).bookmarks
    conn = sqlite3.connect(workdir / "floor.db", isolation_level=None)
    for name, value in SQLITE_PRAGMAS.items():
        conn.execute(f"PRAGMA {name} = {value}")
    conn.executescript("""
        CREATE TABLE bookmark (id INTEGER PRIMARY KEY, user_id INTEGER, url TEXT,
            url_hash TEXT, title TEXT, description TEXT, created_at REAL, updated_at REAL,
            deleted_at REAL);
        CREATE INDEX bookmark_user_hash ON bookmark (user_id, url_hash);
        CREATE TABLE tag (id INTEGER PRIMARY KEY, user_id INTEGER, name TEXT, name_key TEXT);
        CREATE UNIQUE INDEX tag_user_key ON tag (user_id, name_key);
        CREATE TABLE item_tag (id INTEGER PRIMARY KEY, tag_id INTEGER, item_type TEXT,
            item_id INTEGER);
        CREATE UNIQUE INDEX item_tag_unique ON item_tag (tag_id, item_type, item_id);
    """)
    started = time.perf_counter()
    conn.execute("BEGIN")
    tag_ids: dict[str, int] = {}
    for entry in parsed:
        for name in entry.tags:
            if name.casefold() not in tag_ids:
                cursor = conn.execute("INSERT INTO tag (user_id, name, name_key) VALUES "
                                      "(1, ?, ?)", (name, name.casefold()))
                tag_ids[name.casefold()] = cursor.lastrowid
    links = []
    for entry in parsed:
        cursor = conn.execute(
            "INSERT INTO bookmark (user_id, url, url_hash, title, description, created_at, "
            "updated_at) VALUES (1, ?, ?, ?, ?, ?, ?)",
            (entry.url, hashlib.sha256(entry.url.encode()).hexdigest(), entry.title,
             entry.description, entry.add_date, entry.add_date))
        links.extend((tag_ids[n.casefold()], "bookmark", cursor.lastrowid)
                     for n in dict.fromkeys(entry.tags))
    conn.executemany("INSERT OR IGNORE INTO item_tag (tag_id, item_type, item_id) "
                     "VALUES (?, ?, ?)", links)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def machine_line() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"nproc {len(os.sched_getaffinity(0))}, {model}, Python "
            f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="bookmarks in the file")
    parser.add_argument("--folders", type=int, default=40, help="top-level folders")
    parser.add_argument("--runs", type=int, default=3, help="timed imports (fresh each)")
    args = parser.parse_args(argv)

    command = "bench/import_bookmarks.py " + shlex.join(argv if argv is not None
                                                        else sys.argv[1:])
    print("Trackeep bookmark import benchmark (bench/import_bookmarks.py)")
    print(f"date:    {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}")
    print(f"command: .venv/bin/python {command.strip()}")
    print(f"machine: {machine_line()}")
    print(f"load:    {' '.join(f'{v:.2f}' for v in os.getloadavg())} (1/5/15 min, at start)")

    with tempfile.TemporaryDirectory(prefix="tkbench-import-") as tmp:
        tmp_path = Path(tmp)
        bookmark_file = tmp_path / "bookmarks.html"
        write_bookmark_file(bookmark_file, args.count, args.folders)
        size = bookmark_file.stat().st_size
        print(f"file:    {args.count} bookmarks in {args.folders * 2} folders, "
              f"{size / 1e6:.1f} MB")
        imports, parses, floors = [], [], []
        for run in range(args.runs):
            workdir = tmp_path / f"run{run}"
            workdir.mkdir()
            elapsed, saved = time_import(bookmark_file, workdir)
            if saved != args.count:
                print(f"run {run + 1}: saved {saved} of {args.count} bookmarks!")
                return 1
            imports.append(elapsed)
            parses.append(time_parse(bookmark_file))
            floors.append(time_raw_sqlite(bookmark_file, workdir))
            print(f"run {run + 1}: import {elapsed:.2f} s ({args.count / elapsed:,.0f} "
                  f"bookmarks/s); parse only {parses[-1]:.2f} s; raw sqlite3 "
                  f"{floors[-1]:.2f} s")

    median = statistics.median(imports)
    floor = statistics.median(floors)
    verdict = "PASS" if median < TARGET_SECONDS else "MISS"
    print()
    print(f"import (median of {args.runs}):  {median:.2f} s, "
          f"{args.count / median:,.0f} bookmarks/s   (best {min(imports):.2f} s, worst "
          f"{max(imports):.2f} s)")
    print(f"parse only (median):      {statistics.median(parses):.2f} s "
          f"({statistics.median(parses) / median:.0%} of the import)")
    print(f"raw sqlite3 floor:        {floor:.2f} s; import/floor {median / floor:.1f}x")
    print(f"target: under {TARGET_SECONDS:.0f} s for {args.count} bookmarks: {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

"""Memory and time of the Netscape bookmark export (``GET /api/v1/bookmarks/export``).

It builds the application on a fresh SQLite database in a temporary folder, imports a
bookmark file of ``--count`` links (40,000 by default, written as bench/import_bookmarks.py
writes them: folders become tags, some descriptions), then downloads the export through the
Flask test client, reading the body chunk by chunk and dropping each chunk, as a client
saving it to disk does. It reports, per run, the time to the first chunk, the total time,
the body's size, and the peak of Python's heap during the download (``tracemalloc``).

The floor is the export built in memory, as the endpoint did before it streamed:
``"".join(transfer.export_bookmarks(user_id))`` of the same account. The ratio of the two
peaks is what streaming saves; the times should be about equal.

Run from the checkout::

    .venv/bin/python bench/export.py                 # 40,000 bookmarks, 3 runs
    .venv/bin/python bench/export.py --count 5000 --runs 1
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_bookmarks import machine_line, write_bookmark_file  # noqa: E402

from trackeep_desktop import accounts, transfer  # noqa: E402
from trackeep_desktop.app import create_app  # noqa: E402
from trackeep_desktop.storage.changes import use_pipeline  # noqa: E402
from trackeep_desktop.storage.db import connection  # noqa: E402


def measure(fn) -> tuple[float, int]:
    """Seconds ``fn()`` took and the peak of Python's heap above its start, in bytes."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return elapsed, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40_000, help="bookmarks to export")
    parser.add_argument("--runs", type=int, default=3, help="timed downloads of each kind")
    args = parser.parse_args(argv)
    print("Trackeep bookmark export benchmark (bench/export.py)")
    print(f"date:    {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}")
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine_line()}")
    print(f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, at start)")

    with tempfile.TemporaryDirectory(prefix="trackeep-bench-export-") as tmp:
        workdir = Path(tmp)
        bookmark_file = workdir / "bookmarks.html"
        write_bookmark_file(bookmark_file, args.count, folders=40)
        app = create_app({"DATA_DIR": str(workdir / "data"), "LOG_LEVEL": "WARNING",
                          "COUNTER_FLUSH_INTERVAL": 0, "FETCH_METADATA": False,
                          "API_RATE_LIMIT": 1_000_000})
        state = app.extensions["trackeep"]
        try:
            with app.app_context(), connection(state.db), use_pipeline(state.pipeline):
                user = accounts.create_owner("bench@example.com", "bench", "bench-password-1",
                                             now=time.time(), min_password_length=8)
                with bookmark_file.open("rb") as fh:
                    report = transfer.import_bookmarks(user.id, fh, now=time.time())
                _, key = accounts.create_api_key(user, "bench", ["*"], now=time.time())
            print(f"data:    {report.counts['bookmarks']} bookmarks of one user, SQLite")
            client = app.test_client()
            headers = {"Authorization": f"Bearer {key}"}
            streamed, built = [], []
            first_chunk: list[float] = []
            size = 0

            def download() -> None:
                nonlocal size
                started = time.perf_counter()
                response = client.get("/api/v1/bookmarks/export", headers=headers,
                                      buffered=False)
                assert response.status_code == 200, response.status_code
                size = 0
                for n, chunk in enumerate(response.response):
                    if n == 0:
                        first_chunk.append(time.perf_counter() - started)
                    size += len(chunk)
                response.close()

            def build() -> None:
                with app.app_context(), connection(state.db):
                    body = "".join(transfer.export_bookmarks(user.id)).encode()
                assert body

            for _ in range(args.runs):  # alternating, so background load hits both alike
                streamed.append(measure(download))
                built.append(measure(build))
        finally:
            state.close()

    def row(name: str, runs: list[tuple[float, int]], extra: str = "") -> None:
        seconds = statistics.median(t for t, _ in runs)
        peak = statistics.median(p for _, p in runs)
        print(f"  {name:<24} {seconds * 1000:>9.0f} ms {peak / 2**20:>10.1f} MiB  {extra}")
        return peak

    print(f"runs:    {args.runs} of each, alternating; medians; body {size / 2**20:.1f} MiB")
    print(f"  {'':<24} {'total':>12} {'peak heap':>14}")
    peak_streamed = row("streamed (the endpoint)", streamed,
                        f"first chunk after {statistics.median(first_chunk) * 1000:.0f} ms")
    peak_built = row("built in memory (floor)", built)
    print(f"peak heap streamed / built: {peak_streamed / peak_built:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

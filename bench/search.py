"""Search latency and indexing throughput, each against its floor, on synthetic data.

It builds N items (``--n``, 100,000 by default; ``--n 1000000`` on request) of one user on
SQLite (or, with ``--postgres URL``, in a scratch database created on that PostgreSQL server
and dropped afterwards), across the four types (40% bookmarks, 25% notes, 25% tasks, 10%
files), with words drawn from a Zipf-like distribution over a 50,000-word synthetic
vocabulary, and about a third of the items tagged. The rows are inserted in bulk; the
**index** is then built through the real path,
the change pipeline (``record_change(..., "created", ...)``) inside transactions of 1,000
items, and its throughput (items/s) reported.

Query shapes, with terms picked from the index's own vocabulary (``fts5vocab``; on
PostgreSQL ``ts_stat``) by document frequency: *rare* (5-20 documents, or the rarest words
when none is that rare), *mid* (0.5-2% of documents), *common* (the most frequent words, in
25% or more), *two-word AND* (a mid and a common word), *phrase* (two adjacent title words),
*prefix* (the first 3 letters of a mid word, ``abc*``) and *filtered* (a mid word with
``type:note``). Each shape cycles through up to 10 different queries.

For every shape, as p50/p95/p99 in ms:

* ``function``: :func:`trackeep_desktop.search.search` called directly, uncached;
* ``http``: ``GET /api/v1/search`` on a real :class:`~trackeep_desktop.server.ThreadedServer`
  on 127.0.0.1 through ``requests`` (one keep-alive connection), the user's search generation
  bumped before each request (outside the timing), so each is a cache miss;
* ``cached``: the same request answered from the cache (embedded cache; ``--redis-url`` to use
  Redis), against the HTTP floor ``GET /api/v1/auth/me`` (the same server, authentication and
  database connection, no search);
* ``served``: the cached request again, through ``trackeep serve`` (gevent, the home-server
  mode) in its own process on the same database, from one kept-alive ``http.client``
  connection: what a client sees, without sharing the server's GIL. The cached target is
  checked on this row;
* the floors, in the same run: ``raw FTS5``, the top-20 by bm25 (the table's ``rank``) with
  a snippet straight from ``sqlite3`` (``... WHERE search_fts MATCH ? ORDER BY rank LIMIT
  20``, the same terms, no user, no filter, no count; on PostgreSQL ``raw tsquery``: the
  top-20 by ``ts_rank`` over the GIN index with a ``ts_headline``), and ``LIKE``, the
  original Trackeep's
  scan (``title LIKE '%term%' OR description/content LIKE '%term%'`` over bookmarks, tasks
  and notes; single-word shapes only, fewer iterations since it is slow).

Targets (the issue's): uncached p95 < 50 ms at 100k (< 150 ms at 1M) for every shape through
the function and HTTP, function p95 ≤ 1.5x the raw FTS5 p95, cached p99 < 2 ms through HTTP,
indexing ≥ 5,000 items/s. PASS/MISS per check.

Run from the checkout::

    .venv/bin/python bench/search.py                    # N = 100,000
    .venv/bin/python bench/search.py --n 1000000 --iterations 100
    .venv/bin/python bench/search.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TYPES = (("bookmark", 0.40), ("note", 0.25), ("task", 0.25), ("file", 0.10))
VOCABULARY = 50_000
ZIPF_S = 1.0
TAGS = 40
BATCH = 1000


# ------------------------------------------------------------------------------ synthetic data


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """Distinct pronounceable words, 2-4 syllables."""
    consonants = "bcdfghjklmnprstvwz"
    vowels = "aeiou"
    words: dict[str, None] = {}
    while len(words) < size:
        word = "".join(rng.choice(consonants) + rng.choice(vowels)
                       for _ in range(rng.randint(2, 4)))
        words.setdefault(word)
    return list(words)


class Text:
    """Random text whose word frequencies follow a Zipf-like law."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.words = vocabulary(VOCABULARY, rng)
        weights = [1 / (rank + 1) ** ZIPF_S for rank in range(len(self.words))]
        total = 0.0
        self.cumulative = []
        for w in weights:
            total += w
            self.cumulative.append(total)

    def __call__(self, low: int, high: int) -> str:
        n = self.rng.randint(low, high)
        return " ".join(self.rng.choices(self.words, cum_weights=self.cumulative, k=n))


def populate(user_id: int, n: int, seed: int) -> dict[str, list[int]]:
    """Insert ``n`` items of one user in bulk (no index yet); returns their ids by type."""
    from trackeep_desktop import items
    from trackeep_desktop.storage.db import database
    from trackeep_desktop.storage.models import Bookmark, File, ItemTag, Note, Tag, Task

    rng = random.Random(seed)
    text = Text(rng)
    now = time.time()
    tags = [Tag.create(user=user_id, name=f"tag{i}", name_key=f"tag{i}", color="#3b82f6",
                       created_at=now, updated_at=now) for i in range(TAGS)]
    models = {"bookmark": Bookmark, "note": Note, "task": Task, "file": File}
    counts = {t: int(n * share) for t, share in TYPES}
    counts["bookmark"] += n - sum(counts.values())
    ids: dict[str, list[int]] = {}
    for item_type, count in counts.items():
        model = models[item_type]
        for start in range(0, count, BATCH):
            rows = []
            for i in range(start, min(count, start + BATCH)):
                created = now - (count - i) * 60
                row = {"user": user_id, "created_at": created, "updated_at": created}
                if item_type == "bookmark":
                    url = f"https://site{i % 5000}.example/{text(1, 3).replace(' ', '-')}"
                    row.update(url=url, url_hash=items.url_hash(url), title=text(3, 9),
                               description=text(5, 40), is_favorite=rng.random() < 0.1,
                               is_read=rng.random() < 0.5)
                elif item_type == "note":
                    row.update(title=text(2, 7), content=text(30, 200),
                               is_pinned=rng.random() < 0.05)
                elif item_type == "task":
                    row.update(title=text(3, 10), description=text(0, 30),
                               status=rng.choice(items.TASK_STATUSES))
                else:
                    row.update(name=f"{text(1, 3).replace(' ', '_')}.pdf",
                               description=text(0, 20), mime_type="application/pdf",
                               kind="document", size=1000, sha256="0" * 64)
                rows.append(row)
            with database.atomic():
                model.insert_many(rows).execute()
        ids[item_type] = [r.id for r in model.select(model.id).order_by(model.id)]
    links = []
    for item_type, item_ids in ids.items():
        for item_id in item_ids:
            if rng.random() < 0.33:
                for tag in rng.sample(tags, rng.randint(1, 2)):
                    links.append({"tag": tag.id, "item_type": item_type, "item_id": item_id})
    with database.atomic():
        for start in range(0, len(links), BATCH):
            ItemTag.insert_many(links[start:start + BATCH]).execute()
    return ids


def index_through_pipeline(user_id: int, ids: dict[str, list[int]]) -> tuple[int, float]:
    """Index every item through the change pipeline, 1,000 per transaction; (items,
    seconds)."""
    from trackeep_desktop.realtime.pipeline import build_pipeline
    from trackeep_desktop.storage.changes import record_change, use_pipeline
    from trackeep_desktop.storage.db import database
    from trackeep_desktop.storage.models import Bookmark, File, Note, Task

    models = {"bookmark": Bookmark, "note": Note, "task": Task, "file": File}
    done = 0
    started = time.perf_counter()
    for item_type, item_ids in ids.items():
        model = models[item_type]
        for start in range(0, len(item_ids), BATCH):
            chunk = item_ids[start:start + BATCH]
            with database.atomic(), use_pipeline(build_pipeline()):
                for item in model.select().where(model.id.in_(chunk)):
                    record_change(user_id, item_type, "created", item, event=False)
            done += len(chunk)
    return done, time.perf_counter() - started


# ------------------------------------------------------------------------------------ queries


def vocabulary_and_titles(database_url: str) -> tuple[list[tuple[str, int]], list[str]]:
    """(term, documents) for the index's words, and 200 random titles (SQLite or PostgreSQL)."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.split(":///", 1)[1])
        conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, search_fts, 'row')")
        rows = conn.execute("SELECT term, doc FROM temp.vocab WHERE length(term) >= 4 "
                            "AND term NOT GLOB '*[0-9]*'").fetchall()
        titles = [r[0] for r in conn.execute(
            "SELECT title FROM search_fts ORDER BY random() LIMIT 200").fetchall()]
        conn.close()
        return rows, titles
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT word, ndoc FROM ts_stat('SELECT tsv FROM search_document') "
                            "WHERE length(word) >= 4 AND word !~ '[0-9]'").fetchall()
        titles = [r[0] for r in conn.execute(
            "SELECT title FROM search_document ORDER BY random() LIMIT 200").fetchall()]
    return rows, titles


def pick_queries(database_url: str, seed: int, total_docs: int) -> dict[str, list[str]]:
    """Query texts per shape, from the index's vocabulary by document frequency."""
    rng = random.Random(seed + 1)
    rows, titles = vocabulary_and_titles(database_url)
    rows.sort()  # the same order from either engine before sorting by frequency
    by_freq = sorted(rows, key=lambda r: r[1])
    # At a million items even the rarest synthetic words are in more than 20 documents:
    # then the rarest ones there are.
    rare = [t for t, d in by_freq if 5 <= d <= 20] or [t for t, d in by_freq if d >= 5][:20]
    mid = [t for t, d in by_freq if 0.005 * total_docs <= d <= 0.02 * total_docs]
    common = [t for t, d in sorted(rows, key=lambda r: -r[1])[:10]
              if d >= 0.25 * total_docs] or [t for t, _ in sorted(rows, key=lambda r: -r[1])[:3]]
    phrases = []
    for title in titles:
        words = title.split()
        if len(words) >= 3:
            i = rng.randrange(len(words) - 1)
            phrases.append(f'"{words[i]} {words[i + 1]}"')
    sample = lambda pool, k=10: rng.sample(pool, min(k, len(pool)))  # noqa: E731
    mids = sample(mid)
    return {
        "rare": sample(rare),
        "mid": mids,
        "common": sample(common, 5),
        "two-word AND": [f"{m} {rng.choice(common)}" for m in mids],
        "phrase": phrases[:10],
        "prefix": [f"{m[:3]}*" for m in mids],
        "filtered": [f"{m} type:note" for m in mids],
    }


def like_words(query: str) -> list[str]:
    from trackeep_desktop import search

    parsed = search.parse_query(query)
    return [t.tokens[0] for t in parsed.terms if t.kind == "word"]


LIKE_SQL = (
    "SELECT 'bookmark', id FROM bookmark WHERE user_id = {u} AND deleted_at IS NULL AND "
    "(title LIKE {p} OR description LIKE {p} OR url LIKE {p}) "
    "UNION ALL SELECT 'task', id FROM task WHERE user_id = {u} AND deleted_at IS NULL AND "
    "(title LIKE {p} OR description LIKE {p}) "
    "UNION ALL SELECT 'note', id FROM note WHERE user_id = {u} AND deleted_at IS NULL AND "
    "(title LIKE {p} OR content LIKE {p}) LIMIT 20")

FLOOR_SQL = ("SELECT rowid, snippet(search_fts, 1, '[', ']', '…', 16) FROM search_fts "
             "WHERE search_fts MATCH ? ORDER BY rank LIMIT 20")

PG_FLOOR_SQL = ("SELECT d.id, ts_headline('{config}', left(d.body, 100000), q.q) "
                "FROM search_document d, (SELECT {tsquery} AS q) q WHERE d.tsv @@ q.q "
                "ORDER BY ts_rank('{{0.1, 0.2, 0.4, 1.0}}', d.tsv, q.q) DESC LIMIT 20")


class Floors:
    """The raw engine query and the ``LIKE`` scan, on a connection of their own."""

    def __init__(self, database_url: str):
        self.postgres = not database_url.startswith("sqlite")
        if self.postgres:
            import psycopg

            self.conn = psycopg.connect(database_url, autocommit=True)
        else:
            self.conn = sqlite3.connect(database_url.split(":///", 1)[1])
        self.label = "raw tsquery" if self.postgres else "raw FTS5"

    def raw(self, query: str) -> list:
        from trackeep_desktop import search

        terms = search.parse_query(query).terms
        if self.postgres:
            tsquery, params = search.pg_tsquery(terms)
            sql = PG_FLOOR_SQL.format(config=search.PG_CONFIG, tsquery=tsquery)
            return self.conn.execute(sql, params).fetchall()
        return self.conn.execute(FLOOR_SQL, (search.fts_match(terms),)).fetchall()

    def like(self, user_id: int, word: str) -> list:
        if self.postgres:
            sql = LIKE_SQL.format(u="%(u)s", p="%(p)s")
            return self.conn.execute(sql, {"u": user_id, "p": f"%{word}%"}).fetchall()
        return self.conn.execute(LIKE_SQL.format(u="?1", p="?2"),
                                 (user_id, f"%{word}%")).fetchall()

    def close(self) -> None:
        self.conn.close()


class ScratchPostgres:
    """A database of its own on a PostgreSQL server, dropped at the end."""

    def __init__(self, server_url: str):
        import psycopg
        from psycopg import sql

        self.name = f"trackeep_bench_search_{os.getpid()}"
        self.server_url = server_url
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        base = server_url.rsplit("/", 1)[0] if server_url.count("/") > 2 else server_url
        self.url = f"{base}/{self.name}"

    def drop(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(self.name)))


# ---------------------------------------------------------------------------------- measuring


class ServedInstance:
    """``trackeep serve`` (gevent, the home-server mode) in its own process on the benchmark's
    database, and one kept-alive HTTP/1.1 connection to it: "through HTTP" measured the way a
    client on another process sees it, without the client sharing the server's GIL."""

    def __init__(self, data_dir: Path, database_url: str, token: str):
        import http.client
        import subprocess

        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKEEP_")}
        env.update(TRACKEEP_API_RATE_LIMIT=str(10**9), TRACKEEP_LOG_LEVEL="WARNING",
                   TRACKEEP_FETCH_METADATA="0")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trackeep_desktop", "serve", "--port", "0",
             "--data-dir", str(data_dir), "--database-url", database_url],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        line = ""
        while not line.startswith("Trackeep is running at "):
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError("trackeep serve did not start")
        port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
        self.connection = http.client.HTTPConnection("127.0.0.1", port)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> bytes:
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return body

    def stop(self) -> None:
        self.connection.close()
        self.proc.terminate()
        self.proc.wait(15)
        self.proc.stdout.close()


def database_size(database_url: str) -> int:
    """Bytes the benchmark's database takes (SQLite: the file and its WAL)."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.split(":///", 1)[1])
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def engine_version(floors: Floors) -> str:
    if floors.postgres:
        return "PostgreSQL " + floors.conn.execute("SHOW server_version").fetchone()[0]
    return f"SQLite {sqlite3.sqlite_version}"


def timings(run: Callable[[str], object], queries: list[str], n: int,
            before: Callable[[], object] | None = None, warmup: int = 3) -> list[float]:
    """Milliseconds of ``n`` calls cycling through ``queries`` (after a warm-up)."""
    samples = []
    for i in range(-warmup, n):
        query = queries[i % len(queries)]
        if before is not None:
            before()
        started = time.perf_counter()
        run(query)
        elapsed = (time.perf_counter() - started) * 1000
        if i >= 0:
            samples.append(elapsed)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def row(label: str, samples: list[float] | None) -> str:
    if not samples:
        return f"{label:<10} {'-':>8} {'-':>8} {'-':>8}"
    return (f"{label:<10} {pct(samples, 50):8.2f} {pct(samples, 95):8.2f} "
            f"{pct(samples, 99):8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="items (default 100,000)")
    parser.add_argument("--iterations", type=int, default=200,
                        help="timed calls per shape and path (default 200)")
    parser.add_argument("--like-iterations", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-url", help="use this Redis for the cache (default: embedded)")
    parser.add_argument("--postgres", metavar="URL",
                        help="run on PostgreSQL: a scratch database is created on this "
                             "server (URL of any database there) and dropped at the end")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (and the scratch database)")
    args = parser.parse_args(argv)

    import requests

    from trackeep_desktop import search
    from trackeep_desktop.app import create_app
    from trackeep_desktop.storage.db import database
    from trackeep_desktop.storage.models import User
    from trackeep_desktop.web.server import ThreadedServer

    folder = Path(tempfile.mkdtemp(prefix="trackeep-bench-search-"))
    db_path = folder / "trackeep.db"
    scratch = ScratchPostgres(args.postgres) if args.postgres else None
    database_url = scratch.url if scratch else f"sqlite:///{db_path}"
    config = {"DATA_DIR": str(folder / "data"), "DATABASE_URL": database_url,
              "COUNTER_FLUSH_INTERVAL": 0, "LOG_LEVEL": "WARNING", "API_RATE_LIMIT": 10**9,
              "AUTH_RATE_LIMIT": 10**6, "TRASH_RETENTION_DAYS": 0}
    if args.redis_url:
        config.update(REDIS_URL=args.redis_url, KEY_PREFIX="tkbench")
    app = create_app(config)
    state = app.extensions["trackeep"]
    client = app.test_client()
    owner = {"email": "bench@example.com", "username": "bench", "password": "bench-pass-123",
             "fullName": "Bench"}
    token = client.post("/api/v1/auth/register", json=owner).get_json()["token"]
    database.connect(reuse_if_open=True)
    user = User.get(User.username == "bench")
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    started = time.perf_counter()
    ids = populate(user.id, args.n, args.seed)
    say(f"rows:     {args.n:,} items inserted in {time.perf_counter() - started:.1f} s "
        f"({', '.join(f'{len(v):,} {k}s' for k, v in ids.items())})")
    indexed, seconds = index_through_pipeline(user.id, ids)
    rate = indexed / seconds
    say(f"index:    {indexed:,} items through the change pipeline in {seconds:.1f} s = "
        f"{rate:,.0f} items/s; database {database_size(database_url) / 2**20:.0f} MB")
    if scratch:
        database.execute_sql("ANALYZE")
    else:
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        database.execute_sql("ANALYZE")

    queries = pick_queries(database_url, args.seed, indexed)
    for shape, texts in queries.items():
        say(f"queries:  {shape:<13} {', '.join(texts[:4])}{' …' if len(texts) > 4 else ''}")

    floors = Floors(database_url)
    raw = floors.label
    server = ThreadedServer(app, "127.0.0.1", 0)
    server.start_background()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    base = f"http://127.0.0.1:{server.port}/api/v1/search"
    cache = state.capabilities.cache
    namespace = search.generation_namespace(user.id)

    def get(query: str) -> dict:
        response = http.get(base, params={"q": query})
        response.raise_for_status()
        return response.json()

    results: dict[str, dict[str, list[float]]] = {}
    approximate: dict[str, int] = {}
    for shape, texts in queries.items():
        if not texts:
            continue
        found = [search.search(user.id, q) for q in texts]
        approximate[shape] = sum(1 for a in found if a["approximate"])
        timed = {
            "function": timings(lambda q: search.search(user.id, q), texts, args.iterations),
            raw: timings(floors.raw, texts, args.iterations),
            "http": timings(get, texts, args.iterations,
                            before=lambda: cache.bump_generation(namespace)),
        }
        get(texts[0])
        timed["cached"] = timings(get, texts[:1], args.iterations * 5)
        if all(like_words(q) and " " not in q for q in texts) and shape in (
                "rare", "mid", "common"):
            timed["LIKE"] = timings(
                lambda q: floors.like(user.id, like_words(q)[0]), texts, args.like_iterations,
                warmup=1)
        results[shape] = timed

    me = f"http://127.0.0.1:{server.port}/api/v1/auth/me"
    floor_http = timings(lambda q: http.get(me).raise_for_status(), ["-"],
                         args.iterations * 5)
    server.stop()
    http.close()

    # The same cached searches through `trackeep serve` in its own process (see ServedInstance).
    from urllib.parse import urlencode

    served = ServedInstance(folder / "data", config["DATABASE_URL"], token)
    try:
        for shape, timed in results.items():
            path = "/api/v1/search?" + urlencode({"q": queries[shape][0]})
            served.get(path)  # fills this process's cache
            timed["served"] = timings(lambda q, p=path: served.get(p), ["-"],
                                      args.iterations * 5, warmup=20)
        floor_served = timings(lambda q: served.get("/api/v1/auth/me"), ["-"],
                               args.iterations * 5, warmup=20)
    finally:
        served.stop()

    limit = 50.0 if args.n <= 100_000 else 150.0
    say()
    say(f"latency in ms (p50 / p95 / p99); N = {args.n:,}; "
        f"cache: {'redis' if args.redis_url else 'embedded'}")
    say(f"{'shape':<13} {'path':<10} {'p50':>8} {'p95':>8} {'p99':>8}  matches  check")
    checks: list[tuple[str, bool]] = []
    for shape, timed in results.items():
        sample_answer = search.search(user.id, queries[shape][0])
        first = True
        for path in ("function", "http", "cached", "served", raw, "LIKE"):
            if path not in timed:
                continue
            verdict = ""
            if path in ("function", "http"):
                ok = pct(timed[path], 95) < limit
                checks.append((f"{shape} {path} p95 < {limit:g} ms", ok))
                verdict = f"p95<{limit:g}: {'PASS' if ok else 'MISS'}"
                if path == "function":
                    ratio = pct(timed[path], 95) / pct(timed[raw], 95)
                    ok_ratio = ratio <= 1.5
                    checks.append((f"{shape} function p95 ≤ 1.5x {raw}", ok_ratio))
                    verdict += f"; {ratio:.2f}x raw: {'PASS' if ok_ratio else 'MISS'}"
            elif path == "served":
                ok = pct(timed[path], 99) < 2.0
                checks.append((f"{shape} cached via trackeep serve p99 < 2 ms", ok))
                verdict = f"p99<2: {'PASS' if ok else 'MISS'}"
            matches = (f"{sample_answer['total']:>7}{'~' if sample_answer['approximate'] else ' '}"
                       if first else " " * 8)
            say(f"{shape if first else '':<13} {row(path, timed[path])}  {matches} {verdict}")
            first = False
    say(f"{'HTTP floor':<13} {row('auth/me', floor_http)}           GET /api/v1/auth/me: "
        "the same server, authentication and database connection, no search")
    say(f"{'served floor':<13} {row('auth/me', floor_served)}           the same, through "
        "trackeep serve in its own process")
    say("(cached: the in-process threaded server, client in the same process; served: "
        "trackeep serve (gevent) in another process, one kept-alive connection)")
    ok = rate >= 5000
    checks.append(("indexing ≥ 5,000 items/s", ok))
    say(f"indexing: {rate:,.0f} items/s: {'PASS' if ok else 'MISS'}")
    say("(~ after a match count: approximate, only the most recent "
        f"{search.RANK_CAP:,} matches ranked; "
        f"approximate answers per shape: {approximate})")
    passed = sum(1 for _, good in checks if good)
    load = os.getloadavg()
    say(f"load:     {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min, at end)")
    say(f"result:   {passed} PASS, {len(checks) - passed} MISS of {len(checks)} checks")
    for name, good in checks:
        if not good:
            say(f"  MISS: {name}")
    say(f"machine:  {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {engine_version(floors)}, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    say(f"command:  {shlex.join([Path(sys.executable).name, *sys.argv])}")
    floors.close()
    state.close()
    if args.keep:
        print(f"kept {folder}" + (f" and database {scratch.name}" if scratch else ""))
    else:
        shutil.rmtree(folder, ignore_errors=True)
        if scratch:
            scratch.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

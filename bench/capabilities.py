"""Latency of the capabilities' hot paths, memory and Redis, each against its floor.

What it measures, for both implementations (memory and Redis), as p50/p95/p99 in µs:

* cache hit and cache miss (``Cache.get``),
* session read (``SessionStore.get`` of a live session) and session write
  (``SessionStore.create``, which writes through to the database),
* rate-limit check (``RateLimiter.hit_sliding``),
* pub/sub delivery, publisher to subscriber (Redis: across two processes),
* leaderboard top 100 of a 100,000-member board (``Leaderboard.top``).

Each operation is compared, in the same run, with a *floor*: the least work that could do the
same job. For Redis that is a raw redis-py call doing the same command(s) on a second client
built with the same options (``decode_responses=True``); for memory, a plain dict behind a
``threading.Lock``. Session writes are write-through to the database, so their floor adds a
raw sqlite3 ``INSERT OR REPLACE`` + ``COMMIT`` into a WAL-mode table of the same shape. The
implementation and its floor run alternately in blocks of 250 calls after a warm-up, so a
burst of background load hits both alike. The output ends with the ratio p99/floor-p99, the
target of the performance targets in docs/architecture.md, PASS/MISS per row and a count.

The implementations are built with the constructors the application uses, without the
fallback wrappers of ``capabilities/fallback.py``. Sessions get a ``DatabaseSessionBackup`` on
a migrated SQLite database in a temporary folder, with one connection held open by the
benchmarking thread, as during a request.

Redis: ``TRACKEEP_BENCH_REDIS_URL`` if set, else a private ``redis-server`` on a spare
loopback port (the tests' ``RedisServer``), stopped at the end. Keys live under ``tkbench:``
and are deleted at the end.

Run from the checkout::

    .venv/bin/python bench/capabilities.py                      # everything, 5000 iterations
    .venv/bin/python bench/capabilities.py --iterations 500 --only cache-hit --only pubsub

Leaderboard queries run a fifth as many iterations (1000 by default).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import itertools
import json
import multiprocessing
import os
import platform
import random
import secrets
import shlex
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PREFIX = "tkbench"
BLOCK = 250  # calls of one side before switching to the other
MAX_WARMUP = 500
RATIO_TARGET = 1.5
BOARD_SIZE = 100_000
TOP_N = 100
SESSION_TTL = 3600
PUBSUB_CHANNEL = "bench:pubsub"  # RedisPubSub adds the prefix: tkbench:bench:pubsub
PUBSUB_FLOOR_CHANNEL = f"{PREFIX}:floor:pubsub"
ACK_TIMEOUT = 1.0  # seconds a publisher waits for a delivery before counting it lost

#: A typical cached value (a small page of search results), about 600 bytes of JSON.
CACHE_VALUE = {
    "total": 5,
    "items": [{"id": i, "title": f"Bookmark {i}", "url": f"https://example.org/articles/{i}",
               "tags": ["python", "redis"], "updated_at": 1_700_000_000 + i} for i in range(5)],
}
SESSION_DATA = {"csrf": "9f0c" * 8, "ua": "Mozilla/5.0 (X11; Linux x86_64) Trackeep/0.1"}
MESSAGE_BODY = "a chat message of a typical length, about eighty characters in all, give or take"


@dataclass(frozen=True)
class Op:
    name: str  # the --only name
    label: str
    redis_target_us: float
    memory_target_us: float
    redis_floor: str
    memory_floor: str
    share: int = 1  # iterations = --iterations // share


OPS = [
    Op("cache-hit", "cache hit", 1000, 50, "GET", "dict get"),
    Op("cache-miss", "cache miss", 5000, 50, "GET (missing key)", "dict get (missing key)"),
    Op("session-read", "session read", 2000, 50, "GET", "dict get"),
    Op("session-write", "session write", 3000, 1000,
       "MULTI SET PX + SADD + PEXPIRE, plus sqlite3 INSERT OR REPLACE + COMMIT",
       "dict set, plus sqlite3 INSERT OR REPLACE + COMMIT"),
    Op("rate-limit", "rate limit", 1000, 50,
       "EVALSHA of RedisRateLimiter's sliding-window Lua script", "dict get + set"),
    Op("pubsub", "pub/sub", 5000, 1000,
       "PUBLISH to a raw redis-py listener in another process", "direct function call"),
    Op("leaderboard", "top-100 of 100k", 10000, 50,
       "ZREVRANGE 0 99 WITHSCORES", "slice 100 of a pre-sorted list", share=5),
]


# ----------------------------------------------------------------------------- measuring


@dataclass
class Result:
    op: Op
    backend: str
    impl_ns: list[int]
    floor_ns: list[int]
    note: str = ""
    checks: list[tuple[str, bool]] = field(default_factory=list)


def percentile(samples: list[int], q: float) -> float:
    """The nearest-rank ``q`` percentile of ``samples`` (ns), in µs."""
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index] / 1000


def alternate(impl: Callable[[int], None], floor: Callable[[int], None], n: int,
              warmup: int) -> None:
    """Call ``impl(seq)`` and ``floor(seq)`` for seq in -warmup..-1 (warm-up), then for
    0..n-1 in blocks of ``BLOCK``, alternating sides and which side goes first.
    Negative sequence numbers are not recorded."""
    for seq in range(-warmup, 0):
        impl(seq)
        floor(seq)
    gc.collect()
    for start in range(0, n, BLOCK):
        for side in (impl, floor) if start // BLOCK % 2 == 0 else (floor, impl):
            for seq in range(start, min(n, start + BLOCK)):
                side(seq)


def timed(fn: Callable[[], object], samples: list[int]) -> Callable[[int], None]:
    """A step that times one call of ``fn`` and records it unless in warm-up."""
    clock = time.perf_counter_ns

    def step(seq: int) -> None:
        started = clock()
        fn()
        elapsed = clock() - started
        if seq >= 0:
            samples.append(elapsed)

    return step


def measure(impl: Callable[[], object], floor: Callable[[], object], n: int,
            warmup: int) -> tuple[list[int], list[int]]:
    impl_ns: list[int] = []
    floor_ns: list[int] = []
    alternate(timed(impl, impl_ns), timed(floor, floor_ns), n, warmup)
    return impl_ns, floor_ns


def open_floor_sqlite(path: str) -> sqlite3.Connection:
    """A raw sqlite3 connection to the benchmark database with the application's pragmas
    (WAL, synchronous=NORMAL) and a table shaped like ``session``."""
    conn = sqlite3.connect(path, timeout=5)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=normal")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_floor_session (id VARCHAR(64) NOT NULL "
                 "PRIMARY KEY, user_id INTEGER NOT NULL, data TEXT NOT NULL, "
                 "last_active REAL NOT NULL, expires_at REAL NOT NULL)")
    conn.execute("CREATE INDEX IF NOT EXISTS bench_floor_session_user_id "
                 "ON bench_floor_session (user_id)")
    conn.execute("CREATE INDEX IF NOT EXISTS bench_floor_session_expires_at "
                 "ON bench_floor_session (expires_at)")
    conn.commit()
    return conn


def session_record(user_id: int) -> tuple[str, float, str]:
    """A new session's id, time and JSON, built as the store builds them."""
    session_id = secrets.token_urlsafe(32)
    now = time.time()
    record = {**SESSION_DATA, "id": session_id, "user_id": user_id, "created_at": now,
              "last_active": now, "ttl": SESSION_TTL}
    return session_id, now, json.dumps(record, separators=(",", ":"))


def floor_sqlite_insert(conn: sqlite3.Connection, session_id: str, user_id: int, text: str,
                        now: float) -> None:
    conn.execute("INSERT OR REPLACE INTO bench_floor_session VALUES (?, ?, ?, ?, ?)",
                 (session_id, user_id, text, now, now + SESSION_TTL))
    conn.commit()


def board_scores() -> dict[str, float]:
    rng = random.Random(42)
    return {f"user:{i}": float(rng.randrange(1_000_000)) for i in range(BOARD_SIZE)}


# -------------------------------------------------------------------------------- memory


class MemoryBench:
    """The memory implementations against a dict behind a lock."""

    backend = "memory"

    def __init__(self, db, floor_sql: sqlite3.Connection):
        from trackeep_desktop.capabilities.durable import DatabaseSessionBackup

        self.db = db
        self.floor_sql = floor_sql
        self.backup = DatabaseSessionBackup(db)
        self.lock = threading.Lock()

    def close(self) -> None:
        pass

    def cache_hit(self, n, warmup):
        from trackeep_desktop.capabilities.cache import MemoryCache

        cache = MemoryCache()
        cache.set("bench:hit", CACHE_VALUE, ttl=3600)
        table = {"bench:hit": CACHE_VALUE}
        return measure(lambda: cache.get("bench:hit"), self._locked(table.get, "bench:hit"),
                       n, warmup)

    def cache_miss(self, n, warmup):
        from trackeep_desktop.capabilities.cache import MemoryCache

        cache = MemoryCache()
        cache.set("bench:hit", CACHE_VALUE, ttl=3600)
        table = {"bench:hit": CACHE_VALUE}
        return measure(lambda: cache.get("bench:missing"),
                       self._locked(table.get, "bench:missing"), n, warmup)

    def session_read(self, n, warmup):
        from trackeep_desktop.capabilities.sessions import MemorySessionStore

        store = MemorySessionStore(backup=self.backup)
        ids = [store.create(user_id=i, ttl=SESSION_TTL, data=SESSION_DATA)["id"]
               for i in range(100)]
        table = {sid: json.dumps({"id": sid, **SESSION_DATA}) for sid in ids}
        impl_ids, floor_ids = itertools.cycle(ids), itertools.cycle(ids)

        def floor():
            with self.lock:
                return table.get(next(floor_ids))

        return measure(lambda: store.get(next(impl_ids)), floor, n, warmup)

    def session_write(self, n, warmup):
        from trackeep_desktop.capabilities.sessions import MemorySessionStore

        store = MemorySessionStore(backup=self.backup)
        users = itertools.cycle(range(1000))
        table: dict[str, str] = {}

        def floor():
            user_id = next(users)
            session_id, now, text = session_record(user_id)
            floor_sqlite_insert(self.floor_sql, session_id, user_id, text, now)
            with self.lock:
                table[session_id] = text

        return measure(lambda: store.create(user_id=next(users), ttl=SESSION_TTL,
                                            data=SESSION_DATA), floor, n, warmup)

    def rate_limit(self, n, warmup):
        from trackeep_desktop.capabilities.ratelimit import MemoryRateLimiter

        limiter = MemoryRateLimiter()
        impl_keys = (f"bench:ip:{i % 1000}" for i in itertools.count())
        floor_keys = (f"bench:ip:{i % 1000}" for i in itertools.count())
        counts: dict[str, int] = {}

        def floor():
            key = next(floor_keys)
            with self.lock:
                counts[key] = counts.get(key, 0) + 1

        return measure(lambda: limiter.hit_sliding(next(impl_keys), limit=100, window=60),
                       floor, n, warmup)

    def pubsub(self, n, warmup):
        from trackeep_desktop.capabilities.pubsub import MemoryPubSub

        clock = time.perf_counter_ns
        impl_ns: list[int] = []
        floor_ns: list[int] = []

        def record(samples):
            def callback(channel, message):
                delivered = clock()
                if message["seq"] >= 0:
                    samples.append(delivered - message["t"])
            return callback

        pubsub = MemoryPubSub()
        pubsub.subscribe(PUBSUB_CHANNEL, record(impl_ns))
        floor_callback = record(floor_ns)

        def send_impl(seq):
            pubsub.publish(PUBSUB_CHANNEL, {"seq": seq, "body": MESSAGE_BODY, "t": clock()})

        def send_floor(seq):
            message = {"seq": seq, "body": MESSAGE_BODY, "t": clock()}
            with self.lock:
                floor_callback(PUBSUB_CHANNEL, message)

        alternate(send_impl, send_floor, n, warmup)
        pubsub.close()
        return impl_ns, floor_ns

    def leaderboard(self, n, warmup):
        from trackeep_desktop.capabilities.leaderboard import MemoryLeaderboard

        board = MemoryLeaderboard()
        scores = board_scores()
        for member, score in scores.items():
            board.set_score("bench:leaderboard", member, score)
        ordered = sorted(((s, m) for m, s in scores.items()), reverse=True)

        def floor():
            with self.lock:
                return ordered[:TOP_N]

        return measure(lambda: board.top("bench:leaderboard", TOP_N), floor, n, warmup)

    def _locked(self, fn, *args):
        def call():
            with self.lock:
                return fn(*args)
        return call


# --------------------------------------------------------------------------------- Redis


class RedisBench:
    """The Redis implementations against raw redis-py calls on a second client."""

    backend = "redis"

    def __init__(self, url: str, db, floor_sql: sqlite3.Connection):
        from trackeep_desktop.capabilities import redis_client_from_url
        from trackeep_desktop.capabilities.durable import DatabaseSessionBackup
        from trackeep_desktop.capabilities.keys import Keyspace

        self.url = url
        self.client = redis_client_from_url(url)  # what the implementations use
        self.raw = redis_client_from_url(url)  # the floor: same options, own connection
        self.keyspace = Keyspace(PREFIX)
        self.floor_sql = floor_sql
        self.backup = DatabaseSessionBackup(db)

    def close(self) -> None:
        """Delete every benchmark key and close both clients."""
        batch = list(self.raw.scan_iter(match=f"{PREFIX}:*", count=1000))
        for start in range(0, len(batch), 1000):
            self.raw.unlink(*batch[start:start + 1000])
        self.client.close()
        self.raw.close()

    def cache_hit(self, n, warmup):
        from trackeep_desktop.capabilities.cache import RedisCache

        cache = RedisCache(client=self.client, keyspace=self.keyspace)
        cache.set("bench:hit", CACHE_VALUE, ttl=3600)
        key = cache.key("bench:hit")
        return measure(lambda: cache.get("bench:hit"), lambda: self.raw.get(key), n, warmup)

    def cache_miss(self, n, warmup):
        from trackeep_desktop.capabilities.cache import RedisCache

        cache = RedisCache(client=self.client, keyspace=self.keyspace)
        key = cache.key("bench:missing")
        return measure(lambda: cache.get("bench:missing"), lambda: self.raw.get(key), n, warmup)

    def session_read(self, n, warmup):
        from trackeep_desktop.capabilities.sessions import RedisSessionStore

        store = RedisSessionStore(client=self.client, keyspace=self.keyspace,
                                  backup=self.backup)
        ids = [store.create(user_id=i, ttl=SESSION_TTL, data=SESSION_DATA)["id"]
               for i in range(100)]
        impl_ids = itertools.cycle(ids)
        floor_keys = itertools.cycle([self.keyspace.key("session", sid) for sid in ids])
        return measure(lambda: store.get(next(impl_ids)), lambda: self.raw.get(next(floor_keys)),
                       n, warmup)

    def session_write(self, n, warmup):
        from trackeep_desktop.capabilities.sessions import RedisSessionStore

        store = RedisSessionStore(client=self.client, keyspace=self.keyspace,
                                  backup=self.backup)
        users = itertools.cycle(range(1000))
        ttl_ms = SESSION_TTL * 1000

        def floor():
            user_id = next(users)
            session_id, now, text = session_record(user_id)
            floor_sqlite_insert(self.floor_sql, session_id, user_id, text, now)
            index = f"{PREFIX}:floor:user:sessions:{user_id}"
            with self.raw.pipeline(transaction=True) as pipe:
                pipe.set(f"{PREFIX}:floor:session:{session_id}", text, px=ttl_ms)
                pipe.sadd(index, session_id)
                pipe.pexpire(index, ttl_ms)
                pipe.execute()

        return measure(lambda: store.create(user_id=next(users), ttl=SESSION_TTL,
                                            data=SESSION_DATA), floor, n, warmup)

    def rate_limit(self, n, warmup):
        from trackeep_desktop.capabilities.ratelimit import SLIDING_WINDOW_LUA, RedisRateLimiter

        limiter = RedisRateLimiter(client=self.client, keyspace=self.keyspace)
        sha = self.raw.script_load(SLIDING_WINDOW_LUA)
        impl_keys = (f"bench:ip:{i % 1000}" for i in itertools.count())
        floor_keys = (f"{PREFIX}:floor:rl:bench:ip:{i}" for i in itertools.cycle(range(1000)))
        members = itertools.count()

        def floor():
            now = repr(time.time())
            return self.raw.evalsha(sha, 1, next(floor_keys), now, "60.0", 100, 1,
                                    f"{now}:floor:{next(members)}")

        return measure(lambda: limiter.hit_sliding(next(impl_keys), limit=100, window=60),
                       floor, n, warmup)

    def pubsub(self, n, warmup):
        from trackeep_desktop.capabilities.pubsub import RedisPubSub

        context = multiprocessing.get_context("spawn")
        conn, child_conn = context.Pipe()
        child = context.Process(target=pubsub_subscriber, args=(self.url, child_conn),
                                name="tkbench-subscriber", daemon=True)
        child.start()
        child_conn.close()
        publisher = RedisPubSub(client=self.client, keyspace=self.keyspace)
        lost = {"impl": 0, "floor": 0}
        try:
            ready = conn.recv() if conn.poll(60) else ("error", "no answer in 60 s")
            if ready != "ready":
                raise RuntimeError(f"the subscriber process failed: {ready[1]}")

            def sender(kind, publish):
                def send(seq):
                    publish({"seq": seq, "body": MESSAGE_BODY, "t": time.perf_counter()})
                    if not wait_ack(conn, kind, seq):
                        lost[kind] += 1
                return send

            send_impl = sender("impl", lambda m: publisher.publish(PUBSUB_CHANNEL, m))
            send_floor = sender("floor", lambda m: self.raw.publish(PUBSUB_FLOOR_CHANNEL,
                                                                    json.dumps(m)))
            alternate(send_impl, send_floor, n, warmup)
            conn.send("stop")
            latencies = conn.recv() if conn.poll(30) else {"impl": [], "floor": []}
        finally:
            publisher.close()
            child.join(10)
            if child.is_alive():
                child.kill()
            conn.close()
        note = ""
        if lost["impl"] or lost["floor"]:
            note = f"lost: {lost['impl']} (impl), {lost['floor']} (floor)"
        return ([round(s * 1e9) for s in latencies["impl"]],
                [round(s * 1e9) for s in latencies["floor"]], note)

    def leaderboard(self, n, warmup):
        from trackeep_desktop.capabilities.leaderboard import RedisLeaderboard

        board = RedisLeaderboard(client=self.client, keyspace=self.keyspace)
        key = board.key("bench:leaderboard")
        items = list(board_scores().items())
        for start in range(0, len(items), 10_000):
            self.raw.zadd(key, dict(items[start:start + 10_000]))
        return measure(lambda: board.top("bench:leaderboard", TOP_N),
                       lambda: self.raw.zrevrange(key, 0, TOP_N - 1, withscores=True), n, warmup)


def wait_ack(conn, kind: str, seq: int) -> bool:
    """Wait until the subscriber reports delivering message ``seq`` of ``kind``."""
    deadline = time.monotonic() + ACK_TIMEOUT
    while (left := deadline - time.monotonic()) > 0 and conn.poll(left):
        if conn.recv() == (kind, seq):
            return True
    return False


def pubsub_subscriber(url: str, conn) -> None:
    """The subscriber process: a RedisPubSub on its own client, and a raw redis-py listener.

    Each records ``time.perf_counter()`` at delivery minus the send time in the message
    (CLOCK_MONOTONIC, shared by every process on Linux) and acknowledges the delivery, so the
    publisher sends one message at a time. On "stop" it sends back every latency (seconds).
    """
    import redis

    from trackeep_desktop.capabilities import redis_client_from_url
    from trackeep_desktop.capabilities.keys import Keyspace
    from trackeep_desktop.capabilities.pubsub import RedisPubSub

    send_lock = threading.Lock()
    latencies: dict[str, list[float]] = {"impl": [], "floor": []}

    def send(obj) -> None:
        with send_lock:
            conn.send(obj)

    def delivered(kind: str, message: dict, now: float) -> None:
        if message["seq"] >= 0:
            latencies[kind].append(now - message["t"])
        send((kind, message["seq"]))

    try:
        pubsub = RedisPubSub(client=redis_client_from_url(url), keyspace=Keyspace(PREFIX))
        pubsub.subscribe(PUBSUB_CHANNEL,
                         lambda channel, message: delivered("impl", message, time.perf_counter()))

        raw = redis.Redis.from_url(url, decode_responses=True)
        listener = raw.pubsub()
        listener.subscribe(PUBSUB_FLOOR_CHANNEL)
        deadline = time.monotonic() + 10
        while (reply := listener.get_message(timeout=1)) is None or reply["type"] != "subscribe":
            if time.monotonic() > deadline:
                raise RuntimeError("Redis did not confirm the raw listener's subscription")

        def listen() -> None:
            for reply in listener.listen():
                if reply["type"] == "message":
                    message = json.loads(reply["data"])
                    delivered("floor", message, time.perf_counter())

        threading.Thread(target=listen, name="raw-listener", daemon=True).start()
        send("ready")
    except Exception:
        send(("error", traceback.format_exc()))
        return
    conn.recv()  # "stop"
    pubsub.close()
    send(latencies)
    conn.close()


# -------------------------------------------------------------------------------- report


def machine_line(redis_version: str) -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import redis

        redis_py = f"redis-py {redis.__version__}"
        if importlib.util.find_spec("hiredis") is not None:
            import hiredis

            redis_py += f" + hiredis {hiredis.__version__}"
    except ImportError:
        redis_py = "redis-py not installed"
    return (f"nproc {len(os.sched_getaffinity(0))}, {model}, Python {platform.python_version()},"
            f" redis-server {redis_version}, {redis_py}, SQLite {sqlite3.sqlite_version}")


def judge(result: Result) -> None:
    """Fill ``result.checks`` with (name, passed) for its targets."""
    p99 = percentile(result.impl_ns, 99)
    if result.backend == "redis":
        ratio = p99 / percentile(result.floor_ns, 99)
        result.checks = [("p99", p99 < result.op.redis_target_us),
                         ("ratio", ratio <= RATIO_TARGET)]
    else:
        result.checks = [("p99", p99 < result.op.memory_target_us)]


def target_text(op: Op, backend: str) -> str:
    if backend == "redis":
        return f"p99 < {op.redis_target_us:,.0f}, ≤ {RATIO_TARGET}x"
    return f"p99 < {op.memory_target_us:,.0f}"


def print_table(results: list[Result]) -> None:
    header = (f"{'backend':<7} {'operation':<15} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7} | "
              f"{'floor p50':>9} {'p95':>7} {'p99':>7} | {'p99/floor':>9} | "
              f"{'target (µs)':<20} | result")
    print(header)
    print("-" * len(header))
    for r in results:
        impl = [percentile(r.impl_ns, q) for q in (50, 95, 99)]
        floor = [percentile(r.floor_ns, q) for q in (50, 95, 99)]
        failed = [name for name, passed in r.checks if not passed]
        verdict = "PASS" if not failed else f"MISS ({', '.join(failed)})"
        if r.note:
            verdict += f"; {r.note}"
        print(f"{r.backend:<7} {r.op.label:<15} {len(r.impl_ns):>5} "
              f"{impl[0]:>7.1f} {impl[1]:>7.1f} {impl[2]:>7.1f} | "
              f"{floor[0]:>9.1f} {floor[1]:>7.1f} {floor[2]:>7.1f} | "
              f"{impl[2] / floor[2]:>8.2f}x | {target_text(r.op, r.backend):<20} | {verdict}")


def print_floors(ops: list[Op], backends: list[str]) -> None:
    print("Floors (what each implementation is compared to):")
    for backend in backends:
        for op in ops:
            floor = op.redis_floor if backend == "redis" else op.memory_floor
            print(f"  {backend:<6} {op.label:<15} {floor}")
    print("  redis floors run on a second redis-py client with the application's options "
          "(decode_responses=True);")
    print("  memory floors are a plain dict behind a threading.Lock.")
    print("  Session writes are write-through to the database (SQLite, WAL, "
          "synchronous=NORMAL), so both")
    print("  session-write floors include a raw sqlite3 INSERT OR REPLACE + COMMIT "
          "into a table of the same shape.")
    print("  Pub/sub latency is send to delivery: Redis publisher and subscriber are separate "
          "processes;")
    print("  memory delivers in the publisher's thread.")
    print()


# ---------------------------------------------------------------------------------- main


def load_test_services():
    """``tests/services.py`` (RedisServer), loaded by path: ``tests`` is not a package."""
    spec = importlib.util.spec_from_file_location("trackeep_test_services",
                                                  ROOT / "tests" / "services.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=5000,
                        help="measured calls per operation (leaderboard: a fifth); default 5000")
    parser.add_argument("--only", action="append", choices=[op.name for op in OPS],
                        metavar="NAME", help="run only this operation (repeatable): "
                        + ", ".join(op.name for op in OPS))
    parser.add_argument("--backend", choices=["both", "memory", "redis"], default="both")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    ops = [op for op in OPS if not args.only or op.name in args.only]
    backends = ["memory", "redis"] if args.backend == "both" else [args.backend]

    from trackeep_desktop.storage import migrations
    from trackeep_desktop.storage.db import bind_database

    workdir = Path(tempfile.mkdtemp(prefix="tkbench-"))
    db_path = workdir / "bench.db"
    db = bind_database(f"sqlite:///{db_path}")
    migrations.upgrade(db)
    db.connect(reuse_if_open=True)  # held open by this thread, as during a request
    floor_sql = open_floor_sqlite(str(db_path))

    server = None
    redis_url = os.environ.get("TRACKEEP_BENCH_REDIS_URL")
    redis_where = f"TRACKEEP_BENCH_REDIS_URL={redis_url}"
    benches: dict[str, MemoryBench | RedisBench] = {}
    try:
        if "redis" in backends and not redis_url:
            services = load_test_services()
            if services.RedisServer.available():
                server = services.RedisServer().start()
                redis_url = server.url
                redis_where = f"private redis-server on 127.0.0.1:{server.port}, no persistence"
            else:
                print("redis-server not found and TRACKEEP_BENCH_REDIS_URL not set: "
                      "measuring memory only\n")
                backends.remove("redis")
        redis_version = "not used"
        if "memory" in backends:
            benches["memory"] = MemoryBench(db, floor_sql)
        if "redis" in backends:
            benches["redis"] = RedisBench(redis_url, db, floor_sql)
            redis_version = benches["redis"].raw.info("server")["redis_version"]

        print("Trackeep capabilities benchmark (bench/capabilities.py)")
        print(f"date:    {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
        print(f"command: {shlex.join(sys.orig_argv)}")
        print(f"machine: {machine_line(redis_version)}")
        if "redis" in backends:
            print(f"redis:   {redis_where}")
        print(f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, at start)")
        print(f"runs:    {args.iterations} measured calls per operation "
              f"(leaderboard {max(1, args.iterations // 5)}) after a warm-up, implementation "
              f"and floor alternating in blocks of {BLOCK}")
        print()
        print_floors(ops, backends)

        results = []
        for backend in backends:
            bench = benches[backend]
            for op in ops:
                n = max(1, args.iterations // op.share)
                warmup = min(MAX_WARMUP, max(20, n // 10))
                print(f"  measuring {backend} {op.label} ...", file=sys.stderr, flush=True)
                impl_ns, floor_ns, *note = getattr(bench, op.name.replace("-", "_"))(n, warmup)
                result = Result(op, backend, impl_ns, floor_ns, note=note[0] if note else "")
                if not impl_ns or not floor_ns:
                    print(f"{backend} {op.label}: no samples ({result.note})")
                    continue
                judge(result)
                results.append(result)

        print("All latencies in µs.")
        print_table(results)
        checks = [passed for r in results for _, passed in r.checks]
        print()
        print(f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, at end)")
        print(f"result:  {checks.count(True)} PASS, {checks.count(False)} MISS of {len(checks)} "
              f"checks (p99 target per row; Redis rows also p99/floor-p99 ≤ {RATIO_TARGET})")
        return 0
    finally:
        for bench in benches.values():
            try:
                bench.close()
            except Exception as exc:  # keep cleaning up: the server and the files
                print(f"could not clean up {bench.backend}: {exc}", file=sys.stderr)
        if server is not None:
            server.stop()
        floor_sql.close()
        db.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

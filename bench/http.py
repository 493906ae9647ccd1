"""The request path through a served instance, beside its floors on the same server.

Issue 17's benchmark. Each instance is ``trackeep serve``'s own server code
(:func:`trackeep_desktop.web.server.serve`, gevent by default) in a process of its own, on a
copy of a seeded SQLite database, with two routes added for the floors:

* ``bare``: ``/_floor/bare``, a bare Flask route answering ``{"ok": true}``;
* ``bytes``: ``/_floor/bytes/<case>``, a bare route answering the very bytes that case's real
  route answered (captured once), so a page's ratio to it is the cost of the page's work
  and nothing else (the same body on the same socket through the same server).

The data: one user's items as bench/reads.py makes them (``--sizes``, 1,000 and 100,000 by
default: 40% bookmarks, 25% tasks, 25% notes, 10% files, 40 tags, 5% in the trash), the search
index and the derived counts built by their rebuild functions. Requests are authenticated by
a session token from ``POST /auth/login`` (embedded: in memory; Redis: in Redis, read by the
request gate with the rate limit in one round trip). Rate limits are lifted (10^9) so the
load is not refused by them; the load shedder keeps its defaults (32 in flight, 1.5 s in
line), since fairness under saturation is part of what is measured.

The load generator is ``wrk`` (Debian's package, C, keep-alive connections, ``--timeout 2s``
so a request unanswered after 2 s counts as an error), with a Lua script that prints the
percentiles as JSON. Each case runs ``--duration`` seconds at each of ``--connections`` (1,
16, 64); wrk shares the machine's cores with the server, the same way for every contender.

Cases: the list pages (``bookmarks``, ``tasks``, ``notes``, ``files``: page 1 of 50 in the
default sort), ``bookmark read``, ``auth/me``, ``dashboard``, ``tags``, ``trash`` (page 1),
``search cached`` (one query again and again) and ``search uncached`` (a new query, or a new
page of one, every request: word pairs and triples with offsets), and ``write`` (``POST
/bookmarks`` with a tag, a new URL each time), each embedded and with Redis at the smallest
size. Then:

* ``waitress``: the same cases and floors through ``--server waitress``, embedded;
* growth: every case at each larger size, embedded, at 1 connection (p50 against p50);
* write → event: a Socket.IO client on a real WebSocket and ``POST /bookmarks`` one at a
  time on a keep-alive connection: the time from sending the POST to the change event
  arriving (``--events`` times), beside the POST's own answer and a Socket.IO round trip
  (``ping``: the floor of any event).

Targets (issue 17), checked in the same run: list page ≥ 0.5x its same-bytes floor (req/s at
16 connections, embedded); auth/me with Redis ≥ 0.7x embedded (req/s at 16); every case at the
largest size within 1.5x of the smallest (p50 at 1 connection); at 64 connections p99 ≤ 10x
p50 and no request unanswered after 2 s; write → event p50 < 8 ms on one instance.

Redis: ``--redis-url``, else a private ``redis-server`` on a spare loopback port (its binary
must be installed; without one the Redis rows are skipped and say so).

Run from the checkout (about 10 minutes with the defaults)::

    apt install wrk                                  # once
    .venv/bin/python bench/http.py
    .venv/bin/python bench/http.py --sizes 1000 --duration 2 --connections 1,16
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from itertools import combinations
from pathlib import Path

if __name__ == "http":
    # Run as a script, a file's folder comes first on sys.path, so in every script of bench/
    # (and in this one's own process) `import http` finds this file, named as issue 17 names
    # it, instead of the standard library's package that requests, werkzeug and urllib
    # import: hand the name over to that package (the import system returns what
    # sys.modules holds once the module ran).
    import importlib.machinery
    import importlib.util
    import sysconfig

    _spec = importlib.machinery.PathFinder.find_spec("http", [sysconfig.get_paths()["stdlib"]])
    assert _spec is not None
    assert _spec.loader is not None
    _stdlib_http = importlib.util.module_from_spec(_spec)
    sys.modules["http"] = _stdlib_http
    _spec.loader.exec_module(_stdlib_http)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

OWNER = {"email": "bench@example.com", "username": "bench", "password": "bench-pass-123",
         "fullName": "Bench"}
LIFTED = {"API_RATE_LIMIT": 10**9, "UI_RATE_LIMIT": 10**9, "AUTH_RATE_LIMIT": 10**9}
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"]

#: name -> path of the GET cases (``{bookmark}``: a live bookmark's id).
PAGES = {
    "bookmarks": "/api/v1/bookmarks",
    "tasks": "/api/v1/tasks",
    "notes": "/api/v1/notes",
    "files": "/api/v1/files",
    "bookmark read": "/api/v1/bookmarks/{bookmark}",
    "auth/me": "/api/v1/auth/me",
    "dashboard": "/api/v1/dashboard/stats",
    "tags": "/api/v1/tags",
    "trash": "/api/v1/trash",
    "search cached": "/api/v1/search?q=alpha%20bravo",
}
SCRIPTED = ("search uncached", "write")
FLOORS = ("bare", "bytes")  # "bytes" is the bookmarks page's bytes; per-case ones at c16

#: The percentiles and errors of a wrk run as one JSON line (latencies in microseconds).
DONE_LUA = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50":%d,"p95":%d,"p99":%d,"max":%d,' ..
    '"status":%d,"timeout":%d,"connect":%d,"read":%d,"write":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.status, e.timeout, e.connect, e.read, e.write))
end
"""

#: Each wrk thread gets a number, so generated URLs and queries differ between threads.
THREADS_LUA = """
local made = 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
end
local n = 0
"""


def write_lua(run: str) -> str:
    return THREADS_LUA + f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  n = n + 1
  local body = '{{"url":"https://bench.example/{run}/' .. tid .. '/' .. n ..
               '","title":"bench","tags":["bench"]}}'
  return wrk.format(nil, nil, nil, body)
end
""" + DONE_LUA


def uncached_lua(run_number: int) -> str:
    """A new query (or a new page of one) every request; ``limit`` differs per run, so no
    run meets an answer another run cached."""
    queries = [" ".join(c) for size in (2, 3) for c in combinations(WORDS, size)]
    table = ",".join(f'"{q.replace(" ", "%20")}"' for q in queries)
    limit = 10 + run_number % 90
    return THREADS_LUA + f"""
local queries = {{{table}}}
function request()
  n = n + 1
  local k = (tid - 1) * 100003 + n
  local q = queries[(k % #queries) + 1]
  local offset = (math.floor(k / #queries) % 20) * 5
  return wrk.format("GET", "/api/v1/search?q=" .. q .. "&limit={limit}&offset=" .. offset)
end
""" + DONE_LUA


# ------------------------------------------------------------------------------ the server


def child(overrides_json: str, floor_dir: str, server: str) -> None:
    """The served instance: trackeep serve's code with the two floor routes."""
    if server == "gevent":
        from gevent import monkey

        monkey.patch_all()
    sys.path.insert(0, str(ROOT))
    from flask import Response, jsonify

    from trackeep_desktop.app import create_app
    from trackeep_desktop.web.server import serve

    overrides = json.loads(overrides_json)
    overrides.update(SERVER=server, ASYNC_MODE="gevent" if server == "gevent" else "threading")
    app = create_app(overrides)
    bodies: dict[str, bytes] = {}

    def bare():
        return jsonify(ok=True)

    def same_bytes(name: str):
        body = bodies.get(name)
        if body is None:
            body = bodies[name] = (Path(floor_dir) / f"{name}.json").read_bytes()
        return Response(body, mimetype="application/json")

    app.add_url_rule("/_floor/bare", "floor_bare", bare)
    app.add_url_rule("/_floor/bytes/<name>", "floor_bytes", same_bytes)
    serve(overrides, app)


class Instance:
    """One served instance on its own copy of a seeded database."""

    def __init__(self, seeded: Path, workdir: Path, server: str, redis_url: str | None,
                 label: str):
        import requests

        self.folder = workdir / label.replace(" ", "-").replace("/", "-")
        shutil.copytree(seeded, self.folder)
        self.floor_dir = self.folder / "floors"
        self.floor_dir.mkdir()
        overrides = {"DATA_DIR": str(self.folder / "data"),
                     "DATABASE_URL": f"sqlite:///{self.folder / 'trackeep.db'}",
                     "PORT": 0, "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING",
                     "FETCH_METADATA": False, **LIFTED}
        if redis_url:
            overrides.update(REDIS_URL=redis_url,
                             KEY_PREFIX=f"bench{os.getpid()}{floor_name(label)}")
        self.log = open(self.folder / "serve.log", "w+")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", json.dumps(overrides), str(self.floor_dir),
             server], stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.url = self._wait_for_url()
        self.session = requests.Session()
        login = self.session.post(f"{self.url}/api/v1/auth/login", timeout=30,
                                  json={"email": OWNER["username"],
                                        "password": OWNER["password"]})
        login.raise_for_status()
        self.token = login.json()["token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def _wait_for_url(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.log.seek(0)
            found = re.search(r"Trackeep is running at (http://\S+?)/?\s", self.log.read())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.log.seek(0)
        raise RuntimeError(f"the instance did not start:\n{self.log.read()}")

    def capture_floor(self, name: str, path: str) -> int:
        """Keep the bytes ``path`` answers as the ``name`` floor; returns their length."""
        answer = self.session.get(f"{self.url}{path}", timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
        (self.floor_dir / f"{floor_name(name)}.json").write_bytes(answer.content)
        return len(answer.content)

    def stop(self) -> None:
        self.session.close()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def floor_name(case: str) -> str:
    return re.sub(r"[^a-z]+", "_", case)


# ------------------------------------------------------------------------------- the data


def seed(size: int, folder: Path, seed_value: int) -> dict:
    """A migrated SQLite database in ``folder`` with the user and ``size`` items."""
    from reads import populate  # bench/reads.py, beside this file

    from trackeep_desktop import items, search
    from trackeep_desktop.app import create_app
    from trackeep_desktop.storage import changes
    from trackeep_desktop.storage.db import database
    from trackeep_desktop.storage.models import User

    folder.mkdir(parents=True)
    app = create_app({"DATA_DIR": str(folder / "data"),
                      "DATABASE_URL": f"sqlite:///{folder / 'trackeep.db'}",
                      "LOG_LEVEL": "WARNING", "FETCH_METADATA": False, **LIFTED})
    state = app.extensions["trackeep"]
    try:
        answer = app.test_client().post("/api/v1/auth/register", json=OWNER)
        if answer.status_code != 201:
            raise RuntimeError(f"register: {answer.status_code} {answer.data[:200]!r}")
        database.connect(reuse_if_open=True)
        user_id = User.get(User.username == OWNER["username"]).id
        started = time.perf_counter()
        live = populate(user_id, size, seed_value, time.time())
        with changes.use_pipeline(state.pipeline):
            search.rebuild_index(store=state.blob_store)
            items.rebuild_counts()
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"bookmark": live["bookmark"][len(live["bookmark"]) // 2],
                "seconds": time.perf_counter() - started}
    finally:
        state.close()


# --------------------------------------------------------------------------------- running


class Runner:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.runs = 0
        self.results: dict[tuple, dict] = {}

    def wrk(self, instance: Instance, path: str | None, connections: int,
            script: str = DONE_LUA) -> dict:
        self.runs += 1
        script_path = self.workdir / f"run{self.runs}.lua"
        script_path.write_text(script)
        threads = min(connections, self.args.wrk_threads)
        command = ["wrk", "-t", str(threads), "-c", str(connections),
                   "-d", f"{self.args.duration}s", "--timeout", "2s", "-s", str(script_path),
                   "-H", f"Authorization: Bearer {instance.token}",
                   f"{instance.url}{path or '/'}"]
        out = subprocess.run(command, capture_output=True, text=True, timeout=600)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
        if line is None:
            raise RuntimeError(f"wrk said:\n{out.stdout}\n{out.stderr}")
        stats = json.loads(line)
        stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
        stats["errors"] = (stats["status"] + stats["timeout"] + stats["connect"]
                           + stats["read"] + stats["write"])
        return stats

    def case(self, instance: Instance, name: str, connections: int, ids: dict) -> dict:
        if name == "write":
            return self.wrk(instance, "/api/v1/bookmarks", connections,
                            write_lua(f"{os.getpid()}-{self.runs}"))
        if name == "search uncached":
            return self.wrk(instance, "/", connections, uncached_lua(self.runs))
        if name == "bare":
            return self.wrk(instance, "/_floor/bare", connections)
        if name == "bytes":
            return self.wrk(instance, "/_floor/bytes/bookmarks", connections)
        if name.startswith("bytes:"):
            return self.wrk(instance, f"/_floor/bytes/{floor_name(name[6:])}", connections)
        return self.wrk(instance, PAGES[name].format(**ids), connections)

    def sweep(self, instance: Instance, key: tuple, names: list[str],
              connections: list[int], ids: dict) -> None:
        """Every case at every connection count (writes last: they grow the data)."""
        for c in connections:
            for name in names:
                if name == "write":
                    continue
                self.record((*key, name, c), self.case(instance, name, c, ids))
        if "write" in names:
            for c in connections:
                self.record((*key, "write", c), self.case(instance, "write", c, ids))

    def record(self, key: tuple, stats: dict) -> None:
        self.results[key] = stats
        label = " ".join(str(k) for k in key)
        print(f"  {label:<44} {stats['rps']:9.1f} req/s  p50 {stats['p50'] / 1000:8.2f} ms  "
              f"p99 {stats['p99'] / 1000:8.2f} ms  errors {stats['errors']}", flush=True)


def write_to_event(instance: Instance, count: int) -> dict[str, list[float]]:
    """POST /bookmarks one at a time; ms from sending each to its change event's arrival."""
    import socketio

    from trackeep_desktop.realtime.namespaces import EVENTS_NAMESPACE

    arrived: dict[int, float] = {}
    seen = threading.Condition()

    def on_change(data):
        with seen:
            arrived[data["id"]] = time.perf_counter()
            seen.notify_all()

    client = socketio.Client(reconnection=False)
    client.on("change", on_change, namespace=EVENTS_NAMESPACE)
    client.connect(instance.url, headers={"Authorization": f"Bearer {instance.token}"},
                   transports=["websocket"], namespaces=["/", EVENTS_NAMESPACE],
                   wait_timeout=10)
    samples: dict[str, list[float]] = {"write -> event": [], "write answered": [],
                                       "socket.io ping": []}
    try:
        for i in range(count + 10):
            started = time.perf_counter()
            client.call("ping", {"n": i}, timeout=5)
            ping = time.perf_counter() - started
            started = time.perf_counter()
            answer = instance.session.post(f"{instance.url}/api/v1/bookmarks", timeout=10,
                                           json={"url": f"https://event.example/{i}"})
            answered = time.perf_counter()
            answer.raise_for_status()
            item_id = answer.json()["id"]
            with seen:
                if not seen.wait_for(lambda item_id=item_id: item_id in arrived, timeout=5):
                    raise RuntimeError(f"no change event for bookmark {item_id}")
            if i >= 10:  # a warm-up first
                samples["write -> event"].append((arrived[item_id] - started) * 1000)
                samples["write answered"].append((answered - started) * 1000)
                samples["socket.io ping"].append(ping * 1000)
    finally:
        client.disconnect()
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir: Path) -> tuple[subprocess.Popen | None, str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


# --------------------------------------------------------------------------------- report


def table(results: dict, key: tuple, names: list[str], connections: list[int]) -> None:
    head = f"{'case':<16}" + "".join(
        f"{f'c{c}: req/s  p50  p99 ms':>29}" for c in connections) + "  errors"
    print(head)
    for name in names:
        cells, errors = "", 0
        for c in connections:
            stats = results.get((*key, name, c))
            if stats is None:
                cells += f"{'-':>29}"
                continue
            errors += stats["errors"]
            cells += (f"{stats['rps']:>11.1f} {stats['p50'] / 1000:>7.2f} "
                      f"{stats['p99'] / 1000:>8.2f}  ")
        print(f"{name:<16}{cells}{errors:>7}")


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000",
                        help="items of the one user, comma-separated (default 1000,100000)")
    parser.add_argument("--duration", type=int, default=3,
                        help="seconds of each wrk run (default 3)")
    parser.add_argument("--connections", default="1,16,64",
                        help="connection counts, comma-separated (default 1,16,64)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="most wrk threads (2)")
    parser.add_argument("--events", type=int, default=200,
                        help="writes timed to their change event (default 200)")
    parser.add_argument("--redis-url", help="a Redis to use (default: a private redis-server)")
    parser.add_argument("--no-waitress", action="store_true", help="skip the waitress rows")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/http.py needs wrk: apt install wrk", file=sys.stderr)
        return 2
    sizes = sorted(int(s) for s in args.sizes.split(","))
    connections = [int(c) for c in args.connections.split(",")]
    names = [*PAGES, *SCRIPTED]
    small = sizes[0]
    workdir = Path(tempfile.mkdtemp(prefix="trackeep-bench-http-"))
    redis_proc, redis_url = None, args.redis_url
    runner = Runner(args, workdir)
    results = runner.results
    events: dict[str, dict[str, list[float]]] = {}
    byte_sizes: dict[str, int] = {}
    try:
        if redis_url is None:
            redis_proc, redis_url = start_redis(workdir)
            if redis_url is None:
                print("no redis-server: the Redis rows are skipped (install redis-server or "
                      "give --redis-url)")
        seeded: dict[int, dict] = {}
        for size in sizes:
            seeded[size] = seed(size, workdir / f"seed{size}", args.seed)
            print(f"{size:>7,} items seeded, index and counts built in "
                  f"{seeded[size]['seconds']:.1f} s", flush=True)
        modes = [("embedded", None)] + ([("redis", redis_url)] if redis_url else [])
        servers = ["gevent"] + ([] if args.no_waitress else ["waitress"])
        for server in servers:
            for mode, url in modes:
                if server == "waitress" and mode == "redis":
                    continue
                label = f"{small} {mode} {server}"
                instance = Instance(workdir / f"seed{small}", workdir, server, url, label)
                try:
                    ids = {"bookmark": seeded[small]["bookmark"]}
                    for name, path in PAGES.items():
                        byte_sizes[name] = instance.capture_floor(name, path.format(**ids))
                    instance.capture_floor("bookmarks", PAGES["bookmarks"])
                    print(f"{label}: {instance.url}", flush=True)
                    key = (small, mode, server)
                    runner.sweep(instance, key, [*FLOORS, *names], connections, ids)
                    if 16 in connections and server == "gevent" and mode == "embedded":
                        for name in PAGES:
                            runner.record((*key, f"bytes:{name}", 16),
                                          runner.case(instance, f"bytes:{name}", 16, ids))
                    if server == "gevent":
                        events[mode] = write_to_event(instance, args.events)
                finally:
                    instance.stop()
        for size in sizes[1:]:
            label = f"{size} embedded gevent"
            instance = Instance(workdir / f"seed{size}", workdir, "gevent", None, label)
            try:
                print(f"{label}: {instance.url}", flush=True)
                runner.sweep(instance, (size, "embedded", "gevent"), names, [1],
                             {"bookmark": seeded[size]["bookmark"]})
            finally:
                instance.stop()
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    checks: list[tuple[str, bool, str]] = []
    print()
    for mode, _ in modes:
        for server in servers:
            key = (small, mode, server)
            if any(k[:3] == key for k in results):
                print(f"{small:,} items, {mode}, {server} (wrk, {args.duration:g} s per cell)")
                table(results, key, [*FLOORS, *names], connections)
                print()
    emb = (small, "embedded", "gevent")
    if 16 in connections:
        print("same-bytes floors at 16 connections, embedded, gevent (req/s):")
        print(f"{'case':<16}{'bytes':>8}{'page':>10}{'floor':>10}{'ratio':>8}")
        for name in PAGES:
            page = results[(*emb, name, 16)]["rps"]
            floor = results[(*emb, f"bytes:{name}", 16)]["rps"]
            print(f"{name:<16}{byte_sizes[name]:>8}{page:>10.1f}{floor:>10.1f}"
                  f"{page / floor:>8.2f}")
        page = results[(*emb, "bookmarks", 16)]["rps"]
        floor = results[(*emb, "bytes:bookmarks", 16)]["rps"]
        checks.append(("list page >= 0.5x its same-bytes floor (bookmarks, c16, embedded)",
                       page / floor >= 0.5, f"{page / floor:.2f}x"))
        bare = results[(*emb, "bare", 16)]["rps"]
        print(f"bookmarks page / bare route: {page / bare:.2f}x")
        if redis_url:
            me_redis = results[(small, "redis", "gevent", "auth/me", 16)]["rps"]
            me_emb = results[(*emb, "auth/me", 16)]["rps"]
            checks.append(("auth/me with Redis >= 0.7x embedded (c16)",
                           me_redis / me_emb >= 0.7, f"{me_redis / me_emb:.2f}x"))
        if not args.no_waitress:
            wait = results[(small, "embedded", "waitress", "bookmarks", 16)]["rps"]
            print(f"bookmarks page, waitress / gevent at c16: {wait / page:.2f}x")
        print()
    if len(sizes) > 1 and 1 in connections:
        large = sizes[-1]
        print(f"growth, embedded, gevent, 1 connection: p50 ms at {small:,} and {large:,}")
        for name in names:
            a = results[(*emb, name, 1)]["p50"]
            b = results[(large, "embedded", "gevent", name, 1)]["p50"]
            ok = b / a <= 1.5
            checks.append((f"{name} p50 at {large:,} within 1.5x of {small:,}", ok,
                           f"{b / a:.2f}x"))
            print(f"{name:<16}{a / 1000:>9.2f}{b / 1000:>9.2f}{b / a:>8.2f}x  "
                  f"{'PASS' if ok else 'MISS'}")
        print()
    if 64 in connections:
        for mode, _ in modes:
            for name in [*FLOORS, *names]:
                stats = results[(small, mode, "gevent", name, 64)]
                ratio = stats["p99"] / max(stats["p50"], 1)
                ok = ratio <= 10 and stats["timeout"] == 0
                checks.append((f"{name} at c64 {mode}: p99 <= 10x p50, none past 2 s", ok,
                               f"p99/p50 {ratio:.1f}, timeouts {stats['timeout']}, "
                               f"503s and other errors {stats['errors'] - stats['timeout']}"))
    for mode, samples in events.items():
        print(f"write -> event, one instance, {mode} ({args.events} writes), ms:")
        for name, values in samples.items():
            print(f"  {name:<16} p50 {pct(values, 50):7.2f}  p95 {pct(values, 95):7.2f}  "
                  f"p99 {pct(values, 99):7.2f}")
        p50 = pct(samples["write -> event"], 50)
        checks.append((f"write -> event p50 < 8 ms ({mode})", p50 < 8, f"{p50:.2f} ms"))
    print()
    passed = sum(1 for _, ok, _ in checks if ok)
    for name, ok, figure in checks:
        print(f"{'PASS' if ok else 'MISS'}  {name}: {figure}")
    load = os.getloadavg()
    print(f"load:     {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min, at end)")
    print(f"result:   {passed} PASS, {len(checks) - passed} MISS of {len(checks)} checks")
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    print(f"machine:  {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, SQLite, "
          f"{(wrk_version.stdout or wrk_version.stderr).split(' Copyright')[0].strip()}, "
          f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"command:  {shlex.join([Path(sys.executable).name, *sys.argv])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

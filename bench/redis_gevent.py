"""One Redis round trip through redis-py, without gevent and under gevent's monkey-patching.

``trackeep serve`` runs under gevent (``monkey.patch_all()``); redis-py there was measured at
230-255 µs a round trip against 86-146 µs in a plain process (issue 17). The cause: before
each command redis-py checks the connection it takes from the pool for stray data with a
zero-timeout ``poll`` of the socket, and gevent's patched ``poll`` goes through the hub (a
watcher, a switch) even when it need not wait. Trackeep's client
(:func:`trackeep_desktop.capabilities.redis_client_from_url`) does that check with the
operating system's ``poll``.

Each mode runs in its own process (monkey-patching is for the whole process), against the
same ``redis-server``, one GET of a short key at a time after a warm-up:

* ``plain``: no gevent, Trackeep's client (the floor);
* ``gevent, redis-py's check``: patched, a client with redis-py's own connection class;
* ``gevent, Trackeep's client``: patched, Trackeep's client;
* ``gevent, 16 greenlets``: Trackeep's client shared by 16 greenlets, as under load: each
  greenlet waits for the others' round trips too, so its percentiles are about 16 times
  one round trip; the column ``wall/op`` (the run's time over its round trips) is the cost
  of one.

Redis: ``TRACKEEP_BENCH_REDIS_URL``, else a private ``redis-server`` on a spare loopback port.

Run from the checkout::

    .venv/bin/python bench/redis_gevent.py                  # 20,000 round trips per mode
    .venv/bin/python bench/redis_gevent.py --count 2000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODES = {
    "plain": "no gevent, Trackeep's client (floor)",
    "gevent-redis-py": "gevent, redis-py's check",
    "gevent-trackeep": "gevent, Trackeep's client",
    "gevent-16": "gevent, 16 greenlets, Trackeep's client",
}


def child(mode: str, url: str, count: int) -> None:
    """Measure one mode in this process; print the latencies (µs) as JSON."""
    if mode.startswith("gevent"):
        from gevent import monkey

        monkey.patch_all()
    sys.path.insert(0, str(ROOT))
    import redis

    from trackeep_desktop.capabilities import redis_client_from_url

    client = redis_client_from_url(url)
    if mode == "gevent-redis-py":
        pool = client.connection_pool
        pool.connection_class = pool.connection_class.__mro__[2]  # without _QuietReadCheck
        assert pool.connection_class.__module__.startswith("redis"), pool.connection_class
    client.set("tkbench:gevent", "x")
    for _ in range(500):
        client.get("tkbench:gevent")
    samples: list[float] = []

    def run(n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            client.get("tkbench:gevent")
            samples.append((time.perf_counter() - started) * 1e6)

    started = time.perf_counter()
    if mode == "gevent-16":
        import gevent

        gevent.joinall([gevent.spawn(run, count // 16) for _ in range(16)])
    else:
        run(count)
    wall = (time.perf_counter() - started) * 1e6 / len(samples)
    print(json.dumps({"class": type(client.connection_pool.get_connection()).__name__,
                      "samples": samples, "wall": wall}))
    assert isinstance(client, redis.Redis)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="round trips per mode")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.url, args.count)
        return 0

    print("Trackeep: redis-py round trips with and without gevent (bench/redis_gevent.py)")
    print(f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, at start)")
    server = None
    url = os.environ.get("TRACKEEP_BENCH_REDIS_URL")
    workdir = tempfile.mkdtemp(prefix="trackeep-bench-redis-")
    try:
        if not url:
            binary = shutil.which("redis-server")
            if binary is None:
                print("no redis-server: install it or set TRACKEEP_BENCH_REDIS_URL")
                return 2
            port = free_port()
            server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", workdir],
                                      stdout=subprocess.DEVNULL)
            url = f"redis://127.0.0.1:{port}/0"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
        print(f"redis:   {url}; {args.count} GETs per mode, one process per mode")
        print(f"{'mode':<42} {'p50 µs':>8} {'p95 µs':>8} {'p99 µs':>8} {'wall/op':>8} "
              f"{'x floor':>8}")
        floor = None
        for _ in range(3):  # three rounds, interleaved, so a burst of load hits every mode
            for mode, label in MODES.items():
                out = subprocess.run([sys.executable, __file__, "--child", mode, "--url", url,
                                      "--count", str(args.count)],
                                     capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                samples = result["samples"]
                p50, wall = percentile(samples, 50), result["wall"]
                floor = wall if mode == "plain" else floor
                print(f"{label:<42} {p50:>8.1f} {percentile(samples, 95):>8.1f} "
                      f"{percentile(samples, 99):>8.1f} {wall:>8.1f} {wall / floor:>8.2f}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

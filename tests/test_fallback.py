"""Redis dies in the middle of a run and comes back: nothing fails, nothing is lost."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from trackeep_desktop.capabilities.fallback import CapabilityUnavailable

from clocks import wait_until
from services import RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture
def own_redis():
    """A redis-server this test may kill and restart (on the same port)."""
    if not RedisServer.available():
        from conftest import unavailable

        unavailable("no redis-server binary to start")
    server = RedisServer().start()
    yield server
    server.stop()


def test_redis_outage_and_recovery(make_app, own_redis, caplog):
    app = make_app(REDIS_URL=own_redis.url)
    state = app.extensions["trackeep"]
    caps = state.capabilities
    client = app.test_client()
    received = []
    caps.pubsub.subscribe("notifications:*", lambda channel, msg: received.append(msg))

    with app.app_context():
        kept = caps.sessions.create(user_id=1, ttl=3600, data={"ip": "127.0.0.1"})
        revoked = caps.sessions.create(user_id=1, ttl=3600)
        computed = []

        def run_requests(n):
            """One 'request': a session read, a cached read, a limit check, a count, a
            message; plus a real HTTP request."""
            for i in range(n):
                assert caps.sessions.touch(kept["id"]) is not None
                value = caps.cache.get_or_set("answer", lambda: computed.append(1) or 42, 60)
                assert value == 42
                assert caps.rate_limiter.hit_sliding("127.0.0.1:general", 10_000, 60).allowed
                caps.counters.increment("views:bookmark:1")
                caps.pubsub.publish("notifications:1", {"i": i})
                assert client.get("/health").status_code == 200

        caplog.set_level(logging.INFO, logger="trackeep")
        run_requests(20)
        assert caps.monitor.up
        assert wait_until(lambda: len(received) == 20)

        # The periodic flush has run once (Redis here keeps nothing on disk: what a restart
        # can lose is what was counted since the last flush; see the README).
        caps.counters.flush()
        own_redis.stop()  # Redis dies in the middle of the run
        run_requests(30)
        assert not caps.monitor.up

        health = client.get("/health").get_json()
        assert health["status"] == "degraded"
        assert health["redis"]["state"] == "down"
        assert {c["state"] for c in health["capabilities"].values()} == {"fallback"}
        with pytest.raises(CapabilityUnavailable):
            caps.leaderboard.top("challenge:1:leaderboard", 10)
        assert client.get("/metrics").get_data(as_text=True).count(
            "trackeep_capability_fallback{") == 6

        # Sessions: the logged-in user stays logged in; a revocation during the outage holds.
        assert caps.sessions.get(kept["id"])["user_id"] == 1
        assert caps.sessions.delete(revoked["id"])
        created_during_outage = caps.sessions.create(user_id=2, ttl=3600)
        assert caps.sessions.get(created_during_outage["id"]) is not None
        assert wait_until(lambda: len(received) == 50), "local pub/sub stopped delivering"
        assert caps.counters.get("views:bookmark:1") == 50

        switches = [r for r in caplog.records if "switches to its fallback" in r.getMessage()]
        assert sorted(r.getMessage().split("): ", 1)[1].split()[0] for r in switches) == sorted(
            ["sessions", "cache", "rate_limiter", "counters", "pubsub", "leaderboard"])

        own_redis.start()  # the same address comes back, empty (and the fixture stops it)
        assert wait_until(lambda: caps.monitor.up, timeout=15), "no recovery after restart"
        recoveries = [r for r in caplog.records if "Redis recovered" in r.getMessage()]
        assert len(recoveries) == 1

        run_requests(10)
        assert caps.counters.get("views:bookmark:1") == 60  # nothing lost
        assert caps.sessions.get(revoked["id"]) is None  # revoked stays revoked
        assert caps.sessions.get(kept["id"]) is not None  # restored from the database
        assert caps.sessions.get(created_during_outage["id"]) is not None
        assert wait_until(lambda: len(received) == 60), "pub/sub did not resume over Redis"
        assert client.get("/health").get_json()["status"] == "ok"
        caps.leaderboard.set_score("challenge:1:leaderboard", "42", 10)
        assert caps.leaderboard.top("challenge:1:leaderboard", 1) == [("42", 10.0)]


def test_redis_required_refuses_to_start_without_redis(make_app):
    from trackeep_desktop.storage.db import ConfigurationError

    from services import free_port

    with pytest.raises(ConfigurationError, match="REDIS_REQUIRED"):
        make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", REDIS_REQUIRED=True)


def test_starting_with_redis_down_runs_on_fallbacks_then_recovers(make_app):
    from services import free_port

    port = free_port()
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0")
    caps = app.extensions["trackeep"].capabilities
    with app.app_context():
        session = caps.sessions.create(user_id=7, ttl=600)
        assert caps.sessions.get(session["id"]) is not None
        assert app.test_client().get("/health").get_json()["status"] == "degraded"
        server = RedisServer(port).start()
        try:
            assert wait_until(lambda: caps.monitor.up, timeout=15)
            assert caps.sessions.get(session["id"]) is not None
        finally:
            server.stop()


def test_concurrent_requests_during_an_outage_all_succeed(make_app, own_redis):
    app = make_app(REDIS_URL=own_redis.url)
    caps = app.extensions["trackeep"].capabilities
    errors = []
    stop = threading.Event()
    rounds = [0] * 4  # rounds each worker finished; read without a lock, only compared

    def worker(n):
        with app.app_context():
            while not stop.is_set():
                try:
                    caps.counters.increment(f"views:task:{n}")
                    caps.cache.get_or_set(f"k{n}", lambda: n, 60)
                    caps.rate_limiter.hit_sliding(f"ip{n}:general", 1_000_000, 60)
                except Exception as exc:  # any failure is a bug
                    errors.append(exc)
                    return
                rounds[n] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert caps.monitor.up
    assert caps.monitor.outages == 0
    assert all(rounds), rounds
    own_redis.stop()
    assert wait_until(lambda: not caps.monitor.up, timeout=5), "the outage was not noticed"
    at_outage = list(rounds)
    time.sleep(0.5)
    # The outage happened while the workers ran, and they kept working through it.
    assert not caps.monitor.up
    assert caps.monitor.outages == 1
    health = app.test_client().get("/health").get_json()
    assert health["status"] == "degraded"
    assert health["redis"]["state"] == "down"
    stop.set()
    for t in threads:
        t.join(10)
    assert errors == []
    assert all(after > before for after, before in zip(rounds, at_outage, strict=True)), (
        at_outage, rounds)


def test_a_redis_that_stalls_and_returns_with_its_data_serves_no_stale_session(
        make_app, own_redis):
    """Redis freezes (SIGSTOP) instead of restarting: its old copies must not win after."""
    import os
    import signal

    app = make_app(REDIS_URL=own_redis.url)
    caps = app.extensions["trackeep"].capabilities
    with app.app_context():
        changed = caps.sessions.create(user_id=1, ttl=3600, data={"theme": "light"})
        revoked = caps.sessions.create(user_id=1, ttl=3600)
        os.kill(own_redis.proc.pid, signal.SIGSTOP)
        try:
            caps.sessions.touch(changed["id"], {"theme": "dark"})  # times out, then falls back
            assert not caps.monitor.up
            assert caps.sessions.delete(revoked["id"])
        finally:
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        assert wait_until(lambda: caps.monitor.up, timeout=15)
        assert caps.sessions.get(changed["id"])["theme"] == "dark"
        assert caps.sessions.get(revoked["id"]) is None

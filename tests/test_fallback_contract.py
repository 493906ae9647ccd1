"""The fallback table, row by row, in milliseconds.

The capabilities are built by ``build_capabilities`` on a real Redis, over a client whose
connections a test cuts off (:mod:`broken_redis`) instead of killing the server; the
background probe is off and recovery is one explicit ``monitor.probe()``. The slow
real-kill versions of these are in ``test_fallback.py``.
"""

from __future__ import annotations

import threading

import pytest
from broken_redis import switchable_client

from trackeep_desktop.capabilities import build_capabilities
from trackeep_desktop.capabilities.durable import DatabaseCounterBackup, DatabaseSessionBackup
from trackeep_desktop.capabilities.fallback import CapabilityUnavailable
from trackeep_desktop.capabilities.pubsub import RedisPubSub
from trackeep_desktop.clock import ManualClock


def wait_for(predicate, timeout: float = 5.0) -> bool:
    """For deliveries by another thread (the pub/sub listener), never for the monitor."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        done.wait(0.01)
    return predicate()


class Outage:
    """Capabilities on a Redis that :meth:`begin` cuts off and :meth:`end` brings back."""

    def __init__(self, caps, switch):
        self.caps = caps
        self.switch = switch

    def begin(self) -> None:
        self.switch.cut()

    def end(self) -> None:
        """Redis answers again and the monitor's next probe (run here, now) recovers."""
        self.switch.restore()
        assert self.caps.monitor.probe(), self.caps.monitor.last_error
        assert self.caps.monitor.up


@pytest.fixture
def outage(redis_url, redis_client, key_prefix, database):
    client, switch = switchable_client(redis_url)
    caps = build_capabilities(
        redis_url, key_prefix=key_prefix, session_backup=DatabaseSessionBackup(database),
        counter_backup=DatabaseCounterBackup(database), clock=ManualClock(),
        redis_client=client)
    caps.monitor.probe_in_background = False
    yield Outage(caps, switch)
    switch.restore()
    caps.close()
    keys = list(redis_client.scan_iter(match=f"{key_prefix}:*", count=1000))
    if keys:
        redis_client.delete(*keys)


def test_an_outage_is_seen_once_and_every_capability_reports_its_fallback(outage):
    caps = outage.caps
    assert {h.state for h in caps.health().values()} == {"ok"}
    outage.begin()
    assert caps.cache.get("anything") is None
    assert not caps.monitor.up
    assert caps.monitor.outages == 1
    assert "cut off" in caps.monitor.last_error
    assert {name: h.state for name, h in caps.health().items()} == dict.fromkeys(
        ("sessions", "cache", "rate_limiter", "leaderboard", "counters", "pubsub"), "fallback")
    assert not caps.monitor.probe()  # still down: the probe fails, nothing switches back
    outage.end()
    assert caps.monitor.outages == 1
    assert {h.state for h in caps.health().values()} == {"ok"}


# --------------------------------------------------------------------------------- sessions


def test_sessions_are_served_from_the_database_copy_during_an_outage(outage, redis_client,
                                                                     key_prefix):
    sessions = outage.caps.sessions
    kept = sessions.create(user_id=1, ttl=3600, data={"theme": "light"})
    revoked = sessions.create(user_id=1, ttl=3600)
    outage.begin()
    assert sessions.get(kept["id"])["user_id"] == 1  # nobody is logged out
    assert sessions.touch(kept["id"], {"theme": "dark"})["theme"] == "dark"
    assert sessions.delete(revoked["id"])
    during = sessions.create(user_id=2, ttl=3600)
    assert sessions.get(during["id"])["user_id"] == 2
    assert {s["id"] for s in sessions.list_for_user(1)} == {kept["id"]}
    # Redis still holds its stale copies of the changed and the revoked session...
    assert redis_client.exists(f"{key_prefix}:session:{revoked['id']}")

    outage.end()
    # ...which the recovery evicted: the revocation holds, the change wins.
    assert not redis_client.exists(f"{key_prefix}:session:{revoked['id']}")
    assert sessions.get(revoked["id"]) is None
    assert sessions.get(kept["id"])["theme"] == "dark"
    assert sessions.get(during["id"])["user_id"] == 2


# ------------------------------------------------------------------------------------ cache


def test_the_cache_is_skipped_during_an_outage_and_cleared_on_recovery(outage, redis_client,
                                                                       key_prefix):
    cache = outage.caps.cache
    cache.set("before", {"v": 1}, 60)
    assert cache.get("before") == {"v": 1}
    outage.begin()
    computed = []
    assert cache.get_or_set("during", lambda: computed.append(1) or "fresh", 60) == "fresh"
    assert cache.get_or_set("during", lambda: computed.append(1) or "fresh", 60) == "fresh"
    assert computed == [1, 1]  # every read went to the source
    assert cache.get("before") is None  # skipped, though Redis still has it
    cache.delete("before")  # an invalidation during the outage is lost...
    assert redis_client.exists(f"{key_prefix}:cache:before")

    outage.end()
    # ...so the recovery cleared the whole cache: no stale value survives.
    assert not redis_client.exists(f"{key_prefix}:cache:before")
    assert cache.get("before") is None
    cache.set("after", 2, 60)
    assert cache.get("after") == 2


# ----------------------------------------------------------------------------- rate limiter


def test_rate_limits_hold_per_instance_in_memory_during_an_outage(outage):
    limiter = outage.caps.rate_limiter
    for _ in range(2):
        assert limiter.hit_sliding("10.0.0.1:login", 3, 60).allowed
    outage.begin()
    results = [limiter.hit_sliding("10.0.0.1:login", 3, 60).allowed for _ in range(4)]
    assert results == [True, True, True, False]  # a limit still holds, not "no limit"
    assert [limiter.hit_bucket("10.0.0.1:bucket", 2, 0.001).allowed for _ in range(3)] == [
        True, True, False]

    outage.end()
    # Back to the shared limit in Redis, which counted the two hits made before.
    assert limiter.hit_sliding("10.0.0.1:login", 3, 60).allowed
    assert not limiter.hit_sliding("10.0.0.1:login", 3, 60).allowed


# ------------------------------------------------------------------------------ leaderboard


def test_leaderboards_are_unavailable_during_an_outage_and_rebuilt_on_recovery(outage):
    caps = outage.caps
    source = {"ann": 30.0, "bob": 20.0, "cy": 10.0}  # what the database says
    calls = []

    def rebuild(leaderboard):
        calls.append(leaderboard)
        leaderboard.clear("challenge:1:leaderboard")
        for member, score in source.items():
            leaderboard.set_score("challenge:1:leaderboard", member, score)
        return ["challenge:1:leaderboard"]

    caps.leaderboard_rebuilders.add("challenges", rebuild)
    caps.leaderboard.set_score("challenge:1:leaderboard", "ann", 5)
    outage.begin()
    with pytest.raises(CapabilityUnavailable):
        caps.leaderboard.increment("challenge:1:leaderboard", "ann", 25)  # a lost write
    with pytest.raises(CapabilityUnavailable):
        caps.leaderboard.top("challenge:1:leaderboard", 10)
    assert calls == []

    outage.end()
    assert len(calls) == 1
    assert caps.leaderboard.top("challenge:1:leaderboard", 10) == [
        ("ann", 30.0), ("bob", 20.0), ("cy", 10.0)]


def test_a_rebuilder_that_fails_does_not_stop_the_others_or_the_recovery(outage, caplog):
    caps = outage.caps

    def broken(leaderboard):
        raise ValueError("a bug in one domain")

    def good(leaderboard):
        leaderboard.set_score("b", "x", 1)
        return ["b"]

    caps.leaderboard_rebuilders.add("broken", broken)
    caps.leaderboard_rebuilders.add("good", good)
    outage.begin()
    caps.cache.get("k")
    outage.end()
    assert caps.leaderboard.top("b", 1) == [("x", 1.0)]
    assert "the broken leaderboard rebuilder failed" in caplog.text


def test_a_recovery_that_meets_redis_failing_again_stays_down_and_retries(outage):
    caps = outage.caps
    attempts = []

    def flaky(leaderboard):
        attempts.append(1)
        if len(attempts) == 1:
            outage.switch.cut()  # Redis goes again in the middle of the recovery
        leaderboard.set_score("b", "x", len(attempts))
        return ["b"]

    caps.leaderboard_rebuilders.add("flaky", flaky)
    outage.begin()
    caps.cache.get("k")
    outage.switch.restore()
    assert not caps.monitor.probe()
    assert not caps.monitor.up
    outage.end()
    assert len(attempts) == 2
    assert caps.leaderboard.score("b", "x") == 2.0


# --------------------------------------------------------------------------------- counters


def test_counter_increments_are_kept_as_deltas_and_added_on_recovery(outage, redis_client,
                                                                     key_prefix):
    counters = outage.caps.counters
    assert counters.increment("views:bookmark:1", 5) == 5
    counters.flush()  # durable: the database says 5
    outage.begin()
    assert counters.increment("views:bookmark:1") == 6  # flushed value plus the delta
    assert counters.increment("views:bookmark:1", 2) == 8
    assert counters.increment("views:note:2") == 1
    assert counters.get("views:bookmark:1") == 8
    assert redis_client.get(f"{key_prefix}:counter:views:bookmark:1") == "5"

    outage.end()
    assert redis_client.get(f"{key_prefix}:counter:views:bookmark:1") == "8"
    assert counters.get("views:bookmark:1") == 8
    assert counters.get("views:note:2") == 1
    assert counters.increment("views:bookmark:1") == 9  # no delta counted twice


def test_counter_deltas_go_to_the_database_when_closing_during_an_outage(
        redis_url, redis_client, key_prefix, database):
    backup = DatabaseCounterBackup(database)
    client, switch = switchable_client(redis_url)
    caps = build_capabilities(redis_url, key_prefix=key_prefix, redis_client=client,
                              session_backup=DatabaseSessionBackup(database),
                              counter_backup=backup, clock=ManualClock())
    caps.monitor.probe_in_background = False
    try:
        caps.counters.increment("downloads:file:1", 3)
        caps.counters.flush()
        switch.cut()
        caps.counters.increment("downloads:file:1", 4)
    finally:
        caps.close()
        for key in redis_client.scan_iter(match=f"{key_prefix}:*"):
            redis_client.delete(key)
    assert backup.load("downloads:file:1") == 7


# ---------------------------------------------------------------------------------- pub/sub


def test_pubsub_is_local_only_during_an_outage_and_resumes_on_redis(outage, redis_client,
                                                                    key_prefix):
    from trackeep_desktop.capabilities.keys import Keyspace

    pubsub = outage.caps.pubsub
    here, elsewhere = [], []
    arrived = threading.Event()
    pubsub.subscribe("notifications:*", lambda channel, message: here.append(message))
    other_instance = RedisPubSub(redis_client, Keyspace(key_prefix))
    other_instance.subscribe("notifications:*",
                             lambda channel, message: (elsewhere.append(message),
                                                       arrived.set()))
    try:
        outage.begin()
        pubsub.publish("notifications:1", {"n": 1})
        assert here == [{"n": 1}]  # this instance's subscribers get it, at once
        late = []
        pubsub.subscribe("messages:*", lambda channel, message: late.append(message))
        pubsub.publish("messages:1", {"n": 2})
        assert late == [{"n": 2}]
        assert not arrived.wait(0.05)
        assert elsewhere == []  # other instances miss it

        outage.end()
        pubsub.publish("notifications:1", {"n": 3})
        assert arrived.wait(5)
        assert elsewhere == [{"n": 3}]
        # The subscription made during the outage is on Redis now: another instance reaches it.
        other_instance.publish("messages:1", {"n": 4})
        assert wait_for(lambda: len(late) == 2)
        assert late == [{"n": 2}, {"n": 4}]
        assert here == [{"n": 1}, {"n": 3}]  # each message once
    finally:
        other_instance.close()

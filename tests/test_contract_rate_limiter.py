"""The rate-limiter contract, run against MemoryRateLimiter and RedisRateLimiter."""

from __future__ import annotations

import threading

import pytest

from trackeep_desktop.capabilities.base import RateLimiter
from trackeep_desktop.capabilities.ratelimit import MemoryRateLimiter, RedisRateLimiter
from trackeep_desktop.clock import ManualClock


@pytest.fixture
def limiter(backend):
    return backend.make("rate_limiter")


@pytest.fixture
def race_limiter(backend):
    """The backend's limiter, on a Redis client with room for 200 simultaneous callers
    (redis-py's default pool raises MaxConnectionsError past 100 connections)."""
    if backend.name == "memory":
        yield backend.make("rate_limiter")
        return
    import redis

    shared = backend.client.connection_pool
    pool = redis.ConnectionPool(
        connection_class=shared.connection_class, max_connections=256, **shared.connection_kwargs
    )
    yield RedisRateLimiter(redis.Redis(connection_pool=pool), backend.keyspace, backend.clock)
    pool.disconnect()


def run_together(count: int, work) -> list:
    """Run ``work()`` on ``count`` threads released at once; return their results."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        barrier.wait()
        results[i] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_both_implementations_implement_the_interface():
    for cls in (MemoryRateLimiter, RedisRateLimiter):
        assert issubclass(cls, RateLimiter)
        assert not cls.__abstractmethods__


@pytest.mark.parametrize(
    ("limit", "window", "cost"), [(0, 10, 1), (5, 0, 1), (5, -1, 1), (5, 10, 0), (5, 10, 6)]
)
def test_sliding_window_refuses_invalid_arguments(limiter, limit, window, cost):
    with pytest.raises(ValueError, match=r"^(limit|window|cost) must be"):
        limiter.hit_sliding("ip", limit, window, cost)


@pytest.mark.parametrize(
    ("capacity", "rate", "cost"), [(0, 1, 1), (5, 0, 1), (5, -1, 1), (5, 1, 0), (5, 1, 6)]
)
def test_token_bucket_refuses_invalid_arguments(limiter, capacity, rate, cost):
    with pytest.raises(ValueError, match=r"^(capacity|refill_per_second|cost) must be"):
        limiter.hit_bucket("ip", capacity, rate, cost)


# ---------------------------------------------------------------------------- sliding window


def test_sliding_window_allows_exactly_the_limit(backend, limiter):
    results = []
    for _ in range(3):
        results.append(limiter.hit_sliding("1.2.3.4:general", limit=3, window=10))
        backend.advance(1)
    assert [r.allowed for r in results] == [True, True, True]
    assert [r.remaining for r in results] == [2, 1, 0]
    assert [r.retry_after for r in results] == [0, 0, 0]
    assert [r.limit for r in results] == [3, 3, 3]
    assert results[0].reset_after == pytest.approx(10)

    refused = limiter.hit_sliding("1.2.3.4:general", limit=3, window=10)  # at t0 + 3
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == pytest.approx(7)  # the hit at t0 leaves at t0 + 10
    assert refused.reset_after == pytest.approx(9)  # the hit at t0 + 2 leaves at t0 + 12
    if backend.name == "redis":
        key = backend.keyspace.key("rl", "1.2.3.4:general")
        assert backend.client.zcard(key) == 3
        assert 0 < backend.client.pttl(key) <= 10_000


def test_sliding_window_slides(backend, limiter):
    for _ in range(3):
        assert limiter.hit_sliding("ip", limit=3, window=10).allowed
        backend.advance(1)
    backend.advance(6)  # t0 + 9: every hit is still in the window
    assert not limiter.hit_sliding("ip", limit=3, window=10).allowed
    backend.advance(1)  # t0 + 10: the first hit has left
    result = limiter.hit_sliding("ip", limit=3, window=10)
    assert result.allowed
    assert result.remaining == 0
    assert not limiter.hit_sliding("ip", limit=3, window=10).allowed
    backend.advance(30)  # everything has left
    result = limiter.hit_sliding("ip", limit=3, window=10)
    assert result.allowed
    assert result.remaining == 2


def test_refused_hits_are_not_counted(backend, limiter):
    assert limiter.hit_sliding("ip", limit=2, window=10).allowed
    backend.advance(5)
    assert limiter.hit_sliding("ip", limit=2, window=10).allowed
    for _ in range(20):
        assert not limiter.hit_sliding("ip", limit=2, window=10).allowed
    backend.advance(5)  # the first hit leaves; the refused ones never counted
    result = limiter.hit_sliding("ip", limit=2, window=10)
    assert result.allowed
    assert result.remaining == 0


def test_sliding_window_cost_and_retry_after(backend, limiter):
    assert limiter.hit_sliding("ip", limit=5, window=10, cost=2).remaining == 3
    backend.advance(1)
    assert limiter.hit_sliding("ip", limit=5, window=10, cost=2).remaining == 1
    backend.advance(1)
    assert limiter.hit_sliding("ip", limit=5, window=10, cost=1).remaining == 0
    backend.advance(1)  # t0 + 3; three hits must leave: the third oldest is at t0 + 1
    refused = limiter.hit_sliding("ip", limit=5, window=10, cost=3)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(8)
    backend.advance(7.9)
    assert not limiter.hit_sliding("ip", limit=5, window=10, cost=3).allowed
    backend.advance(0.1)
    result = limiter.hit_sliding("ip", limit=5, window=10, cost=3)
    assert result.allowed
    assert result.remaining == 1


def test_simultaneous_hits_are_counted_separately(backend, limiter):
    results = [limiter.hit_sliding("ip", limit=5, window=10) for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert results[-1].retry_after == pytest.approx(10)
    if backend.name == "redis":
        assert backend.client.zcard(backend.keyspace.key("rl", "ip")) == 5


def test_sliding_window_keys_are_independent(limiter):
    assert limiter.hit_sliding("a", limit=1, window=10).allowed
    assert not limiter.hit_sliding("a", limit=1, window=10).allowed
    assert limiter.hit_sliding("b", limit=1, window=10).allowed


def test_sliding_window_race_allows_exactly_the_limit(race_limiter):
    results = run_together(200, lambda: race_limiter.hit_sliding("race", limit=100, window=60))
    assert sum(r.allowed for r in results) == 100
    assert sorted(r.remaining for r in results if r.allowed) == list(range(100))


# ------------------------------------------------------------------------------ token bucket


def test_token_bucket_allows_capacity_then_refills(backend, limiter):
    results = [limiter.hit_bucket("ip:ai", capacity=5, refill_per_second=1) for _ in range(5)]
    assert [r.allowed for r in results] == [True] * 5
    assert [r.remaining for r in results] == [4, 3, 2, 1, 0]
    assert results[-1].reset_after == pytest.approx(5)

    refused = limiter.hit_bucket("ip:ai", capacity=5, refill_per_second=1)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1)
    backend.advance(0.5)
    refused = limiter.hit_bucket("ip:ai", capacity=5, refill_per_second=1)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.5)
    backend.advance(0.5)
    result = limiter.hit_bucket("ip:ai", capacity=5, refill_per_second=1)
    assert result.allowed
    assert result.remaining == 0
    if backend.name == "redis":
        key = backend.keyspace.key("rl", "ip:ai", "bucket")
        assert float(backend.client.hget(key, "tokens")) == pytest.approx(0)
        assert float(backend.client.hget(key, "ts")) == backend.clock.now()
        assert 0 < backend.client.pttl(key) <= 5000


def test_token_bucket_never_holds_more_than_its_capacity(backend, limiter):
    limiter.hit_bucket("ip", capacity=3, refill_per_second=2)
    backend.advance(100)
    results = [limiter.hit_bucket("ip", capacity=3, refill_per_second=2) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]


def test_token_bucket_refills_continuously(backend, limiter):
    for _ in range(4):
        assert limiter.hit_bucket("ip", capacity=4, refill_per_second=0.5).allowed
    backend.advance(3)  # 1.5 tokens
    assert limiter.hit_bucket("ip", capacity=4, refill_per_second=0.5).allowed
    refused = limiter.hit_bucket("ip", capacity=4, refill_per_second=0.5)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1)  # 0.5 token missing at 0.5 per second
    assert refused.reset_after == pytest.approx(7)  # 3.5 tokens missing


def test_token_bucket_cost(backend, limiter):
    result = limiter.hit_bucket("ip:upload", capacity=10, refill_per_second=1, cost=7)
    assert result.allowed
    assert result.remaining == 3
    refused = limiter.hit_bucket("ip:upload", capacity=10, refill_per_second=1, cost=5)
    assert not refused.allowed
    assert refused.remaining == 3
    assert refused.retry_after == pytest.approx(2)
    backend.advance(2)
    assert limiter.hit_bucket("ip:upload", capacity=10, refill_per_second=1, cost=5).allowed


def test_token_bucket_race_allows_exactly_the_capacity(race_limiter):
    results = run_together(
        200, lambda: race_limiter.hit_bucket("race", capacity=100, refill_per_second=0.001)
    )
    assert sum(r.allowed for r in results) == 100


# ------------------------------------------------------------------------------------- reset


def test_reset_forgets_both_kinds(backend, limiter):
    assert limiter.hit_sliding("ip", limit=1, window=60).allowed
    assert limiter.hit_bucket("ip", capacity=1, refill_per_second=0.01).allowed
    assert not limiter.hit_sliding("ip", limit=1, window=60).allowed
    assert not limiter.hit_bucket("ip", capacity=1, refill_per_second=0.01).allowed
    limiter.hit_sliding("other", limit=1, window=60)
    limiter.reset("ip")
    assert limiter.hit_sliding("ip", limit=1, window=60).allowed
    assert limiter.hit_bucket("ip", capacity=1, refill_per_second=0.01).allowed
    assert not limiter.hit_sliding("other", limit=1, window=60).allowed
    limiter.reset("never-seen")
    if backend.name == "redis":
        limiter.reset("ip")
        assert backend.client.exists(
            backend.keyspace.key("rl", "ip"), backend.keyspace.key("rl", "ip", "bucket")
        ) == 0


def test_state_expires_once_the_limit_is_restored(backend, limiter):
    limiter.hit_sliding("ip", limit=5, window=10)
    limiter.hit_bucket("ip", capacity=5, refill_per_second=1, cost=5)
    backend.advance(10)
    assert limiter.hit_sliding("ip", limit=5, window=10).remaining == 4
    assert limiter.hit_bucket("ip", capacity=5, refill_per_second=1, cost=5).allowed
    if backend.name == "redis":
        backend.advance(5)
        assert backend.client.exists(backend.keyspace.key("rl", "ip", "bucket")) == 0


def test_check_is_ok(backend, limiter):
    health = limiter.check()
    assert (health.backend, health.state) == (backend.name, "ok")


# ------------------------------------------------------------------------------- memory only


def test_memory_limiter_prunes_idle_keys():
    clock = ManualClock()
    limiter = MemoryRateLimiter(clock=clock)
    for i in range(50):
        limiter.hit_sliding(f"w{i}", limit=5, window=10)
        limiter.hit_bucket(f"b{i}", capacity=5, refill_per_second=0.1)
    assert len(limiter) == 100
    clock.advance(5)
    assert limiter.prune() == 0
    clock.advance(5)
    assert limiter.prune() == 100
    assert len(limiter) == 0


def test_memory_limiter_stays_bounded_without_explicit_pruning():
    clock = ManualClock()
    limiter = MemoryRateLimiter(clock=clock)
    for i in range(20_000):
        limiter.hit_sliding(f"ip{i}", limit=5, window=1)
        clock.advance(0.01)  # about 100 keys are live at any time
    assert len(limiter) <= 2 * MemoryRateLimiter.PRUNE_EVERY


def test_peek_counts_nothing_and_answers_like_a_hit(backend, limiter):
    for _ in range(10):
        assert limiter.peek_sliding("ip:login", limit=2, window=10).allowed
    assert limiter.hit_sliding("ip:login", limit=2, window=10).allowed
    backend.advance(4)
    assert limiter.hit_sliding("ip:login", limit=2, window=10).allowed
    refused = limiter.peek_sliding("ip:login", limit=2, window=10)
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == pytest.approx(6)
    backend.advance(6)  # the first hit leaves
    assert limiter.peek_sliding("ip:login", limit=2, window=10).allowed

"""The cache contract, run against MemoryCache and RedisCache (``backend`` fixture)."""

from __future__ import annotations

import threading

import pytest

from trackeep_desktop.capabilities.base import Cache, CacheStats
from trackeep_desktop.capabilities.cache import MemoryCache, RedisCache
from trackeep_desktop.clock import ManualClock


@pytest.fixture
def cache(backend):
    return backend.make("cache")


def test_both_implementations_implement_the_interface():
    for cls in (MemoryCache, RedisCache):
        assert issubclass(cls, Cache)
        assert not cls.__abstractmethods__


def test_set_get_delete(backend, cache):
    assert cache.get("user:1:profile") is None
    cache.set("user:1:profile", {"name": "Ada", "tags": ["x", 1, None]}, ttl=60)
    assert cache.get("user:1:profile") == {"name": "Ada", "tags": ["x", 1, None]}
    if backend.name == "redis":
        stored = backend.client.get(backend.keyspace.key("cache", "user:1:profile"))
        assert stored == '{"name":"Ada","tags":["x",1,null]}'
    assert cache.delete("user:1:profile") is True
    assert cache.get("user:1:profile") is None
    assert cache.delete("user:1:profile") is False


def test_set_replaces_the_value_and_the_ttl(backend, cache):
    cache.set("k", 1, ttl=5)
    cache.set("k", 2, ttl=50)
    backend.advance(10)
    assert cache.get("k") == 2


def test_values_of_every_json_type_round_trip(cache):
    values = {"int": 7, "float": 1.5, "str": "é ✓", "list": [1, [2]], "true": True, "false": False}
    for key, value in values.items():
        cache.set(key, value, ttl=60)
    assert {key: cache.get(key) for key in values} == values


def test_a_read_is_a_copy_not_the_stored_object(cache):
    value = {"items": [1, 2]}
    cache.set("k", value, ttl=60)
    value["items"].append(3)
    first = cache.get("k")
    assert first == {"items": [1, 2]}
    first["items"].append(4)
    assert cache.get("k") == {"items": [1, 2]}


def test_values_that_are_not_json_are_refused(cache):
    with pytest.raises(TypeError):
        cache.set("k", {1, 2}, ttl=60)
    assert cache.get("k") is None


def test_entries_expire_after_their_ttl(backend, cache):
    cache.set("k", "v", ttl=10)
    cache.set("long", "v", ttl=100)
    backend.advance(9)
    assert cache.get("k") == "v"
    backend.advance(2)
    assert cache.get("k") is None
    assert cache.delete("k") is False
    assert cache.get("long") == "v"


def test_redis_ttl_is_set_in_milliseconds(backend, cache):
    cache.set("k", "v", ttl=2.5)
    cache.set("tiny", "v", ttl=0.0001)
    if backend.name == "redis":
        pttl = backend.client.pttl(backend.keyspace.key("cache", "k"))
        assert 2000 < pttl <= 2500
    backend.advance(2.4)
    assert cache.get("k") == "v"
    backend.advance(0.2)
    assert cache.get("k") is None
    assert cache.get("tiny") is None


def test_delete_prefix_removes_only_matching_keys(backend, cache):
    for key in ("search:1:a", "search:1:b", "search:2:a", "searching", "user:1:search:1"):
        cache.set(key, key, ttl=60)
    assert cache.delete_prefix("search:1:") == 2
    assert cache.get("search:1:a") is None
    assert cache.get("search:1:b") is None
    assert cache.get("search:2:a") == "search:2:a"
    assert cache.get("searching") == "searching"
    assert cache.get("user:1:search:1") == "user:1:search:1"
    assert cache.delete_prefix("nothing:") == 0
    if backend.name == "redis":
        assert backend.client.exists(backend.keyspace.key("cache", "search:2:a")) == 1
        assert backend.client.exists(backend.keyspace.key("cache", "search:1:a")) == 0


@pytest.mark.parametrize("prefix", ["a*", "a?", "a[b]", "a\\", "a]"])
def test_delete_prefix_treats_glob_characters_literally(cache, prefix):
    literal = [prefix + "1", prefix + "2"]
    # Keys a glob reading of the prefix would match: a*, a? and a[b] would take all of these.
    others = ["abc", "ab1", "ax", "a", "b" + prefix]
    for key in literal + others:
        cache.set(key, key, ttl=60)
    assert cache.delete_prefix(prefix) == 2
    assert [cache.get(key) for key in literal] == [None, None]
    assert [cache.get(key) for key in others] == others


def test_delete_prefix_handles_many_keys(cache):
    for i in range(1200):
        cache.set(f"bulk:{i}", i, ttl=60)
    cache.set("keep", 1, ttl=60)
    assert cache.delete_prefix("bulk:") == 1200
    assert cache.get("bulk:0") is None
    assert cache.get("bulk:1199") is None
    assert cache.get("keep") == 1


def test_delete_prefix_does_not_count_expired_keys(backend, cache):
    cache.set("p:old", 1, ttl=5)
    cache.set("p:new", 2, ttl=50)
    backend.advance(10)
    assert cache.delete_prefix("p:") == 1


def test_generations_start_at_zero_and_bump(backend, cache):
    assert cache.generation("search:1") == 0
    assert cache.bump_generation("search:1") == 1
    assert cache.bump_generation("search:1") == 2
    assert cache.generation("search:1") == 2
    assert cache.generation("search:2") == 0
    if backend.name == "redis":
        key = backend.keyspace.key("cache", "gen", "search:1")
        assert backend.client.get(key) == "2"
        assert backend.client.ttl(key) == -1


def test_generations_survive_delete_prefix_and_time(backend, cache):
    cache.bump_generation("ns")
    cache.set("ns:x", 1, ttl=60)
    assert cache.delete_prefix("") == 1
    assert cache.delete_prefix("gen") == 0
    backend.advance(10_000)
    assert cache.generation("ns") == 1


def test_keys_built_on_an_old_generation_are_no_longer_read(cache):
    def key():
        return f"search:{cache.generation('search')}:q"

    cache.set(key(), ["old"], ttl=60)
    assert cache.get(key()) == ["old"]
    cache.bump_generation("search")
    assert cache.get(key()) is None


def test_generation_keys_are_reserved(cache):
    for call in (lambda: cache.set("gen:x", 1, ttl=60), lambda: cache.get("gen:x"),
                 lambda: cache.delete("gen:x")):
        with pytest.raises(ValueError, match="are reserved"):
            call()


def test_clear_removes_entries_and_generations(backend, cache):
    cache.set("a", 1, ttl=60)
    cache.set("b:c", 2, ttl=60)
    cache.bump_generation("ns")
    if backend.name == "redis":
        unrelated = backend.keyspace.key("session", "s1")
        backend.client.set(unrelated, "x")
    cache.clear()
    assert cache.get("a") is None
    assert cache.get("b:c") is None
    assert cache.generation("ns") == 0
    if backend.name == "redis":
        assert backend.client.get(unrelated) == "x"
        assert list(backend.client.scan_iter(match=backend.keyspace.key("cache") + ":*")) == []


def test_get_or_set_computes_once(cache):
    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    assert cache.get_or_set("k", compute, ttl=60) == {"n": 1}
    assert cache.get_or_set("k", compute, ttl=60) == {"n": 1}
    assert len(calls) == 1


def test_get_or_set_recomputes_after_expiry_and_never_stores_none(backend, cache):
    results = iter([None, "first", "second"])
    assert cache.get_or_set("k", lambda: next(results), ttl=10) is None
    assert cache.get_or_set("k", lambda: next(results), ttl=10) == "first"
    backend.advance(11)
    assert cache.get_or_set("k", lambda: next(results), ttl=10) == "second"


def test_stats_count_hits_and_misses(cache):
    assert cache.stats() == CacheStats(hits=0, misses=0)
    cache.get("k")
    cache.set("k", 1, ttl=60)
    cache.get("k")
    cache.get("k")
    cache.get_or_set("other", lambda: 2, ttl=60)
    assert cache.stats() == CacheStats(hits=2, misses=2)


def test_stats_are_exact_under_threads(cache):
    cache.set("hit", 1, ttl=60)
    barrier = threading.Barrier(8)

    def work():
        barrier.wait()
        for _ in range(50):
            cache.get("hit")
            cache.get("miss")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.stats() == CacheStats(hits=400, misses=400)


def test_concurrent_writers_leave_one_whole_value(cache):
    barrier = threading.Barrier(16)

    def work(i):
        barrier.wait()
        for j in range(30):
            cache.set("shared", {"writer": i, "n": j, "pad": "x" * i}, ttl=60)
            seen = cache.get("shared")
            assert seen["pad"] == "x" * seen["writer"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = cache.get("shared")
    assert final["n"] == 29
    assert final["pad"] == "x" * final["writer"]


def test_check_is_ok(backend, cache):
    health = cache.check()
    assert (health.backend, health.state) == (backend.name, "ok")


# ------------------------------------------------------------------------ memory and Redis only


def test_memory_cache_evicts_the_least_recently_used_entry():
    cache = MemoryCache(clock=ManualClock(), max_entries=3)
    for key in "abc":
        cache.set(key, key, ttl=60)
    assert cache.get("a") == "a"  # a is now the most recently used
    cache.set("d", "d", ttl=60)
    assert cache.get("b") is None
    assert [cache.get(key) for key in "acd"] == ["a", "c", "d"]
    assert len(cache) == 3


def test_memory_cache_is_bounded_by_bytes():
    cache = MemoryCache(clock=ManualClock(), max_bytes=100)
    for i in range(10):
        cache.set(f"k{i}", "x" * 20, ttl=60)  # 2 + 22 bytes each
    assert cache.size_bytes <= 100
    assert len(cache) == 4
    assert [cache.get(f"k{i}") for i in (0, 5)] == [None, None]
    assert [cache.get(f"k{i}") for i in (6, 7, 8, 9)] == ["x" * 20] * 4


def test_memory_cache_does_not_store_a_value_larger_than_the_budget():
    cache = MemoryCache(clock=ManualClock(), max_bytes=50)
    cache.set("small", "s", ttl=60)
    cache.set("big", "x" * 60, ttl=60)
    assert cache.get("big") is None
    assert cache.get("small") == "s"
    cache.set("small", "y" * 60, ttl=60)
    assert cache.get("small") is None
    assert cache.size_bytes == 0


def test_memory_cache_byte_count_follows_replacements_and_deletes():
    cache = MemoryCache(clock=ManualClock())
    cache.set("key", "abc", ttl=60)
    assert cache.size_bytes == len("key") + len('"abc"')
    cache.set("key", [1, 2], ttl=60)
    assert cache.size_bytes == len("key") + len("[1,2]")
    cache.delete("key")
    cache.set("p:1", 1, ttl=60)
    cache.delete_prefix("p:")
    assert cache.size_bytes == 0


def test_memory_cache_drops_expired_entries_when_read():
    clock = ManualClock()
    cache = MemoryCache(clock=clock)
    cache.set("k", "v", ttl=1)
    clock.advance(2)
    assert cache.get("k") is None
    assert len(cache) == 0
    assert cache.size_bytes == 0


def test_memory_cache_stays_bounded_under_concurrent_writes():
    cache = MemoryCache(clock=ManualClock(), max_entries=50)
    barrier = threading.Barrier(8)

    def work(i):
        barrier.wait()
        for j in range(200):
            cache.set(f"{i}:{j}", j, ttl=60)
            cache.get(f"{i}:{j // 2}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50
    assert cache.delete_prefix("") == 50
    assert cache.size_bytes == 0


def test_redis_cache_check_reports_an_unreachable_server():
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from trackeep_desktop.capabilities.keys import Keyspace

    client = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    cache = RedisCache(client=client, keyspace=Keyspace("tktest"))
    health = cache.check()
    assert (health.backend, health.state) == ("redis", "fallback")
    assert health.detail
    with pytest.raises(redis.ConnectionError):
        cache.get("k")
    client.close()

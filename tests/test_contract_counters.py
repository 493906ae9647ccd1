"""The counters contract, run against MemoryCounters and RedisCounters."""

from __future__ import annotations

import threading

import pytest

from trackeep_desktop.capabilities.base import Counters
from trackeep_desktop.capabilities.counters import MemoryCounters, RedisCounters
from trackeep_desktop.capabilities.durable import DatabaseCounterBackup

NAME = "views:bookmark:12"


class FlakyBackup(DatabaseCounterBackup):
    """The real database backup, whose next save fails when ``fail_next`` is set."""

    fail_next = False

    def save(self, values):
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database unavailable")
        super().save(values)


@pytest.fixture
def counters(backend):
    return backend.make("counters")


@pytest.fixture
def backup(database):
    return FlakyBackup(database)


def lose_hot_copy(backend, backup):
    """New counters as after a restart: memory starts empty, Redis lost its counter keys."""
    if backend.name == "redis":
        backend.cleanup()
    return backend.make("counters", backup=backup)


def run_threads(count, work):
    barrier = threading.Barrier(count)

    def run():
        barrier.wait()
        work()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_both_implementations_implement_the_interface():
    for cls in (MemoryCounters, RedisCounters):
        assert issubclass(cls, Counters)
        assert not cls.__abstractmethods__


def test_increment_and_get(counters):
    assert counters.get(NAME) == 0
    assert counters.increment(NAME) == 1
    assert counters.increment(NAME, 5) == 6
    assert counters.increment(NAME, -2) == 4
    assert counters.get(NAME) == 4
    assert counters.get("views:bookmark:13") == 0
    assert counters.increment("downloads:9") == 1
    assert counters.get(NAME) == 4


def test_concurrent_increments_sum_exactly(counters):
    run_threads(50, lambda: [counters.increment(NAME) for _ in range(20)])
    assert counters.get(NAME) == 1000


def test_concurrent_first_increments_start_from_the_durable_value_once(backend, backup):
    backup.save({NAME: 100})
    counters = backend.make("counters", backup=backup)
    run_threads(50, lambda: [counters.increment(NAME) for _ in range(4)])
    assert counters.get(NAME) == 300


def test_without_a_backup_flush_writes_nothing_and_keeps_values(counters):
    counters.increment(NAME, 3)
    assert counters.flush() == 0
    assert counters.get(NAME) == 3


def test_flush_writes_changed_counters_to_the_database(backend, backup):
    counters = backend.make("counters", backup=backup)
    for _ in range(3):
        counters.increment(NAME)
    counters.increment("downloads:9")
    assert backup.load(NAME) == 0
    assert counters.flush() == 2
    assert backup.load(NAME) == 3
    assert backup.load("downloads:9") == 1
    assert counters.flush() == 0  # nothing changed since
    counters.increment(NAME)
    assert counters.flush() == 1
    assert backup.load(NAME) == 4
    assert counters.get(NAME) == 4


def test_counting_continues_from_the_flushed_value_after_a_restart(backend, backup):
    counters = backend.make("counters", backup=backup)
    counters.increment(NAME, 41)
    counters.flush()
    restarted = lose_hot_copy(backend, backup)
    assert restarted.get(NAME) == 41
    assert restarted.increment(NAME) == 42
    assert restarted.flush() == 1
    assert backup.load(NAME) == 42


def test_a_failed_flush_keeps_the_counters_dirty(backend, backup):
    counters = backend.make("counters", backup=backup)
    counters.increment(NAME, 2)
    counters.increment("downloads:9")
    backup.fail_next = True
    with pytest.raises(RuntimeError):
        counters.flush()
    assert backup.load(NAME) == 0
    counters.increment(NAME)
    assert counters.flush() == 2
    assert backup.load(NAME) == 3
    assert backup.load("downloads:9") == 1


def test_an_increment_during_a_flush_is_written_by_the_next_flush(backend, database):
    class RacingBackup(DatabaseCounterBackup):
        counters = None

        def save(self, values):
            counters, self.counters = self.counters, None
            if counters is not None:  # another request counts a view mid-flush
                counters.increment(NAME)
            super().save(values)

    backup = RacingBackup(database)
    counters = backend.make("counters", backup=backup)
    counters.increment(NAME)
    backup.counters = counters
    assert counters.flush() == 1
    assert backup.load(NAME) == 1
    assert counters.flush() == 1
    assert backup.load(NAME) == 2


def test_flush_handles_many_counters(backend, backup):
    counters = backend.make("counters", backup=backup)
    for i in range(2500):
        counters.increment(f"views:note:{i}", i)
    assert counters.flush() == 2500
    assert backup.load("views:note:2499") == 2499
    assert counters.flush() == 0


def test_redis_keys_follow_the_seed_naming(backend, backup):
    counters = backend.make("counters", backup=backup)
    counters.increment(NAME, 3)
    if backend.name == "redis":
        client, prefix = backend.client, backend.keyspace.prefix
        assert client.get(f"{prefix}:counter:{NAME}") == "3"
        assert client.smembers(f"{prefix}:counter:dirty") == {NAME}
        counters.flush()
        assert client.smembers(f"{prefix}:counter:dirty") == set()
        with pytest.raises(ValueError, match="'dirty' is reserved"):
            counters.increment("dirty")
    assert counters.get(NAME) == 3


def test_check_is_ok(backend, counters):
    health = counters.check()
    assert (health.backend, health.state) == (backend.name, "ok")

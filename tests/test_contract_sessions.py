"""The session store contract, run against MemorySessionStore and RedisSessionStore."""

from __future__ import annotations

import json
import re
import threading

import pytest

from trackeep_desktop.capabilities.base import SessionStore
from trackeep_desktop.capabilities.durable import DatabaseSessionBackup
from trackeep_desktop.capabilities.sessions import MemorySessionStore, RedisSessionStore
from trackeep_desktop.storage.db import connection
from trackeep_desktop.storage.models import DurableSession

HOUR = 3600
DAY = 24 * HOUR


class CountingBackup(DatabaseSessionBackup):
    """The real database backup, counting its writes."""

    def __init__(self, db):
        super().__init__(db)
        self.saves = 0
        self.extends = 0

    def save(self, session, expires_at):
        self.saves += 1
        super().save(session, expires_at)

    def extend(self, session_id, last_active, expires_at):
        self.extends += 1
        super().extend(session_id, last_active, expires_at)


@pytest.fixture
def store(backend):
    return backend.make("sessions")


@pytest.fixture
def backup(database):
    return CountingBackup(database)


def lose_hot_copy(backend, **kwargs):
    """A new store as after a restart: memory starts empty, Redis has lost every key."""
    if backend.name == "redis":
        backend.cleanup()
    return backend.make("sessions", **kwargs)


def durable_row(database, session_id):
    with connection(database):
        return DurableSession.get_or_none(DurableSession.id == session_id)


def test_both_implementations_implement_the_interface():
    for cls in (MemorySessionStore, RedisSessionStore):
        assert issubclass(cls, SessionStore)
        assert not cls.__abstractmethods__


def test_create_get_delete(backend, store):
    session = store.create(7, ttl=HOUR, data={"theme": "dark", "tags": ["a", 1]})
    assert session["user_id"] == 7
    assert session["ttl"] == HOUR
    assert session["created_at"] == session["last_active"] == backend.clock.now()
    assert session["theme"] == "dark"
    assert store.get(session["id"]) == session
    assert store.delete(session["id"]) is True
    assert store.get(session["id"]) is None
    assert store.delete(session["id"]) is False


def test_returned_sessions_are_copies(store):
    data = {"prefs": {"lang": "en"}}
    session = store.create(1, ttl=HOUR, data=data)
    data["prefs"]["lang"] = "fr"
    session["prefs"]["lang"] = "de"
    read = store.get(session["id"])
    assert read["prefs"] == {"lang": "en"}
    read["prefs"]["lang"] = "it"
    touched = store.touch(session["id"])
    touched["prefs"]["lang"] = "es"
    assert store.get(session["id"])["prefs"] == {"lang": "en"}


def test_data_may_not_override_the_record_and_must_be_json(store):
    with pytest.raises(ValueError, match="may not set"):
        store.create(1, ttl=HOUR, data={"user_id": 2})
    session = store.create(1, ttl=HOUR)
    with pytest.raises(ValueError, match="may not set"):
        store.touch(session["id"], {"id": "other"})
    with pytest.raises(TypeError):
        store.create(1, ttl=HOUR, data={"when": object()})
    assert store.list_for_user(1) == [store.get(session["id"])]


def test_ids_are_unguessable_and_unique(store):
    ids = [store.create(1, ttl=HOUR)["id"] for _ in range(200)]
    assert len(set(ids)) == 200
    for session_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session_id)  # 32 random bytes
    assert len({session_id[:8] for session_id in ids}) == 200


def test_unknown_and_malformed_ids_are_rejected(store):
    for bad in ("", "nope", "x" * 10_000, None, 42):
        assert store.get(bad) is None
        assert store.touch(bad) is None
        assert store.delete(bad) is False


def test_session_expires_after_its_ttl(backend, store):
    session = store.create(1, ttl=60)
    backend.advance(59)
    assert store.get(session["id"]) is not None
    backend.advance(2)
    assert store.get(session["id"]) is None
    assert store.touch(session["id"]) is None
    assert store.list_for_user(1) == []
    assert store.delete(session["id"]) is False


def test_touch_slides_the_expiry(backend, store):
    session = store.create(1, ttl=DAY)
    backend.advance(20 * HOUR)
    touched = store.touch(session["id"])
    assert touched["last_active"] == backend.clock.now()
    assert touched["created_at"] == session["created_at"]
    backend.advance(20 * HOUR)
    assert store.get(session["id"]) is not None
    backend.advance(5 * HOUR)  # 25 hours since the last touch
    assert store.get(session["id"]) is None


def test_touch_merges_data(store):
    session = store.create(1, ttl=HOUR, data={"theme": "dark", "csrf": "old"})
    touched = store.touch(session["id"], {"csrf": "new", "mfa": True})
    assert touched["theme"] == "dark"
    assert touched["csrf"] == "new"
    assert touched["mfa"] is True
    assert store.get(session["id"]) == touched


def test_concurrent_touches_lose_no_data(store):
    session = store.create(1, ttl=HOUR)
    barrier = threading.Barrier(12)

    def work(i):
        barrier.wait()
        for j in range(5):
            store.touch(session["id"], {f"k{i}-{j}": i})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = store.get(session["id"])
    assert {k for k in final if k.startswith("k")} == {f"k{i}-{j}" for i in range(12)
                                                        for j in range(5)}


def test_list_for_user_is_most_recent_first(backend, store):
    first = store.create(1, ttl=HOUR)
    backend.advance(1)
    second = store.create(1, ttl=HOUR)
    backend.advance(1)
    third = store.create(1, ttl=10)
    other = store.create(2, ttl=HOUR)
    backend.advance(1)
    store.touch(first["id"])
    assert [s["id"] for s in store.list_for_user(1)] == [first["id"], third["id"], second["id"]]
    assert [s["id"] for s in store.list_for_user(2)] == [other["id"]]
    assert store.list_for_user(3) == []
    backend.advance(10)  # the short session expires
    assert [s["id"] for s in store.list_for_user(1)] == [first["id"], second["id"]]


def test_delete_for_user_keeps_one(store):
    keep = store.create(1, ttl=HOUR)
    doomed = [store.create(1, ttl=HOUR) for _ in range(3)]
    other = store.create(2, ttl=HOUR)
    assert store.delete_for_user(1, keep=keep["id"]) == 3
    assert [s["id"] for s in store.list_for_user(1)] == [keep["id"]]
    assert all(store.get(s["id"]) is None for s in doomed)
    assert store.get(other["id"]) is not None
    assert store.delete_for_user(1) == 1
    assert store.list_for_user(1) == []


def test_redis_keys_follow_the_seed_naming(backend, store):
    short = store.create(5, ttl=60, data={"theme": "dark"})
    long = store.create(5, ttl=HOUR)
    if backend.name == "memory":
        store.delete(long["id"])
        backend.advance(61)
        assert store.list_for_user(5) == []
        assert len(store) == 0
        return
    client, prefix = backend.client, backend.keyspace.prefix
    key, index = f"{prefix}:session:{short['id']}", f"{prefix}:user:sessions:5"
    assert json.loads(client.get(key)) == {**short, "_durable_at": short["created_at"]}
    assert 59_000 < client.pttl(key) <= 60_000
    assert client.smembers(index) == {short["id"], long["id"]}
    assert client.pttl(index) > HOUR * 1000 - 1000  # outlives its longest session
    store.delete(long["id"])
    assert client.smembers(index) == {short["id"]}
    assert client.exists(f"{prefix}:session:{long['id']}") == 0
    backend.advance(61)  # the short session expires: its id is pruned from the index on list
    assert client.smembers(index) == {short["id"]}
    assert store.list_for_user(5) == []
    assert client.smembers(index) == set()


def test_session_survives_losing_the_hot_copy(backend, backup):
    store = backend.make("sessions", backup=backup)
    session = store.create(3, ttl=HOUR, data={"theme": "dark"})
    backend.advance(10)
    restarted = lose_hot_copy(backend, backup=backup)
    assert restarted.get(session["id"]) == session
    assert restarted.list_for_user(3) == [session]
    if backend.name == "redis":  # put back into Redis with the remaining TTL
        pttl = backend.client.pttl(backend.keyspace.key("session", session["id"]))
        assert (HOUR - 11) * 1000 < pttl <= (HOUR - 10) * 1000
    backend.advance(HOUR - 11)
    assert restarted.get(session["id"]) is not None
    backend.advance(2)
    assert restarted.get(session["id"]) is None


def test_a_touched_session_survives_a_restart_with_its_slid_expiry(backend, backup):
    store = backend.make("sessions", backup=backup)
    session = store.create(3, ttl=100)
    backend.advance(90)
    store.touch(session["id"])  # the last durable write is 90 s old: written through
    backend.advance(50)  # past the original expiry, within the slid one
    restarted = lose_hot_copy(backend, backup=backup)
    assert restarted.get(session["id"])["last_active"] == session["created_at"] + 90


def test_sessions_only_in_the_backup_are_listed_and_deleted(backend, backup):
    store = backend.make("sessions", backup=backup)
    keep = store.create(4, ttl=HOUR)
    doomed = store.create(4, ttl=HOUR)
    restarted = lose_hot_copy(backend, backup=backup)
    assert {s["id"] for s in restarted.list_for_user(4)} == {keep["id"], doomed["id"]}
    assert restarted.delete_for_user(4, keep=keep["id"]) == 1
    assert restarted.get(doomed["id"]) is None
    assert restarted.get(keep["id"]) is not None


def test_deleted_sessions_do_not_come_back_from_the_backup(backend, backup):
    store = backend.make("sessions", backup=backup)
    one = store.create(1, ttl=HOUR)
    two = store.create(1, ttl=HOUR)
    assert store.delete(one["id"]) is True
    assert store.delete_for_user(1) == 1
    assert durable_row(backup.db, one["id"]) is None
    assert durable_row(backup.db, two["id"]) is None
    restarted = lose_hot_copy(backend, backup=backup)
    assert restarted.get(one["id"]) is None
    assert restarted.get(two["id"]) is None
    assert restarted.list_for_user(1) == []


def test_delete_reports_a_session_only_in_the_backup(backend, backup):
    session = backend.make("sessions", backup=backup).create(1, ttl=HOUR)
    restarted = lose_hot_copy(backend, backup=backup)
    assert restarted.delete(session["id"]) is True
    assert restarted.get(session["id"]) is None


def test_touch_writes_the_backup_at_most_once_per_interval(backend, backup):
    store = backend.make("sessions", backup=backup, touch_write_interval=60)
    session = store.create(1, ttl=HOUR)
    assert backup.saves == 1
    for _ in range(30):  # a busy client: a request a second
        backend.advance(1)
        assert store.touch(session["id"]) is not None
    assert backup.extends == 0
    assert durable_row(backup.db, session["id"]).last_active == session["created_at"]
    backend.advance(30)
    store.touch(session["id"])  # 60 s after the last durable write
    assert backup.extends == 1
    row = durable_row(backup.db, session["id"])
    assert row.last_active == backend.clock.now()
    assert row.expires_at == backend.clock.now() + HOUR
    store.touch(session["id"])
    assert backup.extends == 1


def test_touch_with_data_always_reaches_the_backup(backend, backup):
    store = backend.make("sessions", backup=backup, touch_write_interval=60)
    session = store.create(1, ttl=HOUR)
    backend.advance(1)
    store.touch(session["id"], {"mfa": True})
    assert backup.saves == 2
    assert json.loads(durable_row(backup.db, session["id"]).data)["mfa"] is True
    restarted = lose_hot_copy(backend, backup=backup)
    assert restarted.get(session["id"])["mfa"] is True


def test_check_is_ok(backend, store):
    health = store.check()
    assert (health.backend, health.state) == (backend.name, "ok")


def test_a_delete_racing_with_a_restore_wins(backend, database):
    """A session deleted while another request restores it from the backup stays deleted."""

    class RacingBackup(DatabaseSessionBackup):
        racing_store = None

        def load(self, session_id, now):
            record = super().load(session_id, now)
            store, self.racing_store = self.racing_store, None
            if store is not None:  # another request logs the session out right now
                store.delete(session_id)
            return record

    backup = RacingBackup(database)
    session = backend.make("sessions", backup=backup).create(1, ttl=HOUR)
    restarted = lose_hot_copy(backend, backup=backup)
    backup.racing_store = restarted
    assert restarted.get(session["id"]) is None
    assert restarted.get(session["id"]) is None
    assert restarted.list_for_user(1) == []
    if backend.name == "redis":
        assert backend.client.exists(backend.keyspace.key("session", session["id"])) == 0


def test_memory_store_sweeps_expired_sessions():
    from trackeep_desktop.clock import ManualClock

    clock = ManualClock()
    store = MemorySessionStore(clock=clock)
    for user_id in range(50):
        store.create(user_id, ttl=10)
    clock.advance(MemorySessionStore.PRUNE_INTERVAL + 1)
    store.create(1, ttl=10)  # a write sweeps what expired unseen
    assert len(store) == 1

"""What must outlive the process: sessions, counters, and a checkpointed SQLite file."""

import os

import pytest


@pytest.fixture(params=["memory", "redis"])
def backend_overrides(request, key_prefix):
    if request.param == "memory":
        return {}
    return {"REDIS_URL": request.getfixturevalue("redis_url"), "KEY_PREFIX": key_prefix}


def test_sessions_survive_a_restart(make_app, backend_overrides):
    first = make_app(**backend_overrides)
    with first.app_context():
        session = first.extensions["trackeep"].capabilities.sessions.create(
            user_id=3, ttl=3600, data={"ip": "10.0.0.1"})
    first.extensions["trackeep"].close()

    second = make_app(**backend_overrides)
    with second.app_context():
        restored = second.extensions["trackeep"].capabilities.sessions.get(session["id"])
    assert restored is not None
    assert restored["user_id"] == 3
    assert restored["ip"] == "10.0.0.1"


def test_counters_survive_a_restart(make_app, backend_overrides):
    first = make_app(**backend_overrides)
    counters = first.extensions["trackeep"].capabilities.counters
    with first.app_context():
        for _ in range(5):
            counters.increment("views:note:9")
    first.extensions["trackeep"].close()  # flushes

    if backend_overrides:  # a Redis that restarted empty must not reset the count
        import redis

        client = redis.Redis.from_url(backend_overrides["REDIS_URL"])
        client.delete(f"{backend_overrides['KEY_PREFIX']}:counter:views:note:9")
        client.close()
    second = make_app(**backend_overrides)
    counters = second.extensions["trackeep"].capabilities.counters
    with second.app_context():
        assert counters.get("views:note:9") == 5
        assert counters.increment("views:note:9") == 6


@pytest.mark.sqlite_only  # PostgreSQL has no write-ahead file of ours to fold
def test_closing_checkpoints_the_sqlite_log(make_app):
    app = make_app()
    state = app.extensions["trackeep"]
    path = state.db.database
    with app.app_context():
        for n in range(50):
            state.capabilities.sessions.create(user_id=n, ttl=60)
    state.close()
    wal = path + "-wal"
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0

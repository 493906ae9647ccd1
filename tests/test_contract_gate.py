"""The request-gate contract (a session read and a rate limit in one step), run against the
memory gate and the Redis gate; and, through the app, that an API request with a session
costs one Redis round trip before its view."""

from __future__ import annotations

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions, bearer

from trackeep_desktop.capabilities.gate import Gate, Limit, RedisGate


@pytest.fixture
def parts(backend):
    sessions = backend.make("sessions")
    limiter = backend.make("rate_limiter")
    gate = RedisGate(sessions, limiter) if backend.name == "redis" else Gate(sessions, limiter)
    return gate, sessions, limiter


SIGNED_IN = Limit("ui", "session:abc:ui", 3, 60)
ANONYMOUS = Limit("general", "1.2.3.4:general", 2, 60)


def test_a_live_session_is_read_and_counted_on_the_signed_in_limit(parts):
    gate, sessions, limiter = parts
    session = sessions.create(7, 3600, {"csrf": "x"})
    first = gate.admit(session["id"], SIGNED_IN, ANONYMOUS)
    assert first.session == sessions.get(session["id"])
    assert first.session["user_id"] == 7
    assert first.counted is SIGNED_IN
    assert (first.result.allowed, first.result.remaining) == (True, 2)
    results = [gate.admit(session["id"], SIGNED_IN, ANONYMOUS).result for _ in range(3)]
    assert [r.allowed for r in results] == [True, True, False]
    assert results[-1].retry_after > 0
    # The anonymous limit was never touched.
    assert limiter.peek_sliding(ANONYMOUS.key, ANONYMOUS.limit, 60).remaining == 2


@pytest.mark.parametrize("session_id", ["no-such-session", "x" * 10_000, ""])
def test_an_unknown_session_counts_on_the_anonymous_limit_only(parts, session_id):
    gate, _, limiter = parts
    answers = [gate.admit(session_id, SIGNED_IN, ANONYMOUS) for _ in range(3)]
    assert [a.session for a in answers] == [None, None, None]
    assert {a.counted for a in answers} == {ANONYMOUS}
    assert [a.result.allowed for a in answers] == [True, True, False]
    assert limiter.peek_sliding(SIGNED_IN.key, SIGNED_IN.limit, 60).remaining == 3


def test_a_deleted_session_is_gone_at_once(parts):
    gate, sessions, _ = parts
    session = sessions.create(7, 3600)
    sessions.delete(session["id"])
    assert gate.admit(session["id"], SIGNED_IN, ANONYMOUS).session is None


def test_the_window_slides(parts, backend):
    gate, sessions, _ = parts
    session = sessions.create(7, 3600)
    for _ in range(3):
        gate.admit(session["id"], SIGNED_IN, ANONYMOUS)
    assert not gate.admit(session["id"], SIGNED_IN, ANONYMOUS).result.allowed
    backend.advance(61)
    assert gate.admit(session["id"], SIGNED_IN, ANONYMOUS).result.allowed


def test_bad_limits_are_refused(parts):
    gate, sessions, _ = parts
    session = sessions.create(7, 3600)
    with pytest.raises(ValueError, match="limit"):
        gate.admit(session["id"], Limit("ui", "k", 0, 60), ANONYMOUS)


def test_the_redis_gate_restores_a_session_only_the_durable_copy_holds(make_app, redis_url,
                                                                       key_prefix):
    app = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, **GENEROUS_LIMITS)
    caps = app.extensions["trackeep"].capabilities
    token, _ = AuthActions(app).register_owner()
    caps.redis.delete(f"{key_prefix}:session:{token}")  # Redis lost it; the database has it
    me = app.test_client().get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.get_json()
    assert caps.redis.exists(f"{key_prefix}:session:{token}")  # put back


def test_an_api_request_with_a_session_makes_one_redis_round_trip_before_its_view(
        make_app, redis_url, key_prefix):
    app = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, **GENEROUS_LIMITS)
    caps = app.extensions["trackeep"].capabilities
    token, _ = AuthActions(app).register_owner()
    client = app.test_client()
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200  # warm
    sent: list[tuple] = []
    original = caps.redis.execute_command

    def counting(*args, **options):
        sent.append(args)
        return original(*args, **options)

    caps.redis.execute_command = counting
    try:
        me = client.get("/api/v1/auth/me", headers=bearer(token))
    finally:
        caps.redis.execute_command = original
    assert me.status_code == 200
    assert [args[0] for args in sent] == ["EVALSHA"], sent

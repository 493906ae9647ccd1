"""The request gate: what an API request needs before its view, its session and its rate
limit, in one step, which with Redis is one round trip.

An API request carrying a session (a cookie, or a bearer session token) reads that session
and counts one hit on a rate limit. Done one after the other that is two Redis round trips
per request, the largest part of what Redis mode cost over embedded mode in the request
path (issue 17). :meth:`Gate.admit` does both: with Redis, one Lua script reads the session
key and runs the sliding window (the same body as
:data:`~trackeep_desktop.capabilities.ratelimit.SLIDING_WINDOW_BODY`) on the limit of a
signed-in client when the session exists, else on the anonymous client's limit. So a made-up
cookie counts against the anonymous limit and never creates a window of its own.

A session missing from Redis may still be alive in the durable copy (after Redis lost its
data): the gate then reads it through the session store, which restores it; that one
request was counted on the anonymous limit, the next finds the session in Redis.

Without Redis, and while Redis is down, the gate makes the two calls on the session store
and the rate limiter, which have their own fallbacks (:mod:`.fallback`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from trackeep_desktop.capabilities.base import RateLimiter, RateLimitResult, SessionStore
from trackeep_desktop.capabilities.ratelimit import (
    SLIDING_WINDOW_BODY,
    check_sliding,
    sliding_result,
)

if TYPE_CHECKING:
    from .fallback import RedisMonitor
    from .ratelimit import RedisRateLimiter
    from .sessions import RedisSessionStore


@dataclasses.dataclass(frozen=True)
class Limit:
    """One sliding-window limit: ``limit`` hits per ``window`` seconds on ``key``."""

    name: str
    key: str
    limit: int
    window: float


@dataclasses.dataclass(frozen=True)
class Admission:
    """What the gate found: the session (None if there is none), the limit that was counted
    (``signed_in`` or ``anonymous``) and its result."""

    session: dict | None
    counted: Limit
    result: RateLimitResult


class Gate:
    """The two calls in a row, on any session store and rate limiter."""

    backend = "memory"

    def __init__(self, sessions: SessionStore, limiter: RateLimiter):
        self.sessions = sessions
        self.limiter = limiter

    def admit(self, session_id: str, signed_in: Limit, anonymous: Limit) -> Admission:
        """Read the session ``session_id``; count one hit on ``signed_in`` if it exists,
        else on ``anonymous``."""
        session = self.sessions.get(session_id)
        counted = signed_in if session is not None else anonymous
        result = self.limiter.hit_sliding(counted.key, counted.limit, counted.window)
        return Admission(session, counted, result)


#: KEYS: the session key, the window of the signed-in limit, the window of the anonymous
#: limit. ARGV: now, then window and limit of each (signed-in first), a unique member prefix.
#: Returns the sliding window's reply, then the session's JSON (or nil) and 1 when the
#: signed-in limit was counted.
GATE_LUA = """
local session = redis.call('GET', KEYS[1])
local key, window, limit
if session then
    key, window, limit = KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3])
else
    key, window, limit = KEYS[3], tonumber(ARGV[4]), tonumber(ARGV[5])
end
local now_text = ARGV[1]
local now = tonumber(ARGV[1])
local cost = 1
local member = ARGV[6]
local dry = '0'
""" + SLIDING_WINDOW_BODY + """
result[5] = session
result[6] = session and 1 or 0
return result
"""


class RedisGate(Gate):
    """The session read and the limit in one Lua script (one round trip)."""

    backend = "redis"

    def __init__(self, sessions: RedisSessionStore, limiter: RedisRateLimiter):
        super().__init__(sessions, limiter)
        self.redis_sessions = sessions
        self.redis_limiter = limiter
        self._script = limiter.client.register_script(GATE_LUA)

    def admit(self, session_id: str, signed_in: Limit, anonymous: Limit) -> Admission:
        for limit in (signed_in, anonymous):
            check_sliding(limit.limit, limit.window, 1)
        now = self.redis_limiter.clock.now()
        session_key = self.redis_sessions.session_key(session_id)
        if session_key is None:  # not even shaped like a session id
            result = self.redis_limiter.hit_sliding(anonymous.key, anonymous.limit,
                                                    anonymous.window)
            return Admission(None, anonymous, result)
        reply = self._script(
            keys=[session_key, self.redis_limiter.window_key(signed_in.key),
                  self.redis_limiter.window_key(anonymous.key)],
            args=[repr(now), repr(float(signed_in.window)), signed_in.limit,
                  repr(float(anonymous.window)), anonymous.limit,
                  self.redis_limiter.new_member(now)])
        raw, as_signed_in = reply[4], reply[5] == 1
        counted = signed_in if as_signed_in else anonymous
        result = sliding_result(reply, counted.limit, counted.window, now)
        session: dict | None
        if raw is not None:
            session = self.redis_sessions.public_record(json.loads(raw))
        else:  # perhaps alive in the durable copy
            session = self.redis_sessions.read_durable(session_id)
        return Admission(session, counted, result)


class FallbackGate(Gate):
    """The Redis gate, or the two calls on the fallback wrappers while Redis is down."""

    backend = "redis"

    def __init__(self, primary: RedisGate, sessions: SessionStore, limiter: RateLimiter,
                 monitor: RedisMonitor):
        super().__init__(sessions, limiter)
        self.primary = primary
        self.monitor = monitor

    def admit(self, session_id: str, signed_in: Limit, anonymous: Limit) -> Admission:
        return self.monitor.run(
            "rate_limiter",
            lambda: self.primary.admit(session_id, signed_in, anonymous),
            lambda: Gate.admit(self, session_id, signed_in, anonymous))

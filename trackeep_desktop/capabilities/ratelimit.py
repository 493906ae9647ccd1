"""The rate-limiter capability: sliding windows and token buckets, in memory or in Redis.

A sliding window counts the hits of the last ``window`` seconds: a hit at ``t`` counts until
``t + window`` (excluded). A token bucket holds up to ``capacity`` tokens refilled continuously
at ``refill_per_second``; a missing bucket is full. Refused hits change nothing. Time always
comes from the injected clock, in Redis too (it is passed to the Lua scripts).

Redis keys: ``tk:rl:{key}`` (sorted set of hit times) and ``tk:rl:{key}:bucket`` (hash).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import threading

from trackeep_desktop.capabilities.base import Health, RateLimiter, RateLimitResult, ping_health
from trackeep_desktop.capabilities.keys import Keyspace
from trackeep_desktop.clock import SystemClock


def check_sliding(limit: int, window: float, cost: int) -> None:
    """Raise ValueError for sliding-window arguments no hit could ever satisfy."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if not window > 0:
        raise ValueError(f"window must be positive, not {window}")
    if not 1 <= cost <= limit:
        raise ValueError(f"cost must be between 1 and the limit ({limit}), not {cost}")


def check_bucket(capacity: int, refill_per_second: float, cost: int) -> None:
    """Raise ValueError for token-bucket arguments no hit could ever satisfy."""
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, not {capacity}")
    if not refill_per_second > 0:
        raise ValueError(f"refill_per_second must be positive, not {refill_per_second}")
    if not 1 <= cost <= capacity:
        raise ValueError(f"cost must be between 1 and the capacity ({capacity}), not {cost}")


def bucket_result(
    allowed: bool, tokens: float, capacity: int, refill_per_second: float, cost: int
) -> RateLimitResult:
    """The answer for a bucket holding ``tokens`` after this hit."""
    retry_after = 0.0 if allowed else (cost - tokens) / refill_per_second
    return RateLimitResult(
        allowed=allowed,
        limit=capacity,
        remaining=int(tokens),
        retry_after=max(0.0, retry_after),
        reset_after=max(0.0, (capacity - tokens) / refill_per_second),
    )


# ------------------------------------------------------------------------------------ memory


@dataclasses.dataclass
class _Window:
    window: float
    hits: collections.deque  # hit times, oldest first


@dataclasses.dataclass
class _Bucket:
    tokens: float
    updated: float
    capacity: int
    refill_per_second: float

    def tokens_at(self, now: float) -> float:
        elapsed = max(0.0, now - self.updated)
        return min(self.capacity, self.tokens + elapsed * self.refill_per_second)


class MemoryRateLimiter(RateLimiter):
    """Limits kept in dicts under one lock.

    Keys whose hits have all left their window, and buckets that are full again, are pruned
    every so often (after as many calls as there are keys, at least ``PRUNE_EVERY``), so memory
    stays proportional to the keys in use.
    """

    backend = "memory"

    #: The fewest calls between two pruning sweeps.
    PRUNE_EVERY = 1000

    def __init__(self, clock=None):
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._calls_until_prune = self.PRUNE_EVERY

    def hit_sliding(self, key: str, limit: int, window: float, cost: int = 1) -> RateLimitResult:
        """Count ``cost`` hits now if they fit under ``limit`` in the last ``window`` seconds."""
        return self._sliding(key, limit, window, cost, dry=False)

    def peek_sliding(self, key: str, limit: int, window: float) -> RateLimitResult:
        """Whether one hit would fit now, counting nothing."""
        return self._sliding(key, limit, window, 1, dry=True)

    def _sliding(self, key: str, limit: int, window: float, cost: int,
                 dry: bool) -> RateLimitResult:
        check_sliding(limit, window, cost)
        now = self.clock.now()
        with self._lock:
            self._maybe_prune(now)
            state = self._windows.get(key)
            if state is None:
                state = self._windows[key] = _Window(window, collections.deque())
            state.window = window
            hits = state.hits
            while hits and hits[0] <= now - window:
                hits.popleft()
            allowed = len(hits) + cost <= limit
            if allowed:
                if not dry:
                    hits.extend([now] * cost)
                retry_after = 0.0
            else:
                # The hit fits once the oldest len + cost - limit hits have left the window.
                retry_after = hits[len(hits) + cost - limit - 1] + window - now
            reset_after = hits[-1] + window - now if hits else 0.0
            count = len(hits)
        return RateLimitResult(allowed, limit, max(0, limit - count), retry_after, reset_after)

    def hit_bucket(
        self, key: str, capacity: int, refill_per_second: float, cost: int = 1
    ) -> RateLimitResult:
        """Take ``cost`` tokens now if the bucket holds that many."""
        check_bucket(capacity, refill_per_second, cost)
        now = self.clock.now()
        with self._lock:
            self._maybe_prune(now)
            bucket = self._buckets.get(key)
            tokens = capacity if bucket is None else min(capacity, bucket.tokens_at(now))
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[key] = _Bucket(tokens, now, capacity, refill_per_second)
        return bucket_result(allowed, tokens, capacity, refill_per_second, cost)

    def reset(self, key: str) -> None:
        """Forget the key's window and bucket."""
        with self._lock:
            self._windows.pop(key, None)
            self._buckets.pop(key, None)

    def __len__(self) -> int:
        """How many keys hold state (windows plus buckets), pruned or not."""
        with self._lock:
            return len(self._windows) + len(self._buckets)

    def prune(self) -> int:
        """Drop windows with no hit left and buckets full again; return how many."""
        now = self.clock.now()
        with self._lock:
            return self._prune(now)

    def check(self) -> Health:
        """Always ok: there is nothing to fail."""
        return Health(self.backend, "ok")

    def _maybe_prune(self, now: float) -> None:
        """Prune when due; the caller holds the lock."""
        self._calls_until_prune -= 1
        if self._calls_until_prune <= 0:
            self._prune(now)
            live = len(self._windows) + len(self._buckets)
            self._calls_until_prune = max(self.PRUNE_EVERY, live)

    def _prune(self, now: float) -> int:
        stale_windows = [
            key for key, state in self._windows.items()
            if not state.hits or state.hits[-1] <= now - state.window
        ]
        stale_buckets = [
            key for key, bucket in self._buckets.items() if bucket.tokens_at(now) >= bucket.capacity
        ]
        for key in stale_windows:
            del self._windows[key]
        for key in stale_buckets:
            del self._buckets[key]
        return len(stale_windows) + len(stale_buckets)


# ------------------------------------------------------------------------------------- Redis


#: The sliding window itself, on the Lua locals ``key``, ``now``, ``window``, ``limit``,
#: ``cost``, ``member`` (a unique member prefix) and ``dry`` ("1": only look, count nothing).
#: Leaves ``{allowed, count after the hit, score of the hit that must leave first (or nil),
#: newest score (or nil)}`` in ``result``; scores stay strings so no precision is lost.
#: Shared with :mod:`trackeep_desktop.capabilities.gate`, whose script runs it too.
SLIDING_WINDOW_BODY = """
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
local blocking = false
if count + cost <= limit then
    if dry ~= '1' then
        for i = 1, cost do
            redis.call('ZADD', key, now_text, member .. ':' .. i)
        end
        count = count + cost
    end
    allowed = 1
else
    local index = count + cost - limit - 1
    blocking = redis.call('ZRANGE', key, index, index, 'WITHSCORES')[2]
end
local newest = false
if count > 0 then
    newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
end
local result = {allowed, count, blocking, newest}
"""

#: KEYS: the sorted set. ARGV: now, window (s), limit, cost, a unique member prefix, and
#: "1" to only look (count nothing). Returns the ``result`` of :data:`SLIDING_WINDOW_BODY`.
SLIDING_WINDOW_LUA = """
local key = KEYS[1]
local now_text = ARGV[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local member = ARGV[5]
local dry = ARGV[6]
""" + SLIDING_WINDOW_BODY + "return result\n"


def sliding_result(reply, limit: int, window: float, now: float) -> RateLimitResult:
    """A :data:`SLIDING_WINDOW_BODY` reply ``{allowed, count, blocking, newest}`` as a
    :class:`RateLimitResult`."""
    allowed, count, blocking, newest = reply[:4]
    retry_after = 0.0 if blocking is None else max(0.0, float(blocking) + window - now)
    reset_after = 0.0 if newest is None else max(0.0, float(newest) + window - now)
    return RateLimitResult(
        bool(allowed), limit, max(0, limit - int(count)), retry_after, reset_after
    )


#: KEYS: the hash {tokens, ts}. ARGV: capacity, refill per second, cost, now.
#: Returns {allowed, tokens left as a string}; the key expires when the bucket would be full.
TOKEN_BUCKET_LUA = """
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = capacity
if state[1] and state[2] then
    local elapsed = math.max(0, now - tonumber(state[2]))
    tokens = math.min(capacity, tonumber(state[1]) + elapsed * rate)
end
local allowed = 0
if tokens >= cost then
    tokens = tokens - cost
    allowed = 1
end
redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'ts', ARGV[4])
redis.call('PEXPIRE', key, math.max(1, math.ceil((capacity - tokens) / rate * 1000)))
return {allowed, string.format('%.17g', tokens)}
"""


class RedisRateLimiter(RateLimiter):
    """Limits in Redis, each check one Lua script call (atomic across processes).

    ``client`` is a ``redis.Redis`` with ``decode_responses=True``. Redis errors propagate.
    """

    backend = "redis"

    def __init__(self, client, keyspace: Keyspace, clock=None):
        self.client = client
        self.keyspace = keyspace
        self.clock = clock or SystemClock()
        self._sliding = client.register_script(SLIDING_WINDOW_LUA)
        self._bucket = client.register_script(TOKEN_BUCKET_LUA)
        # Members of a window must be unique even for hits at the same instant.
        self._member_prefix = os.urandom(6).hex()
        self._member_counter = itertools.count()

    def window_key(self, key: str) -> str:
        """The sorted set of a sliding window: ``tk:rl:{key}``."""
        return self.keyspace.key("rl", key)

    def bucket_key(self, key: str) -> str:
        """The hash of a token bucket: ``tk:rl:{key}:bucket``."""
        return self.keyspace.key("rl", key, "bucket")

    def hit_sliding(self, key: str, limit: int, window: float, cost: int = 1) -> RateLimitResult:
        """Count ``cost`` hits now if they fit under ``limit`` in the last ``window`` seconds."""
        return self._run_sliding(key, limit, window, cost, dry=False)

    def peek_sliding(self, key: str, limit: int, window: float) -> RateLimitResult:
        """Whether one hit would fit now, counting nothing (the same script, told to look)."""
        return self._run_sliding(key, limit, window, 1, dry=True)

    def _run_sliding(self, key: str, limit: int, window: float, cost: int,
                     dry: bool) -> RateLimitResult:
        check_sliding(limit, window, cost)
        now = self.clock.now()
        reply = self._sliding(
            keys=[self.window_key(key)],
            args=[repr(now), repr(float(window)), limit, cost, self.new_member(now),
                  "1" if dry else "0"],
        )
        return sliding_result(reply, limit, window, now)

    def new_member(self, now: float) -> str:
        """A member prefix no other hit of any process uses."""
        return f"{now!r}:{self._member_prefix}:{next(self._member_counter)}"

    def hit_bucket(
        self, key: str, capacity: int, refill_per_second: float, cost: int = 1
    ) -> RateLimitResult:
        """Take ``cost`` tokens now if the bucket holds that many."""
        check_bucket(capacity, refill_per_second, cost)
        now = self.clock.now()
        allowed, tokens = self._bucket(
            keys=[self.bucket_key(key)],
            args=[capacity, repr(float(refill_per_second)), cost, repr(now)],
        )
        return bucket_result(bool(allowed), float(tokens), capacity, refill_per_second, cost)

    def reset(self, key: str) -> None:
        """Delete the key's window and bucket (one UNLINK)."""
        self.client.unlink(self.window_key(key), self.bucket_key(key))

    def check(self) -> Health:
        """Ok if Redis answers PING, else ``fallback`` with the error; never raises."""
        return ping_health(self.client, self.backend)

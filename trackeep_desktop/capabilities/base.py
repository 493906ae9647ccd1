"""The six capabilities: one small interface each, a memory and a Redis implementation each.

Every implementation is thread-safe and atomic per call: memory ones guard their state with a
lock, Redis ones use single commands or Lua scripts (no read-then-write across round trips).
Redis implementations let ``redis.exceptions.RedisError`` (and ``OSError``) propagate; the
fallback wrappers in :mod:`trackeep_desktop.capabilities.fallback` decide what an outage means.

Values given to the cache, sessions and pub/sub must be JSON-serializable: every
implementation stores JSON, so a value read back is a copy, never the object that was stored.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Health:
    """The state of one capability as ``/health`` shows it.

    ``state`` is ``ok``, ``degraded`` (working, but not as configured) or ``fallback``
    (Redis configured but failing; the capability runs on its fallback path).
    """

    backend: str
    state: str = "ok"
    detail: str = ""


def ping_health(client, backend: str = "redis") -> Health:
    """A Redis implementation's health: ok if Redis answers PING, else ``fallback``."""
    try:
        client.ping()
    except Exception as exc:  # the contract: check() must not raise
        return Health(backend, "fallback", detail=str(exc))
    return Health(backend, "ok")


class Capability(abc.ABC):
    """What every capability has."""

    #: ``"memory"`` or ``"redis"``.
    backend: str = ""

    @abc.abstractmethod
    def check(self) -> Health:
        """Return the capability's health; must not raise."""


# --------------------------------------------------------------------------------- sessions


class SessionBackup(abc.ABC):
    """The durable copy of sessions (the database): sessions survive restarts and outages."""

    @abc.abstractmethod
    def save(self, session: dict, expires_at: float) -> None:
        """Insert or replace one session record."""

    @abc.abstractmethod
    def load(self, session_id: str, now: float) -> dict | None:
        """Return the session record unless it is missing or expired at ``now``."""

    @abc.abstractmethod
    def extend(self, session_id: str, last_active: float, expires_at: float) -> None:
        """Record activity and a new expiry for one session."""

    @abc.abstractmethod
    def delete(self, session_ids: Iterable[str]) -> None:
        """Delete the given sessions (missing ones are ignored)."""

    @abc.abstractmethod
    def list_for_user(self, user_id: int, now: float) -> list[dict]:
        """Every live session record of one user."""


class SessionStore(Capability):
    """Server-side sessions: ``tk:session:{id}`` plus the index ``tk:user:sessions:{user_id}``.

    A session is a dict with at least ``id``, ``user_id``, ``created_at``, ``last_active`` and
    ``ttl`` (seconds, sliding), plus whatever the caller put in ``data``.
    """

    @abc.abstractmethod
    def create(self, user_id: int, ttl: int, data: dict | None = None) -> dict:
        """Create a session with a fresh random id (at least 256 bits) and return it."""

    @abc.abstractmethod
    def get(self, session_id: str) -> dict | None:
        """Return the live session, or None if it is unknown, expired or deleted."""

    @abc.abstractmethod
    def touch(self, session_id: str, data: dict | None = None) -> dict | None:
        """Slide the expiry to ``now + ttl``, set ``last_active`` (and merge ``data``).

        Returns the updated session, or None if it no longer exists.
        """

    @abc.abstractmethod
    def delete(self, session_id: str) -> bool:
        """Delete one session; True if it existed."""

    @abc.abstractmethod
    def list_for_user(self, user_id: int) -> list[dict]:
        """The user's live sessions, most recently active first."""

    @abc.abstractmethod
    def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        """Delete every session of a user except ``keep``; return how many were deleted."""


# ------------------------------------------------------------------------------------ cache


@dataclasses.dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class Cache(Capability):
    """A TTL cache of JSON values under ``tk:cache:...``; memory one is LRU-bounded."""

    @abc.abstractmethod
    def get(self, key: str) -> Any | None:
        """The value, or None on a miss (counts a hit or a miss)."""

    @abc.abstractmethod
    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove one key; True if it existed."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``; return how many."""

    @abc.abstractmethod
    def generation(self, namespace: str) -> int:
        """The current generation number of a namespace (0 when never bumped)."""

    @abc.abstractmethod
    def bump_generation(self, namespace: str) -> int:
        """Increment a namespace's generation; return the new one. Keys built with the old
        generation are then never read again and age out by TTL or LRU."""

    def get_or_set(self, key: str, compute: Callable[[], Any], ttl: float) -> Any:
        """Return the cached value, or compute, store and return it."""
        value = self.get(key)
        if value is None:
            value = compute()
            if value is not None:
                self.set(key, value, ttl)
        return value

    @abc.abstractmethod
    def stats(self) -> CacheStats:
        """Hits and misses counted by this process since start."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove every cache entry (only this application's keys)."""


# ---------------------------------------------------------------------------- rate limiter


@dataclasses.dataclass(frozen=True)
class RateLimitResult:
    """The answer of one rate-limit check.

    ``remaining`` is what is left after this hit; ``retry_after`` (seconds) is 0 when allowed,
    else when the next hit can succeed; ``reset_after`` is when the limit is fully restored.
    """

    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    reset_after: float


class RateLimiter(Capability):
    """Sliding-window and token-bucket limits under ``tk:rl:...``."""

    @abc.abstractmethod
    def hit_sliding(self, key: str, limit: int, window: float, cost: int = 1) -> RateLimitResult:
        """Count ``cost`` hits at now if fewer than ``limit`` fall in the last ``window``
        seconds (a refused hit is not counted)."""

    @abc.abstractmethod
    def peek_sliding(self, key: str, limit: int, window: float) -> RateLimitResult:
        """Whether one more hit would fit under ``limit`` in the last ``window`` seconds,
        counting nothing (a limit on failures checks before the attempt, counts after)."""

    @abc.abstractmethod
    def hit_bucket(
        self, key: str, capacity: int, refill_per_second: float, cost: int = 1
    ) -> RateLimitResult:
        """Take ``cost`` tokens from a bucket of ``capacity`` refilled continuously."""

    @abc.abstractmethod
    def reset(self, key: str) -> None:
        """Forget every hit of ``key`` (both kinds)."""


# ------------------------------------------------------------------------------ leaderboard


class Leaderboard(Capability):
    """Ranked scores per board (``tk:challenge:{id}:leaderboard``), O(log N) updates.

    Ordering is Redis ZREVRANGE's: higher score first, equal scores by member descending.
    Ranks are 1-based.
    """

    @abc.abstractmethod
    def set_score(self, board: str, member: str, score: float) -> None:
        """Set a member's score (adding the member if new)."""

    @abc.abstractmethod
    def increment(self, board: str, member: str, delta: float) -> float:
        """Add ``delta`` to a member's score (0 if new); return the new score."""

    @abc.abstractmethod
    def top(self, board: str, n: int, offset: int = 0) -> list[tuple[str, float]]:
        """The best ``n`` members after skipping ``offset``, with their scores."""

    @abc.abstractmethod
    def rank(self, board: str, member: str) -> int | None:
        """The member's 1-based rank, or None if absent."""

    @abc.abstractmethod
    def score(self, board: str, member: str) -> float | None:
        """The member's score, or None if absent."""

    @abc.abstractmethod
    def remove(self, board: str, member: str) -> bool:
        """Remove a member; True if it was there."""

    @abc.abstractmethod
    def size(self, board: str) -> int:
        """How many members the board has."""

    @abc.abstractmethod
    def clear(self, board: str) -> None:
        """Remove the whole board (to rebuild it from the database)."""


# --------------------------------------------------------------------------------- counters


class CounterBackup(abc.ABC):
    """The durable copy of counters (the database)."""

    @abc.abstractmethod
    def load(self, name: str) -> int:
        """The last flushed value of a counter (0 if never flushed)."""

    @abc.abstractmethod
    def save(self, values: dict[str, int]) -> None:
        """Store absolute values for the given counters, in one transaction."""


class Counters(Capability):
    """Integer counters (``tk:counter:views:{type}:{id}``) flushed to the database.

    A counter's value is its durable value plus every increment since; ``flush`` writes the
    values changed since the last flush so they survive a restart (and a Redis restart).
    """

    @abc.abstractmethod
    def increment(self, name: str, delta: int = 1) -> int:
        """Add ``delta``; return the new value."""

    @abc.abstractmethod
    def get(self, name: str) -> int:
        """The current value (0 for a counter never incremented)."""

    @abc.abstractmethod
    def flush(self) -> int:
        """Write changed counters to the backup; return how many were written."""


# ---------------------------------------------------------------------------------- pub/sub


class Subscription(abc.ABC):
    """A handle returned by :meth:`PubSub.subscribe`."""

    @abc.abstractmethod
    def unsubscribe(self) -> None:
        """Stop delivery to this subscriber (idempotent)."""


class PubSub(Capability):
    """Publish JSON messages to channels (``messages:{id}``, ``notifications:{user_id}``).

    ``subscribe`` takes a channel name or a glob pattern (``tk:messages:*``): a pattern is
    any name containing ``*``, ``?`` or ``[``. The callback gets ``(channel, message)`` on a
    background thread (Redis) or the publisher's thread (memory) and must not block; an
    exception in one callback is logged and never reaches the publisher or other callbacks.
    With Redis every process subscribed through the same Redis receives every message.
    Channel names are given without the key prefix (``messages:42``, ``messages:*``); the
    Redis implementation adds it (``tk:messages:42``) and strips it before callbacks.
    """

    @abc.abstractmethod
    def publish(self, channel: str, message: Any) -> None:
        """Send ``message`` to every subscriber of ``channel`` (and matching patterns)."""

    @abc.abstractmethod
    def subscribe(
        self, channel_or_pattern: str, callback: Callable[[str, Any], None]
    ) -> Subscription:
        """Deliver matching messages to ``callback`` until unsubscribed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop background threads and drop every subscription."""


def is_pattern(name: str) -> bool:
    """True if ``name`` is a glob pattern for :meth:`PubSub.subscribe`."""
    return any(c in name for c in "*?[")


INTERFACES: dict[str, type[Capability]] = {
    "sessions": SessionStore,
    "cache": Cache,
    "rate_limiter": RateLimiter,
    "leaderboard": Leaderboard,
    "counters": Counters,
    "pubsub": PubSub,
}

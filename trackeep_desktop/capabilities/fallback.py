"""What each capability does when Redis is configured but fails at run time.

The fallback table of docs/architecture.md, as this program implements it:

=============  ===========================================================================
sessions       the durable copy in the database serves every read and write; nobody is
               logged out. Redis copies of sessions changed or deleted during the outage
               are evicted when it comes back, so a revoked session cannot return and a
               changed one is re-read from the database.
cache          skipped: reads miss, writes are dropped. When Redis comes back the whole
               cache namespace is cleared, since invalidations during the outage were lost.
rate limiter   falls back to an in-process memory limiter (limits then hold per instance
               instead of across instances) rather than to no limit at all: a login form
               must not become brute-forceable because Redis restarted.
leaderboard    unavailable (:class:`CapabilityUnavailable`, an API answers 503); boards are
               derived from the database and the rebuild hooks (the rebuilders registered
               in :class:`~.leaderboard.LeaderboardRebuilders`) run when Redis comes back.
counters       increments are kept in process as deltas and added to Redis on recovery (or
               to the database at shutdown if Redis is still down); reads add the local
               delta to the durable value.
pub/sub        local only: messages reach subscribers of this process.
=============  ===========================================================================

One :class:`RedisMonitor` per Redis client tracks the state: the first failure of a
capability logs one warning for it, a background probe pings Redis with exponential back-off
(:meth:`RedisMonitor.probe` is one such attempt, which tests call directly), and the recovery
logs one line and runs the recovery hooks. While Redis is down no request
waits on it: every wrapper goes straight to its fallback path.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from trackeep_desktop.capabilities.base import (
    Cache,
    CacheStats,
    Counters,
    Health,
    Leaderboard,
    PubSub,
    RateLimiter,
    RateLimitResult,
    SessionBackup,
    SessionStore,
    Subscription,
)
from trackeep_desktop.clock import SystemClock
from trackeep_desktop.errors import Unavailable

if TYPE_CHECKING:
    from .pubsub import MemoryPubSub, RedisPubSub
    from .sessions import RedisSessionStore

log = logging.getLogger("trackeep.redis")

#: Errors that mean "Redis is not answering", as opposed to a bug in a call.
try:  # redis is an optional dependency; without it nothing here wraps anything.
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import TimeoutError as _RedisTimeoutError

    OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
        _RedisConnectionError, _RedisTimeoutError, ConnectionError, TimeoutError, OSError)
except ImportError:  # pragma: no cover
    OUTAGE_ERRORS = (ConnectionError, TimeoutError, OSError)


class CapabilityUnavailable(Unavailable, RuntimeError):
    """The capability cannot answer now (Redis down and no fallback makes sense): an API
    answers 503 with ``Retry-After: 5``."""

    retry_after = 5


class RedisMonitor:
    """Redis up/down state shared by every capability using one client."""

    def __init__(self, client, *, min_backoff: float = 0.1, max_backoff: float = 5.0,
                 observe_latency: Callable[[str, float], None] | None = None,
                 probe_in_background: bool = True):
        self.client = client
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        #: False leaves recovery to explicit :meth:`probe` calls (deterministic tests).
        self.probe_in_background = probe_in_background
        self.observe_latency = observe_latency or (lambda capability, seconds: None)
        self._lock = threading.Lock()
        self._up = True
        self._capabilities: dict[str, str] = {}
        self._recovery_hooks: list[Callable[[], None]] = []
        self._probe_thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.outages = 0
        self.last_error = ""

    @property
    def up(self) -> bool:
        return self._up

    def on_recovery(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` (in the probe thread) each time Redis comes back."""
        self._recovery_hooks.append(hook)

    def register(self, capability: str, fallback_behaviour: str) -> None:
        """Declare a capability that runs on this Redis, and what it does without it."""
        self._capabilities[capability] = fallback_behaviour

    def failed(self, capability: str, exc: BaseException) -> None:
        """Record that ``capability`` saw Redis fail; every registered capability switches
        to its fallback (one warning each) and a probe starts looking for recovery."""
        with self._lock:
            self.last_error = f"{type(exc).__name__}: {exc}"
            if not self._up:
                return
            self._up = False
            self.outages += 1
            if (self.probe_in_background and self._probe_thread is None
                    and not self._closed.is_set()):
                self._probe_thread = threading.Thread(
                    target=self._probe, name="trackeep-redis-probe", daemon=True)
                self._probe_thread.start()
        for name, behaviour in self._capabilities.items():
            log.warning("Redis failed (%s): %s switches to its fallback: %s",
                        self.last_error, name, behaviour)

    def run(self, capability: str, op: Callable[[], Any], fallback: Callable[[], Any]) -> Any:
        """Run ``op`` against Redis, or ``fallback`` while Redis is down or when op fails."""
        if not self._up:
            return fallback()
        started = time.perf_counter()
        try:
            result = op()
        except OUTAGE_ERRORS as exc:
            self.failed(capability, exc)
            return fallback()
        self.observe_latency(capability, time.perf_counter() - started)
        return result

    def probe(self) -> bool:
        """Try once to come back: ping Redis, run the recovery hooks, switch every capability
        back to Redis. True if Redis is up afterwards; False (and still down) if the ping or
        a hook met Redis failing again."""
        if self._up:
            return True
        try:
            self.client.ping()
        except OUTAGE_ERRORS as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        for hook in self._recovery_hooks:
            try:
                hook()
            except OUTAGE_ERRORS as exc:  # failed again during recovery: keep probing
                self.last_error = f"{type(exc).__name__}: {exc}"
                return False
            except Exception:
                log.exception("a Redis recovery hook failed")
        with self._lock:
            self._up = True
        log.warning("Redis recovered; back on Redis: %s", ", ".join(self._capabilities))
        return True

    def _probe(self) -> None:
        delay = self.min_backoff
        while not self._closed.wait(delay):
            if self.probe():
                with self._lock:
                    if self._up:  # not failed again meanwhile (failed() saw this thread)
                        self._probe_thread = None
                        return
                delay = self.min_backoff
                continue
            delay = min(delay * 2, self.max_backoff)
        with self._lock:
            self._probe_thread = None

    def health(self, capability: str, backend: str) -> Health:
        if self._up:
            return Health(backend, "ok")
        return Health(backend, "fallback", self._capabilities.get(capability, ""))

    def close(self) -> None:
        self._closed.set()
        thread = self._probe_thread
        if thread is not None:
            thread.join(timeout=2)


# ---------------------------------------------------------------------------------- sessions


class DatabaseSessionStore(SessionStore):
    """Sessions straight from the durable copy; what sessions run on while Redis is down."""

    backend = "database"

    def __init__(self, backup: SessionBackup, clock=None):
        self.backup = backup
        self.clock = clock or SystemClock()

    def create(self, user_id: int, ttl: int, data: dict | None = None) -> dict:
        now = self.clock.now()
        session = {**(data or {}), "id": secrets.token_urlsafe(32), "user_id": user_id,
                   "created_at": now, "last_active": now, "ttl": ttl}
        self.backup.save(session, now + ttl)
        return session

    def get(self, session_id: str) -> dict | None:
        return self.backup.load(session_id, self.clock.now())

    def touch(self, session_id: str, data: dict | None = None) -> dict | None:
        now = self.clock.now()
        session = self.backup.load(session_id, now)
        if session is None:
            return None
        session["last_active"] = now
        if data:
            session.update(data)
            self.backup.save(session, now + session["ttl"])
        else:
            self.backup.extend(session_id, now, now + session["ttl"])
        return session

    def delete(self, session_id: str) -> bool:
        existed = self.backup.load(session_id, self.clock.now()) is not None
        self.backup.delete([session_id])
        return existed

    def list_for_user(self, user_id: int) -> list[dict]:
        sessions = self.backup.list_for_user(user_id, self.clock.now())
        return sorted(sessions, key=lambda s: s["last_active"], reverse=True)

    def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        ids = [s["id"] for s in self.backup.list_for_user(user_id, self.clock.now())
               if s["id"] != keep]
        self.backup.delete(ids)
        return len(ids)

    def check(self) -> Health:
        return Health(self.backend, "ok")


class FallbackSessionStore(SessionStore):
    """Redis sessions, served from the database while Redis is down."""

    def __init__(self, primary: RedisSessionStore, backup: SessionBackup, monitor: RedisMonitor,
                 clock=None):
        self.primary = primary
        self.secondary = DatabaseSessionStore(backup, clock)
        self.monitor = monitor
        self.backend = primary.backend
        monitor.register("sessions", "served from the durable copy in the database")
        self._changed: set[str] = set()  # sessions written while Redis was down
        self._changed_lock = threading.Lock()
        monitor.on_recovery(self._evict_changed)

    def _run(self, name: str, *args):
        return self.monitor.run(
            "sessions",
            lambda: getattr(self.primary, name)(*args),
            lambda: getattr(self.secondary, name)(*args),
        )

    def _remember_changed(self, ids: Iterable[str]) -> None:
        if not self.monitor.up:
            with self._changed_lock:
                self._changed.update(ids)

    def _evict_changed(self) -> None:
        with self._changed_lock:
            changed = list(self._changed)
        for session_id in changed:
            self.primary.evict(session_id)
            with self._changed_lock:
                self._changed.discard(session_id)

    def create(self, user_id: int, ttl: int, data: dict | None = None) -> dict:
        return self._run("create", user_id, ttl, data)

    def get(self, session_id: str) -> dict | None:
        return self._run("get", session_id)

    def touch(self, session_id: str, data: dict | None = None) -> dict | None:
        result = self._run("touch", session_id, data)
        if data:
            self._remember_changed([session_id])
        return result

    def delete(self, session_id: str) -> bool:
        result = self._run("delete", session_id)
        self._remember_changed([session_id])
        return result

    def list_for_user(self, user_id: int) -> list[dict]:
        return self._run("list_for_user", user_id)

    def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        ids = [s["id"] for s in self.list_for_user(user_id) if s["id"] != keep]
        result = self._run("delete_for_user", user_id, keep)
        self._remember_changed(ids)
        return result

    def check(self) -> Health:
        return self.monitor.health("sessions", self.backend)


# ------------------------------------------------------------------------------------- cache


class FallbackCache(Cache):
    """A Redis cache that is skipped while Redis is down and cleared when it comes back."""

    def __init__(self, primary: Cache, monitor: RedisMonitor):
        self.primary = primary
        self.monitor = monitor
        self.backend = primary.backend
        monitor.register("cache", "skipped, every read goes to the database")
        self._skipped = CacheStats()
        monitor.on_recovery(primary.clear)

    def _miss(self):
        self._skipped.misses += 1
        return None

    def get(self, key: str) -> Any | None:
        return self.monitor.run("cache", lambda: self.primary.get(key), self._miss)

    def set(self, key: str, value: Any, ttl: float) -> None:
        self.monitor.run("cache", lambda: self.primary.set(key, value, ttl), lambda: None)

    def delete(self, key: str) -> bool:
        return self.monitor.run("cache", lambda: self.primary.delete(key), lambda: False)

    def delete_prefix(self, prefix: str) -> int:
        return self.monitor.run("cache", lambda: self.primary.delete_prefix(prefix), lambda: 0)

    def generation(self, namespace: str) -> int:
        return self.monitor.run("cache", lambda: self.primary.generation(namespace), lambda: 0)

    def bump_generation(self, namespace: str) -> int:
        return self.monitor.run(
            "cache", lambda: self.primary.bump_generation(namespace), lambda: 0)

    def stats(self) -> CacheStats:
        inner = self.primary.stats()
        return CacheStats(hits=inner.hits, misses=inner.misses + self._skipped.misses)

    def clear(self) -> None:
        self.monitor.run("cache", self.primary.clear, lambda: None)

    def check(self) -> Health:
        return self.monitor.health("cache", self.backend)


# ------------------------------------------------------------------------------ rate limiter


class FallbackRateLimiter(RateLimiter):
    """Redis limits, held per instance by a memory limiter while Redis is down."""

    def __init__(self, primary: RateLimiter, secondary: RateLimiter, monitor: RedisMonitor):
        self.primary = primary
        self.secondary = secondary
        self.monitor = monitor
        self.backend = primary.backend
        monitor.register("rate_limiter", "limits held per instance in memory")

    def hit_sliding(self, key: str, limit: int, window: float, cost: int = 1) -> RateLimitResult:
        return self.monitor.run(
            "rate_limiter",
            lambda: self.primary.hit_sliding(key, limit, window, cost),
            lambda: self.secondary.hit_sliding(key, limit, window, cost),
        )

    def peek_sliding(self, key: str, limit: int, window: float) -> RateLimitResult:
        return self.monitor.run(
            "rate_limiter",
            lambda: self.primary.peek_sliding(key, limit, window),
            lambda: self.secondary.peek_sliding(key, limit, window),
        )

    def hit_bucket(self, key: str, capacity: int, refill_per_second: float,
                   cost: int = 1) -> RateLimitResult:
        return self.monitor.run(
            "rate_limiter",
            lambda: self.primary.hit_bucket(key, capacity, refill_per_second, cost),
            lambda: self.secondary.hit_bucket(key, capacity, refill_per_second, cost),
        )

    def reset(self, key: str) -> None:
        self.secondary.reset(key)
        self.monitor.run("rate_limiter", lambda: self.primary.reset(key), lambda: None)

    def check(self) -> Health:
        return self.monitor.health("rate_limiter", self.backend)


# ------------------------------------------------------------------------------- leaderboard


class FallbackLeaderboard(Leaderboard):
    """Redis leaderboards; unavailable while Redis is down, rebuilt by hooks on recovery.

    The rebuilders of ``rebuilders`` (a :class:`~.leaderboard.LeaderboardRebuilders`) run
    against the Redis boards when Redis comes back: writes made during the outage were
    refused, and a restarted Redis may have lost every board.
    """

    def __init__(self, primary: Leaderboard, monitor: RedisMonitor, rebuilders=None):
        from trackeep_desktop.capabilities.leaderboard import LeaderboardRebuilders

        self.primary = primary
        self.monitor = monitor
        self.backend = primary.backend
        self.rebuilders = rebuilders if rebuilders is not None else LeaderboardRebuilders()
        monitor.register("leaderboard", "unavailable until Redis returns")
        monitor.on_recovery(self._rebuild)

    def _rebuild(self) -> None:
        report = self.rebuilders.run(self.primary)  # the monitor is still "down" meanwhile
        if report.board_count or report.failed:
            log.warning("Leaderboards rebuilt from the database after the recovery: %d board(s)%s",
                        report.board_count,
                        f"; failed: {', '.join(report.failed)}" if report.failed else "")

    def _run(self, name: str, *args):
        def unavailable():
            raise CapabilityUnavailable("leaderboards are unavailable while Redis is down")

        return self.monitor.run(
            "leaderboard", lambda: getattr(self.primary, name)(*args), unavailable)

    def set_score(self, board: str, member: str, score: float) -> None:
        return self._run("set_score", board, member, score)

    def increment(self, board: str, member: str, delta: float) -> float:
        return self._run("increment", board, member, delta)

    def top(self, board: str, n: int, offset: int = 0) -> list[tuple[str, float]]:
        return self._run("top", board, n, offset)

    def rank(self, board: str, member: str) -> int | None:
        return self._run("rank", board, member)

    def score(self, board: str, member: str) -> float | None:
        return self._run("score", board, member)

    def remove(self, board: str, member: str) -> bool:
        return self._run("remove", board, member)

    def size(self, board: str) -> int:
        return self._run("size", board)

    def clear(self, board: str) -> None:
        return self._run("clear", board)

    def check(self) -> Health:
        return self.monitor.health("leaderboard", self.backend)


# ---------------------------------------------------------------------------------- counters


class FallbackCounters(Counters):
    """Redis counters; increments during an outage are kept as deltas and replayed."""

    def __init__(self, primary: Counters, backup, monitor: RedisMonitor):
        self.primary = primary
        self.backup = backup
        self.monitor = monitor
        self.backend = primary.backend
        monitor.register("counters", "increments kept in process until Redis returns")
        self._deltas: dict[str, int] = {}
        self._lock = threading.Lock()
        monitor.on_recovery(self._replay)

    def _add_delta(self, name: str, delta: int) -> int:
        with self._lock:
            if delta:
                self._deltas[name] = self._deltas.get(name, 0) + delta
            pending = self._deltas.get(name, 0)
        base = self.backup.load(name) if self.backup is not None else 0
        return base + pending

    def _replay(self) -> None:
        with self._lock:
            deltas, self._deltas = self._deltas, {}
        try:
            for name, delta in list(deltas.items()):
                self.primary.increment(name, delta)
                del deltas[name]
        finally:
            if deltas:  # Redis failed mid-replay: keep what was not replayed
                with self._lock:
                    for name, delta in deltas.items():
                        self._deltas[name] = self._deltas.get(name, 0) + delta

    def increment(self, name: str, delta: int = 1) -> int:
        return self.monitor.run(
            "counters",
            lambda: self.primary.increment(name, delta),
            lambda: self._add_delta(name, delta),
        )

    def get(self, name: str) -> int:
        return self.monitor.run(
            "counters", lambda: self.primary.get(name), lambda: self._add_delta(name, 0))

    def flush(self) -> int:
        return self.monitor.run("counters", self.primary.flush, lambda: 0)

    def flush_deltas_to_backup(self) -> int:
        """At shutdown with Redis still down: add pending deltas to the durable values."""
        with self._lock:
            deltas, self._deltas = self._deltas, {}
        if not deltas or self.backup is None:
            return 0
        self.backup.save({name: self.backup.load(name) + d for name, d in deltas.items()})
        return len(deltas)

    def check(self) -> Health:
        return self.monitor.health("counters", self.backend)


# ----------------------------------------------------------------------------------- pub/sub


class _PairSubscription(Subscription):
    def __init__(self, local: Subscription, remote: Subscription | None):
        self.local = local
        self.remote = remote
        self.active = True

    def unsubscribe(self) -> None:
        self.active = False
        self.local.unsubscribe()
        if self.remote is not None:
            self.remote.unsubscribe()


class FallbackPubSub(PubSub):
    """Redis pub/sub that becomes local-only (this process's subscribers) while Redis is down.

    Every subscriber is registered with both the Redis and the local implementation: a message
    goes out through exactly one of them, so it is delivered once.
    """

    def __init__(self, primary: RedisPubSub, local: MemoryPubSub, monitor: RedisMonitor):
        self.primary = primary
        self.local = local
        self.monitor = monitor
        self.backend = primary.backend
        monitor.register("pubsub", "local only, other instances miss messages")
        self._unregistered: list[tuple[str, Callable, _PairSubscription]] = []
        self._lock = threading.Lock()
        monitor.on_recovery(self._register_on_redis)

    def _register_on_redis(self) -> None:
        """Subscribe on Redis what was subscribed while Redis was down."""
        with self._lock:
            waiting, self._unregistered = self._unregistered, []
        for i, (name, callback, pair) in enumerate(waiting):
            if not pair.active:
                continue
            try:
                pair.remote = self.primary.subscribe(name, callback)
            except BaseException:
                with self._lock:
                    self._unregistered.extend(waiting[i:])
                raise

    @property
    def published(self) -> int:
        return self.primary.published + self.local.published

    @property
    def delivered(self) -> int:
        return self.primary.delivered + self.local.delivered

    def publish(self, channel: str, message: Any) -> None:
        self.monitor.run(
            "pubsub",
            lambda: self.primary.publish(channel, message),
            lambda: self.local.publish(channel, message),
        )

    def subscribe(self, channel_or_pattern: str, callback) -> Subscription:
        pair = _PairSubscription(self.local.subscribe(channel_or_pattern, callback), None)
        pair.remote = self.monitor.run(
            "pubsub", lambda: self.primary.subscribe(channel_or_pattern, callback), lambda: None)
        if pair.remote is None:
            with self._lock:
                self._unregistered.append((channel_or_pattern, callback, pair))
        return pair

    def close(self) -> None:
        self.primary.close()
        self.local.close()

    def check(self) -> Health:
        return self.monitor.health("pubsub", self.backend)

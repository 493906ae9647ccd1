"""Sessions, cache, rate limiter, leaderboard, counters and pub/sub: Redis or embedded.

:func:`build_capabilities` is the one place that chooses, from the Redis URL, at start-up:
no URL gives the embedded memory implementations; ``redis://``, ``rediss://``, ``unix://``
and ``redis+sentinel://`` give the Redis ones, sharing one client and wrapped in the
fallbacks of :mod:`.fallback`; anything else is a configuration error.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from trackeep_desktop.capabilities.base import (
    Cache,
    CounterBackup,
    Counters,
    Health,
    Leaderboard,
    PubSub,
    RateLimiter,
    SessionBackup,
    SessionStore,
)
from trackeep_desktop.capabilities.keys import Keyspace
from trackeep_desktop.clock import SystemClock
from trackeep_desktop.storage.db import ConfigurationError

if TYPE_CHECKING:
    import redis

    from .fallback import RedisMonitor

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")


@dataclasses.dataclass
class Capabilities:
    """The six capabilities of one application instance."""

    sessions: SessionStore
    cache: Cache
    rate_limiter: RateLimiter
    leaderboard: Leaderboard
    counters: Counters
    pubsub: PubSub
    keyspace: Keyspace
    redis: redis.Redis | None = None  # the shared client, when configured
    monitor: RedisMonitor | None = None  # when configured

    @property
    def backend(self) -> str:
        return "redis" if self.redis is not None else "memory"

    def health(self) -> dict[str, Health]:
        return {name: getattr(self, name).check() for name in CAPABILITY_NAMES}

    def close(self) -> None:
        """Flush counters and stop background threads; safe to call twice."""
        try:
            self.counters.flush()
        except Exception:
            log.exception("could not flush counters at shutdown")
        flush_deltas = getattr(self.counters, "flush_deltas_to_backup", None)
        if flush_deltas is not None:
            try:
                flush_deltas()
            except Exception:
                log.exception("could not save counter increments made during a Redis outage")
        self.pubsub.close()
        if self.monitor is not None:
            self.monitor.close()
        if self.redis is not None:
            self.redis.close()


CAPABILITY_NAMES = ("sessions", "cache", "rate_limiter", "leaderboard", "counters", "pubsub")


def redis_client_from_url(url: str):
    """A redis-py client for ``url`` with short timeouts, so an outage fails fast."""
    import redis

    options = dict(decode_responses=True, socket_connect_timeout=1.0, socket_timeout=2.0,
                   health_check_interval=15, retry_on_timeout=False)
    parsed = urlparse(url)
    if parsed.scheme == "redis+sentinel":
        from redis.sentinel import Sentinel

        hosts = [(h.split(":")[0], int(h.split(":")[1]) if ":" in h else 26379)
                 for h in parsed.netloc.split("@")[-1].split(",")]
        service = parsed.path.strip("/").split("/")[0] or "mymaster"
        sentinel = Sentinel(hosts, socket_timeout=1.0)
        return sentinel.master_for(service, password=parsed.password, **options)
    # A blocking pool: past max_connections a caller waits for a free connection instead of
    # failing (redis-py's default pool raises MaxConnectionsError past 100).
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=128, timeout=5, **options)
    return redis.Redis(connection_pool=pool)


def build_capabilities(
    redis_url: str | None,
    *,
    key_prefix: str = "tk",
    session_backup: SessionBackup | None = None,
    counter_backup: CounterBackup | None = None,
    clock=None,
    cache_max_entries: int = 10_000,
    cache_max_bytes: int = 64 * 1024 * 1024,
    redis_required: bool = False,
    observe_redis_latency: Callable[[str, float], None] | None = None,
) -> Capabilities:
    """Build all six capabilities for ``redis_url`` (None or "" means embedded)."""
    if redis_url and urlparse(redis_url).scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"unsupported Redis URL {redis_url!r}: use redis://HOST:PORT/DB, rediss://, "
            "unix:///path/to/socket or redis+sentinel://HOST:PORT/SERVICE")
    from trackeep_desktop.capabilities.cache import MemoryCache
    from trackeep_desktop.capabilities.counters import MemoryCounters
    from trackeep_desktop.capabilities.leaderboard import MemoryLeaderboard
    from trackeep_desktop.capabilities.pubsub import MemoryPubSub
    from trackeep_desktop.capabilities.ratelimit import MemoryRateLimiter
    from trackeep_desktop.capabilities.sessions import MemorySessionStore

    clock = clock or SystemClock()
    keyspace = Keyspace(key_prefix)
    if not redis_url:
        return Capabilities(
            sessions=MemorySessionStore(clock=clock, backup=session_backup),
            cache=MemoryCache(clock=clock, max_entries=cache_max_entries,
                              max_bytes=cache_max_bytes),
            rate_limiter=MemoryRateLimiter(clock=clock),
            leaderboard=MemoryLeaderboard(clock=clock),
            counters=MemoryCounters(clock=clock, backup=counter_backup),
            pubsub=MemoryPubSub(clock=clock),
            keyspace=keyspace,
        )

    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            "TRACKEEP_REDIS_URL is set but the redis package is not installed: "
            "pip install 'trackeep-desktop[redis]'") from exc

    from trackeep_desktop.capabilities.cache import RedisCache
    from trackeep_desktop.capabilities.counters import RedisCounters
    from trackeep_desktop.capabilities.fallback import (
        FallbackCache,
        FallbackCounters,
        FallbackLeaderboard,
        FallbackPubSub,
        FallbackRateLimiter,
        FallbackSessionStore,
        RedisMonitor,
    )
    from trackeep_desktop.capabilities.leaderboard import RedisLeaderboard
    from trackeep_desktop.capabilities.pubsub import RedisPubSub
    from trackeep_desktop.capabilities.ratelimit import RedisRateLimiter
    from trackeep_desktop.capabilities.sessions import RedisSessionStore

    client = redis_client_from_url(redis_url)
    monitor = RedisMonitor(client, observe_latency=observe_redis_latency)
    redis_args = dict(client=client, keyspace=keyspace, clock=clock)
    if session_backup is None:
        raise ConfigurationError("Redis sessions need a durable backup (the database)")
    capabilities = Capabilities(
        sessions=FallbackSessionStore(
            RedisSessionStore(backup=session_backup, **redis_args), session_backup, monitor,
            clock),
        cache=FallbackCache(RedisCache(**redis_args), monitor),
        rate_limiter=FallbackRateLimiter(
            RedisRateLimiter(**redis_args), MemoryRateLimiter(clock=clock), monitor),
        leaderboard=FallbackLeaderboard(RedisLeaderboard(**redis_args), monitor),
        counters=FallbackCounters(
            RedisCounters(backup=counter_backup, **redis_args), counter_backup, monitor),
        pubsub=FallbackPubSub(RedisPubSub(**redis_args), MemoryPubSub(clock=clock), monitor),
        keyspace=keyspace,
        redis=client,
        monitor=monitor,
    )
    try:
        client.ping()
    except Exception as exc:
        if redis_required:
            capabilities.close()
            raise ConfigurationError(
                f"Redis at {redis_url} does not answer ({exc}) and TRACKEEP_REDIS_REQUIRED is "
                "set") from exc
        monitor.failed("start-up", exc)  # start on the fallbacks; the probe finds Redis later
    return capabilities

"""Sessions, cache, rate limiter, leaderboard, counters and pub/sub: Redis or embedded.

:func:`build_capabilities` is the one place that chooses, from the Redis URL, at start-up:
no URL gives the embedded memory implementations; ``redis://``, ``rediss://``, ``unix://``
and ``redis+sentinel://`` give the Redis ones, sharing one client and wrapped in the
fallbacks of :mod:`.fallback`; anything else is a configuration error.

The URL is read once, by :func:`parse_redis_url`, into a :class:`RedisTarget`; the one client
is built from it and everything else that talks to Redis (Socket.IO's message queue
included, see :mod:`trackeep_desktop.realtime.queue`) goes through the capabilities, so one
:class:`~.fallback.RedisMonitor` sees every failure.
"""

from __future__ import annotations

import dataclasses
import logging
import select
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

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
from trackeep_desktop.capabilities.gate import Gate
from trackeep_desktop.capabilities.keys import Keyspace
from trackeep_desktop.capabilities.leaderboard import LeaderboardRebuilders, RebuildReport
from trackeep_desktop.clock import SystemClock
from trackeep_desktop.storage.db import ConfigurationError

if TYPE_CHECKING:
    import redis

    from .fallback import RedisMonitor

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")
SENTINEL_PORT = 26379
URL_FORMS = ("redis://HOST:PORT/DB, rediss://HOST:PORT/DB, unix:///path/to/socket?db=DB or "
             "redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]")


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """Where Redis is, as read from a Redis URL by :func:`parse_redis_url`.

    ``redis``, ``rediss`` and ``unix`` URLs are handed to redis-py as they are (it reads
    host, port, socket path, database, password and TLS options from them); a
    ``redis+sentinel`` URL names the sentinels, the monitored service and the database.
    """

    url: str
    scheme: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted (``rediss://``)."""
        return self.scheme == "rediss"

    def describe(self) -> str:
        """The URL without its password, for logs and error messages."""
        parsed = urlparse(self.url)
        if parsed.password is None:
            return self.url
        netloc = parsed.netloc.split("@", 1)[1]
        user = f"{parsed.username}:***@" if parsed.username else ":***@"
        return parsed._replace(netloc=user + netloc).geturl()


def parse_redis_url(url: str) -> RedisTarget:
    """Read a Redis URL once; a scheme or a shape this program does not accept is a
    :class:`ConfigurationError` naming the accepted forms."""
    parsed = urlparse(url)
    if parsed.scheme not in REDIS_SCHEMES:
        raise ConfigurationError(f"unsupported Redis URL {url!r}: use {URL_FORMS}")
    if parsed.scheme != "redis+sentinel":
        if parsed.scheme == "unix" and not parsed.path:
            raise ConfigurationError(f"Redis URL {url!r} names no socket: use {URL_FORMS}")
        return RedisTarget(url=url, scheme=parsed.scheme)
    sentinels = []
    for host_port in parsed.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = host_port.partition(":")
        if not host or (port and not port.isdigit()):
            raise ConfigurationError(f"bad sentinel address {host_port!r} in {url!r}: "
                                     f"use {URL_FORMS}")
        sentinels.append((host, int(port) if port else SENTINEL_PORT))
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ConfigurationError(f"bad sentinel path in {url!r}: use {URL_FORMS}")
    return RedisTarget(
        url=url, scheme=parsed.scheme, sentinels=tuple(sentinels),
        service=parts[0] if parts else "mymaster", db=int(parts[1]) if len(parts) == 2 else 0,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None)


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
    #: A request's session and rate limit in one step (one round trip with Redis).
    gate: Gate = dataclasses.field(default=None)  # type: ignore[assignment]  # __post_init__
    redis: redis.Redis | None = None  # the shared client, when configured
    monitor: RedisMonitor | None = None  # when configured
    redis_target: RedisTarget | None = None  # where that client connects
    #: Functions that rewrite leaderboards from the database; run on Redis recovery and
    #: by ``trackeep leaderboards rebuild``.
    leaderboard_rebuilders: LeaderboardRebuilders = dataclasses.field(
        default_factory=LeaderboardRebuilders)

    def __post_init__(self) -> None:
        if self.gate is None:
            self.gate = Gate(self.sessions, self.rate_limiter)

    @property
    def backend(self) -> str:
        return "redis" if self.redis is not None else "memory"

    def rebuild_leaderboards(self) -> RebuildReport:
        """Run every registered leaderboard rebuilder now (see :class:`LeaderboardRebuilders`)."""
        return self.leaderboard_rebuilders.run(self.leaderboard)

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


class _QuietReadCheck:
    """A redis-py connection whose "is there stray data?" check never yields under gevent.

    redis-py checks every connection it takes from the pool with ``can_read(0)``, a poll of
    the socket with no wait. After ``gevent.monkey.patch_all()`` that poll is gevent's, which
    goes through the hub (a watcher and a switch) even with no wait: measured, it made a
    round trip 230-255 µs instead of 86-146 µs (bench/redis_gevent.py). The same check done
    with the operating system's own poll costs a syscall and never switches; when the socket
    is readable (stray data, or the server closed it) redis-py's own check decides as before.
    """

    def can_read(self, timeout: float = 0) -> bool:
        sock = getattr(self, "_sock", None)
        reader = getattr(getattr(self, "_parser", None), "_reader", None)  # hiredis only
        if timeout != 0 or sock is None or reader is None:
            return super().can_read(timeout)  # type: ignore[misc]
        if reader.has_data() or (hasattr(sock, "pending") and sock.pending()):
            return True
        poller = _OS_POLL()
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return False
        return super().can_read(timeout)  # type: ignore[misc]


def _os_poll():
    """``select.poll`` as the operating system has it, even after gevent patched it."""
    try:
        from gevent import monkey

        return monkey.get_original("select", "poll")
    except ImportError:
        return select.poll


_OS_POLL = _os_poll()


def _quiet_read_checks(pool) -> None:
    """Give the pool's future connections :class:`_QuietReadCheck` (when gevent patched
    ``select``; otherwise redis-py's own check already is the plain syscall)."""
    try:
        from gevent import monkey
    except ImportError:
        return
    if not monkey.is_module_patched("select"):
        return
    base = pool.connection_class
    if not issubclass(base, _QuietReadCheck):
        pool.connection_class = type(f"Quiet{base.__name__}", (_QuietReadCheck, base), {})


def redis_client_from_url(url: str | RedisTarget):
    """A redis-py client for ``url`` (or a parsed target) with short timeouts, so an outage
    fails fast."""
    import redis

    target = url if isinstance(url, RedisTarget) else parse_redis_url(url)
    options = dict(decode_responses=True, socket_connect_timeout=1.0, socket_timeout=2.0,
                   health_check_interval=15, retry_on_timeout=False)
    if target.scheme == "redis+sentinel":
        from redis.sentinel import Sentinel

        sentinel = Sentinel(list(target.sentinels), socket_timeout=1.0,
                            socket_connect_timeout=1.0)
        client = sentinel.master_for(target.service, db=target.db, username=target.username,
                                     password=target.password, **options)
        _quiet_read_checks(client.connection_pool)
        return client
    # A blocking pool: past max_connections a caller waits for a free connection instead of
    # failing (redis-py's default pool raises MaxConnectionsError past 100).
    pool = redis.BlockingConnectionPool.from_url(target.url, max_connections=128, timeout=5,
                                                 **options)
    _quiet_read_checks(pool)
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
    redis_client=None,
) -> Capabilities:
    """Build all six capabilities for ``redis_url`` (None or "" means embedded).

    ``redis_client`` replaces the client built from the URL (tests pass one they can cut
    off); the URL is still parsed and kept as :attr:`Capabilities.redis_target`.
    """
    target = parse_redis_url(redis_url) if redis_url else None
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
    from trackeep_desktop.capabilities.gate import FallbackGate, RedisGate
    from trackeep_desktop.capabilities.leaderboard import RedisLeaderboard
    from trackeep_desktop.capabilities.pubsub import RedisPubSub
    from trackeep_desktop.capabilities.ratelimit import RedisRateLimiter
    from trackeep_desktop.capabilities.sessions import RedisSessionStore

    assert target is not None  # a Redis URL was given
    client = redis_client if redis_client is not None else redis_client_from_url(target)
    monitor = RedisMonitor(client, observe_latency=observe_redis_latency)
    rebuilders = LeaderboardRebuilders()
    redis_args = dict(client=client, keyspace=keyspace, clock=clock)
    if session_backup is None:
        raise ConfigurationError("Redis sessions need a durable backup (the database)")
    redis_sessions = RedisSessionStore(backup=session_backup, **redis_args)
    redis_limiter = RedisRateLimiter(**redis_args)
    sessions = FallbackSessionStore(redis_sessions, session_backup, monitor, clock)
    rate_limiter = FallbackRateLimiter(redis_limiter, MemoryRateLimiter(clock=clock), monitor)
    capabilities = Capabilities(
        sessions=sessions,
        cache=FallbackCache(RedisCache(**redis_args), monitor),
        rate_limiter=rate_limiter,
        gate=FallbackGate(RedisGate(redis_sessions, redis_limiter), sessions, rate_limiter,
                          monitor),
        leaderboard=FallbackLeaderboard(RedisLeaderboard(**redis_args), monitor, rebuilders),
        counters=FallbackCounters(
            RedisCounters(backup=counter_backup, **redis_args), counter_backup, monitor),
        pubsub=FallbackPubSub(RedisPubSub(**redis_args), MemoryPubSub(clock=clock), monitor),
        keyspace=keyspace,
        redis=client,
        monitor=monitor,
        redis_target=target,
        leaderboard_rebuilders=rebuilders,
    )
    try:
        client.ping()
    except Exception as exc:
        if redis_required:
            capabilities.close()
            raise ConfigurationError(
                f"Redis at {target.describe()} does not answer ({exc}) and "
                "TRACKEEP_REDIS_REQUIRED is set") from exc
        monitor.failed("start-up", exc)  # start on the fallbacks; the probe finds Redis later
    return capabilities

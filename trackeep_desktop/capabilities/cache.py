"""The cache capability: an LRU-bounded dict in memory, or plain Redis strings.

Values are stored as compact JSON in both, so a value read back is always a copy. Keys are the
caller's names (``search:42:a7f3d2c9b1e8``); Redis stores them under ``tk:cache:{key}`` and a
namespace's generation under ``tk:cache:gen:{namespace}``, so cache keys starting with ``gen:``
are reserved and refused.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from trackeep_desktop.capabilities.base import Cache, CacheStats, Health, ping_health
from trackeep_desktop.capabilities.keys import Keyspace
from trackeep_desktop.clock import SystemClock

#: Keys under this prefix hold generation numbers, not cached values.
GENERATION_PREFIX = "gen:"

#: How many keys one UNLINK removes while deleting by prefix.
UNLINK_BATCH = 500


def dumps(value: Any) -> str:
    """The compact JSON both implementations store."""
    return json.dumps(value, separators=(",", ":"))


def check_key(key: str) -> None:
    """Refuse keys that would collide with generation numbers."""
    if key.startswith(GENERATION_PREFIX):
        raise ValueError(f"cache keys starting with {GENERATION_PREFIX!r} are reserved: {key!r}")


class _Stats:
    """Thread-safe hit and miss counters."""

    def __init__(self):
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1

    def snapshot(self) -> CacheStats:
        with self._lock:
            return CacheStats(hits=self._hits, misses=self._misses)


class MemoryCache(Cache):
    """An in-process cache: LRU order in an ``OrderedDict``, bounded by entries and bytes.

    An entry weighs ``len(key) + len(json)``; when either bound is exceeded the least recently
    used entries go first. Expired entries are dropped lazily when read (or evicted by LRU).
    """

    backend = "memory"

    def __init__(self, clock=None, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024):
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        self.clock = clock or SystemClock()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()  # key -> (json, expiry)
        self._bytes = 0
        self._generations: dict[str, int] = {}
        self._stats = _Stats()

    @property
    def size_bytes(self) -> int:
        """The weight of every stored entry (expired ones included until dropped)."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: str) -> Any | None:
        """The value, or None on a miss; a hit makes the entry the most recently used."""
        check_key(key)
        now = self.clock.now()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] <= now:
                self._drop(key)
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
        self._stats.count(hit=entry is not None)
        return None if entry is None else json.loads(entry[0])

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds; a value heavier than ``max_bytes`` is not
        stored (and replaces nothing: the key is then absent)."""
        check_key(key)
        text = dumps(value)
        expires_at = self.clock.now() + ttl
        with self._lock:
            self._drop(key)
            if len(key) + len(text) > self.max_bytes:
                return
            self._entries[key] = (text, expires_at)
            self._bytes += len(key) + len(text)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def delete(self, key: str) -> bool:
        """Remove one key; True if it was there and not expired."""
        check_key(key)
        now = self.clock.now()
        with self._lock:
            entry = self._drop(key)
        return entry is not None and entry[1] > now

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``; return how many were live."""
        now = self.clock.now()
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            removed = [self._drop(key) for key in doomed]
        return sum(1 for entry in removed if entry is not None and entry[1] > now)

    def generation(self, namespace: str) -> int:
        """The namespace's generation (0 when never bumped)."""
        with self._lock:
            return self._generations.get(namespace, 0)

    def bump_generation(self, namespace: str) -> int:
        """Increment the namespace's generation and return it."""
        with self._lock:
            self._generations[namespace] = self._generations.get(namespace, 0) + 1
            return self._generations[namespace]

    def stats(self) -> CacheStats:
        """Hits and misses of this cache object."""
        return self._stats.snapshot()

    def clear(self) -> None:
        """Remove every entry and every generation."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._generations.clear()

    def check(self) -> Health:
        """Always ok: there is nothing to fail."""
        return Health(self.backend, "ok")

    def _drop(self, key: str) -> tuple[str, float] | None:
        """Remove one entry and its weight; the caller holds the lock."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(key) + len(entry[0])
        return entry


def glob_escape(text: str) -> str:
    """Escape the characters SCAN's MATCH treats as a glob."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisCache(Cache):
    """Values as JSON strings under ``tk:cache:{key}`` with a millisecond TTL (``SET PX``).

    ``client`` is a ``redis.Redis`` with ``decode_responses=True``. Redis errors propagate.
    """

    backend = "redis"

    def __init__(self, client, keyspace: Keyspace, clock=None):
        self.client = client
        self.keyspace = keyspace
        self.clock = clock or SystemClock()
        self._stats = _Stats()

    def key(self, key: str) -> str:
        """The Redis name of a cache key: ``tk:cache:{key}``."""
        return self.keyspace.key("cache", key)

    def generation_key(self, namespace: str) -> str:
        """The Redis name of a namespace's generation: ``tk:cache:gen:{namespace}``."""
        return self.keyspace.key("cache", "gen", namespace)

    def get(self, key: str) -> Any | None:
        """The value, or None on a miss."""
        check_key(key)
        text = self.client.get(self.key(key))
        self._stats.count(hit=text is not None)
        return None if text is None else json.loads(text)

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (at least one millisecond)."""
        check_key(key)
        self.client.set(self.key(key), dumps(value), px=max(1, int(ttl * 1000)))

    def delete(self, key: str) -> bool:
        """Remove one key; True if it existed."""
        check_key(key)
        return self.client.unlink(self.key(key)) == 1

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` (SCAN + UNLINK, never KEYS)."""
        generations = self.generation_key("")
        return self._unlink_matching(
            glob_escape(self.key(prefix)) + "*", keep=lambda name: name.startswith(generations)
        )

    def generation(self, namespace: str) -> int:
        """The namespace's generation (0 when never bumped)."""
        return int(self.client.get(self.generation_key(namespace)) or 0)

    def bump_generation(self, namespace: str) -> int:
        """Increment the namespace's generation (INCR, no TTL) and return it."""
        return int(self.client.incr(self.generation_key(namespace)))

    def stats(self) -> CacheStats:
        """Hits and misses counted by this process."""
        return self._stats.snapshot()

    def clear(self) -> None:
        """Remove every key under ``tk:cache:``, generations included."""
        self._unlink_matching(glob_escape(self.keyspace.key("cache")) + ":*")

    def check(self) -> Health:
        """Ok if Redis answers PING, else ``fallback`` with the error; never raises."""
        return ping_health(self.client, self.backend)

    def _unlink_matching(self, pattern: str, keep=None) -> int:
        """UNLINK every key matching ``pattern`` in batches; return how many existed."""
        removed = 0
        batch: list[str] = []
        for name in self.client.scan_iter(match=pattern, count=UNLINK_BATCH):
            if keep is not None and keep(name):
                continue
            batch.append(name)
            if len(batch) >= UNLINK_BATCH:
                removed += self.client.unlink(*batch)
                batch = []
        if batch:
            removed += self.client.unlink(*batch)
        return removed

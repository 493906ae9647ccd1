"""Counters (views, downloads) counted in memory or Redis and flushed to the database.

A counter's value is its durable value (the last flush) plus every increment since. The hot
copy starts from the durable value the first time a counter is touched, so losing the hot copy
(a restart of the process or of Redis) loses at most the increments since the last flush,
never the count itself.
"""

from __future__ import annotations

import threading

from trackeep_desktop.capabilities.base import CounterBackup, Counters, Health, ping_health
from trackeep_desktop.capabilities.keys import Keyspace
from trackeep_desktop.clock import SystemClock

#: How many dirty counters one flush round takes from Redis.
FLUSH_BATCH = 1000


class MemoryCounters(Counters):
    """Counters in a dict under one lock, with the set of names changed since the last flush."""

    backend = "memory"

    def __init__(self, clock=None, backup: CounterBackup | None = None):
        self.clock = clock or SystemClock()
        self.backup = backup
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}
        self._dirty: set[str] = set()

    def check(self) -> Health:
        """Always ok: there is nothing to fail."""
        return Health(self.backend, "ok")

    def _durable(self, name: str) -> int:
        return self.backup.load(name) if self.backup is not None else 0

    def increment(self, name: str, delta: int = 1) -> int:
        """Add ``delta``; return the new value."""
        with self._lock:
            if name in self._values:
                return self._add(name, delta)
        base = self._durable(name)  # outside the lock: no database round trip under it
        with self._lock:
            self._values.setdefault(name, base)
            return self._add(name, delta)

    def _add(self, name: str, delta: int) -> int:
        value = self._values[name] + delta
        self._values[name] = value
        if self.backup is not None:
            self._dirty.add(name)
        return value

    def get(self, name: str) -> int:
        """The current value (the durable one for a counter not touched since start)."""
        with self._lock:
            if name in self._values:
                return self._values[name]
        base = self._durable(name)
        with self._lock:
            return self._values.setdefault(name, base)

    def flush(self) -> int:
        """Write every counter changed since the last flush; on failure they stay dirty."""
        if self.backup is None:
            return 0
        with self._lock:
            values = {name: self._values[name] for name in self._dirty}
            self._dirty.clear()
        if not values:
            return 0
        try:
            self.backup.save(values)
        except BaseException:
            with self._lock:
                self._dirty.update(values)
            raise
        return len(values)


# If the counter exists: add ARGV[1], mark ARGV[2] dirty (when ARGV[3] is "1"), return the
# value. Else return nil: the caller loads the durable value and calls _SEED_AND_INCREMENT.
_INCREMENT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[3] == '1' then redis.call('SADD', KEYS[2], ARGV[2]) end
return value
"""

# Start the counter at the durable value ARGV[4] unless another client already did, then
# increment as above.
_SEED_AND_INCREMENT = """
redis.call('SET', KEYS[1], ARGV[4], 'NX')
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[3] == '1' then redis.call('SADD', KEYS[2], ARGV[2]) end
return value
"""


class RedisCounters(Counters):
    """Counters at ``tk:counter:{name}`` with the set of changed names ``tk:counter:dirty``.

    ``client`` is a ``redis.Redis`` with ``decode_responses=True``. Redis errors propagate.
    Counter names must not be ``dirty``.
    """

    backend = "redis"

    def __init__(self, client, keyspace: Keyspace, clock=None,
                 backup: CounterBackup | None = None):
        self.client = client
        self.keyspace = keyspace
        self.clock = clock or SystemClock()
        self.backup = backup
        self._dirty_key = keyspace.key("counter", "dirty")
        self._increment = client.register_script(_INCREMENT)
        self._seed_and_increment = client.register_script(_SEED_AND_INCREMENT)

    def check(self) -> Health:
        """Ok if Redis answers PING, else ``fallback`` with the error; never raises."""
        return ping_health(self.client, self.backend)

    def _key(self, name: str) -> str:
        if name == "dirty":
            raise ValueError("'dirty' is reserved and cannot name a counter")
        return self.keyspace.key("counter", name)

    def increment(self, name: str, delta: int = 1) -> int:
        """Add ``delta`` atomically; return the new value."""
        keys = [self._key(name), self._dirty_key]
        args = [int(delta), name, "1" if self.backup is not None else "0"]
        value = self._increment(keys=keys, args=args)
        if value is None:  # not in Redis (never counted, or Redis lost it): start from the DB
            base = self.backup.load(name) if self.backup is not None else 0
            value = self._seed_and_increment(keys=keys, args=[*args, base])
        return int(value)

    def get(self, name: str) -> int:
        """The value in Redis, else the durable value."""
        value = self.client.get(self._key(name))
        if value is not None:
            return int(value)
        return self.backup.load(name) if self.backup is not None else 0

    def flush(self) -> int:
        """Write the counters changed since the last flush, in batches of ``FLUSH_BATCH``.

        Names are popped from the dirty set before their values are read, so an increment
        racing with the flush marks its counter dirty again. If the backup fails, the batch
        goes back into the dirty set (nothing is lost) and the error propagates.
        """
        if self.backup is None:
            return 0
        written = 0
        budget = self.client.scard(self._dirty_key)  # don't chase increments made meanwhile
        while budget > 0:
            names = self.client.spop(self._dirty_key, min(FLUSH_BATCH, budget))
            if not names:
                break
            budget -= len(names)
            values = self.client.mget([self._key(name) for name in names])
            batch = {n: int(v) for n, v in zip(names, values, strict=True) if v is not None}
            try:
                self.backup.save(batch)
            except BaseException:
                self.client.sadd(self._dirty_key, *names)
                raise
            written += len(batch)
        return written

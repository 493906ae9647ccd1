"""Server-side sessions: a hot copy (memory or Redis) in front of a durable copy (the database).

Both implementations share the rules for the durable copy, in :class:`_BackedSessionStore`:

* ``create`` and ``delete`` write through: the durable copy first, then the hot copy, so a
  failed database write leaves nothing half-done that a client could hold.
* ``touch`` always slides the hot copy's expiry but extends the durable copy only when its
  last write is at least ``touch_write_interval`` seconds old, so a client making a request per
  second does not write the database per request. A touch that changes ``data`` always writes.
* ``get`` reads the hot copy; on a miss it loads the durable copy and puts it back in the hot
  copy with the remaining TTL. That is how sessions survive a restart of the process or of
  Redis.

A record stored in the hot copy carries ``_durable_at`` (when the durable copy was last
written); it never leaves this module.
"""

from __future__ import annotations

import abc
import json
import secrets
import threading

from trackeep_desktop.capabilities.base import Health, SessionBackup, SessionStore, ping_health
from trackeep_desktop.capabilities.keys import Keyspace
from trackeep_desktop.clock import SystemClock

#: Keys a caller's ``data`` may not set: they belong to the session record itself.
RESERVED_KEYS = frozenset({"id", "user_id", "created_at", "last_active", "ttl", "_durable_at"})

#: Session ids longer than this are never ours (ours are 43 characters).
MAX_ID_LENGTH = 64


def new_session_id() -> str:
    """A fresh random session id: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _dumps(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"))


def _public(record: dict) -> dict:
    """The record as callers see it (without the bookkeeping of this module)."""
    record.pop("_durable_at", None)
    return record


def _check_data(data: dict | None) -> dict:
    data = dict(data or {})
    clash = RESERVED_KEYS.intersection(data)
    if clash:
        raise ValueError(f"session data may not set {sorted(clash)}")
    json.dumps(data)  # refuse what cannot be stored before anything is written
    return data


def _valid_id(session_id: object) -> bool:
    return isinstance(session_id, str) and 0 < len(session_id) <= MAX_ID_LENGTH


class _BackedSessionStore(SessionStore):
    """The durable-copy rules; subclasses provide the hot copy (the ``_hot_*`` methods)."""

    def __init__(self, clock=None, backup: SessionBackup | None = None,
                 touch_write_interval: float = 60):
        self.clock = clock or SystemClock()
        self.backup = backup
        self.touch_write_interval = touch_write_interval

    # --------------------------------------------------------------------------- hot copy

    @abc.abstractmethod
    def _hot_get(self, session_id: str) -> dict | None:
        """The live record (with ``_durable_at``), or None."""

    @abc.abstractmethod
    def _hot_put(self, record: dict, ttl: float, only_if_absent: bool) -> None:
        """Store a record for ``ttl`` seconds and index it under its user."""

    @abc.abstractmethod
    def _hot_touch(self, session_id: str, now: float, data: dict,
                   durable_before: float | None) -> tuple[dict, bool] | None:
        """Atomically set ``last_active`` to ``now``, merge ``data`` and slide the expiry.

        If the record's ``_durable_at`` is not after ``durable_before``, set it to ``now``
        and report True: the caller then writes the durable copy. None if the record is gone.
        """

    @abc.abstractmethod
    def _hot_delete(self, records: list[dict]) -> int:
        """Delete records (and their index entries); return how many existed."""

    @abc.abstractmethod
    def _hot_list(self, user_id: int) -> list[dict]:
        """The user's live records."""

    # ---------------------------------------------------------------------------- contract

    def create(self, user_id: int, ttl: int, data: dict | None = None) -> dict:
        """Create a session with a fresh random id and return it."""
        if ttl <= 0:
            raise ValueError("a session ttl must be positive")
        now = self.clock.now()
        record = {**_check_data(data), "id": new_session_id(), "user_id": user_id,
                  "created_at": now, "last_active": now, "ttl": ttl}
        if self.backup is not None:
            self.backup.save(record, now + ttl)
        self._hot_put({**record, "_durable_at": now}, ttl, only_if_absent=False)
        return record

    def get(self, session_id: str) -> dict | None:
        """The live session from the hot copy, else from the durable copy (restoring it)."""
        if not _valid_id(session_id):
            return None
        record = self._hot_get(session_id)
        if record is None:
            record = self._restore(session_id)
        return None if record is None else _public(record)

    def touch(self, session_id: str, data: dict | None = None) -> dict | None:
        """Slide the expiry, set ``last_active`` and merge ``data``; None if gone."""
        data = _check_data(data)
        if not _valid_id(session_id):
            return None
        now = self.clock.now()
        if self.backup is None:
            durable_before = None
        elif data:
            durable_before = float("inf")  # changed data always reaches the durable copy
        else:
            durable_before = now - self.touch_write_interval
        result = self._hot_touch(session_id, now, data, durable_before)
        if result is None and self._restore(session_id) is not None:
            result = self._hot_touch(session_id, now, data, durable_before)
        if result is None:
            return None
        record, write_durable = result
        record = _public(record)
        if write_durable and self.backup is not None:
            expires_at = now + record["ttl"]
            if data:
                self.backup.save(record, expires_at)
            else:
                self.backup.extend(session_id, now, expires_at)
        return record

    def delete(self, session_id: str) -> bool:
        """Delete one session from both copies; True if it existed."""
        if not _valid_id(session_id):
            return False
        record = self._hot_get(session_id)
        existed = False
        if self.backup is not None:
            if record is None:
                existed = self.backup.load(session_id, self.clock.now()) is not None
            self.backup.delete([session_id])
        if record is not None:
            existed = self._hot_delete([record]) > 0 or existed
        return existed

    def list_for_user(self, user_id: int) -> list[dict]:
        """The user's live sessions in either copy, most recently active first."""
        by_id = {r["id"]: _public(r) for r in self._hot_list(user_id)}
        if self.backup is not None:
            for record in self.backup.list_for_user(user_id, self.clock.now()):
                by_id.setdefault(record["id"], _public(record))
        return sorted(by_id.values(), key=lambda r: (r["last_active"], r["id"]), reverse=True)

    def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        """Delete every session of a user except ``keep``; return how many were deleted."""
        doomed = [r for r in self.list_for_user(user_id) if r["id"] != keep]
        if self.backup is not None:
            self.backup.delete([r["id"] for r in doomed])
        self._hot_delete(doomed)
        return len(doomed)

    def read_durable(self, session_id: str) -> dict | None:
        """The session from the durable copy, put back into the hot copy; None if gone
        (the request gate's second step, when the hot copy had no such session)."""
        if not _valid_id(session_id):
            return None
        record = self._restore(session_id)
        return None if record is None else _public(record)

    def evict(self, session_id: str) -> None:
        """Drop the hot copy only: the next read restores the session from the durable
        copy, or finds it gone (used after a Redis outage, when the database moved on)."""
        record = self._hot_get(session_id) if _valid_id(session_id) else None
        if record is not None:
            self._hot_delete([record])

    def _restore(self, session_id: str) -> dict | None:
        """Put a session from the durable copy back into the hot copy; return it or None."""
        if self.backup is None:
            return None
        now = self.clock.now()
        record = self.backup.load(session_id, now)
        if record is None:
            return None
        remaining = record["last_active"] + record["ttl"] - now
        if remaining <= 0:
            return None
        record["_durable_at"] = record["last_active"]
        self._hot_put(record, remaining, only_if_absent=True)
        # A delete that ran between our load and our put removed the durable copy first:
        # look again, so a revoked session is not brought back to life in the hot copy.
        if self.backup.load(session_id, now) is None:
            self._hot_delete([record])
            return None
        return record


class MemorySessionStore(_BackedSessionStore):
    """Sessions in process dicts under one lock; expired ones are dropped when seen and
    swept every ``PRUNE_INTERVAL`` seconds of clock time."""

    backend = "memory"

    #: How often (clock seconds) a write sweeps every expired session away.
    PRUNE_INTERVAL = 60.0

    def __init__(self, clock=None, backup: SessionBackup | None = None,
                 touch_write_interval: float = 60):
        super().__init__(clock, backup, touch_write_interval)
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[int, str, float]] = {}  # id -> (user, json, expiry)
        self._by_user: dict[int, set[str]] = {}
        self._next_prune = 0.0

    def check(self) -> Health:
        """Always ok: there is nothing to fail."""
        return Health(self.backend, "ok")

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    # The helpers below expect the caller to hold the lock.

    def _live(self, session_id: str, now: float) -> dict | None:
        entry = self._sessions.get(session_id)
        if entry is None:
            return None
        if entry[2] <= now:
            self._drop(session_id)
            return None
        return json.loads(entry[1])

    def _drop(self, session_id: str) -> bool:
        entry = self._sessions.pop(session_id, None)
        if entry is None:
            return False
        ids = self._by_user.get(entry[0])
        if ids is not None:
            ids.discard(session_id)
            if not ids:
                del self._by_user[entry[0]]
        return True

    def _store(self, record: dict, expires_at: float, now: float) -> None:
        self._sessions[record["id"]] = (record["user_id"], _dumps(record), expires_at)
        self._by_user.setdefault(record["user_id"], set()).add(record["id"])
        if now >= self._next_prune:
            self._next_prune = now + self.PRUNE_INTERVAL
            for session_id in [s for s, e in self._sessions.items() if e[2] <= now]:
                self._drop(session_id)

    def _hot_get(self, session_id: str) -> dict | None:
        now = self.clock.now()
        with self._lock:
            return self._live(session_id, now)

    def _hot_put(self, record: dict, ttl: float, only_if_absent: bool) -> None:
        now = self.clock.now()
        with self._lock:
            if only_if_absent and self._live(record["id"], now) is not None:
                return
            self._store(record, now + ttl, now)

    def _hot_touch(self, session_id: str, now: float, data: dict,
                   durable_before: float | None) -> tuple[dict, bool] | None:
        with self._lock:
            record = self._live(session_id, now)
            if record is None:
                return None
            record.update(data)
            record["last_active"] = now
            write_durable = (durable_before is not None
                             and record.get("_durable_at", 0) <= durable_before)
            if write_durable:
                record["_durable_at"] = now
            self._store(record, now + record["ttl"], now)
        return record, write_durable

    def _hot_delete(self, records: list[dict]) -> int:
        now = self.clock.now()
        with self._lock:
            return sum(1 for r in records
                       if self._live(r["id"], now) is not None and self._drop(r["id"]))

    def _hot_list(self, user_id: int) -> list[dict]:
        now = self.clock.now()
        with self._lock:
            ids = list(self._by_user.get(user_id, ()))
            records = [self._live(session_id, now) for session_id in ids]
        return [r for r in records if r is not None]


# Remove from the index KEYS[1] each id ARGV[i] whose session key KEYS[i + 1] is gone.
_PRUNE_INDEX = """
local removed = 0
for i, session_id in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    removed = removed + redis.call('SREM', KEYS[1], session_id)
  end
end
return removed
"""


class RedisSessionStore(_BackedSessionStore):
    """Sessions as JSON strings at ``tk:session:{id}`` (PX ttl) with the per-user index set
    ``tk:user:sessions:{user_id}``, which lives as long as its longest session.

    ``client`` is a ``redis.Redis`` with ``decode_responses=True``. Redis errors propagate.
    """

    backend = "redis"

    def __init__(self, client, keyspace: Keyspace, clock=None,
                 backup: SessionBackup | None = None, touch_write_interval: float = 60):
        super().__init__(clock, backup, touch_write_interval)
        self.client = client
        self.keyspace = keyspace
        self._prune_index = client.register_script(_PRUNE_INDEX)

    def check(self) -> Health:
        """Ok if Redis answers PING, else ``fallback`` with the error; never raises."""
        return ping_health(self.client, self.backend)

    def _key(self, session_id: str) -> str:
        return self.keyspace.key("session", session_id)

    def session_key(self, session_id: str) -> str | None:
        """The Redis key of a session, or None when ``session_id`` cannot be one."""
        return self._key(session_id) if _valid_id(session_id) else None

    @staticmethod
    def public_record(record: dict) -> dict:
        """A stored record as callers see it (the request gate reads records itself)."""
        return _public(record)

    def _index(self, user_id: int) -> str:
        return self.keyspace.key("user", "sessions", user_id)

    def _write(self, pipe, record: dict, ttl_ms: int, only_if_absent: bool = False,
               only_if_present: bool = False) -> None:
        """Queue the SET of a record with its index entry on a MULTI pipeline."""
        index = self._index(record["user_id"])
        pipe.set(self._key(record["id"]), _dumps(record), px=ttl_ms, nx=only_if_absent,
                 xx=only_if_present)
        pipe.sadd(index, record["id"])
        # The index must outlive every session in it: give it this TTL if it has none (NX),
        # or if this one is longer (GT). Plain commands, so the MULTI stays one round trip
        # (a script in a pipeline costs redis-py an extra SCRIPT EXISTS). Redis >= 7.0.
        pipe.pexpire(index, ttl_ms, nx=True)
        pipe.pexpire(index, ttl_ms, gt=True)

    def _hot_get(self, session_id: str) -> dict | None:
        raw = self.client.get(self._key(session_id))
        return None if raw is None else json.loads(raw)

    def _hot_put(self, record: dict, ttl: float, only_if_absent: bool) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            self._write(pipe, record, _ms(ttl), only_if_absent=only_if_absent)
            pipe.execute()

    def _hot_touch(self, session_id: str, now: float, data: dict,
                   durable_before: float | None) -> tuple[dict, bool] | None:
        from redis.exceptions import WatchError

        key = self._key(session_id)
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # WATCH makes the read-modify-write atomic: a concurrent touch or
                    # delete aborts our EXEC and we read again (a delete then wins).
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        return None
                    record = json.loads(raw)
                    record.update(data)
                    record["last_active"] = now
                    write_durable = (durable_before is not None
                                     and record.get("_durable_at", 0) <= durable_before)
                    if write_durable:
                        record["_durable_at"] = now
                    pipe.multi()
                    self._write(pipe, record, _ms(record["ttl"]), only_if_present=True)
                    pipe.execute()
                    return record, write_durable
                except WatchError:
                    continue

    def _hot_delete(self, records: list[dict]) -> int:
        if not records:
            return 0
        with self.client.pipeline(transaction=True) as pipe:
            for record in records:
                pipe.delete(self._key(record["id"]))
                pipe.srem(self._index(record["user_id"]), record["id"])
            results = pipe.execute()
        return sum(results[0::2])

    def _hot_list(self, user_id: int) -> list[dict]:
        index = self._index(user_id)
        ids = sorted(self.client.smembers(index))
        if not ids:
            return []
        keys = [self._key(session_id) for session_id in ids]
        raws = self.client.mget(keys)
        gone = [(s, k) for s, k, raw in zip(ids, keys, raws, strict=True) if raw is None]
        if gone:  # expired sessions leave their ids behind: drop those that are still gone
            self._prune_index(keys=[index, *(k for _, k in gone)], args=[s for s, _ in gone])
        return [json.loads(raw) for raw in raws if raw is not None]


def _ms(seconds: float) -> int:
    """A TTL in whole milliseconds, at least 1 (PX 0 is an error)."""
    return max(1, int(seconds * 1000))

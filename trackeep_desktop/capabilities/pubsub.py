"""Publish/subscribe: in process (memory) or across processes through Redis.

Messages travel as JSON, so every callback gets its own copy. Channel names and patterns are
given without the key prefix (``messages:42``, ``messages:*``); patterns follow Redis glob
rules (``fnmatch.fnmatchcase`` in memory). A callback that raises is logged and skipped.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..clock import SystemClock
from .base import Health, PubSub, Subscription, is_pattern
from .keys import Keyspace

log = logging.getLogger(__name__)

Callback = Callable[[str, Any], None]


def _check_channel(channel: str) -> None:
    if is_pattern(channel):
        raise ValueError(f"cannot publish to a pattern: {channel!r}")


class _Counts:
    """The ``published`` and ``delivered`` counters both implementations expose."""

    def __init__(self):
        self._counts_lock = threading.Lock()
        self.published = 0
        self.delivered = 0

    def _count_published(self) -> None:
        with self._counts_lock:
            self.published += 1

    def _deliver(self, callback: Callback, channel: str, payload: str | bytes) -> None:
        """Call one subscriber with its own copy of the message; log what it raises."""
        try:
            callback(channel, json.loads(payload))
        except Exception:
            log.exception("pub/sub subscriber %r failed on channel %s", callback, channel)
            return
        with self._counts_lock:
            self.delivered += 1


class _Subscription(Subscription):
    def __init__(self, owner, name: str, callback: Callback):
        self.owner = owner
        self.name = name
        self.callback = callback

    def unsubscribe(self) -> None:
        """Stop delivery to this subscriber (idempotent)."""
        self.owner._remove(self)


class MemoryPubSub(_Counts, PubSub):
    """Subscribers of this process only; ``publish`` calls them in the publisher's thread."""

    backend = "memory"

    def __init__(self, clock=None):
        super().__init__()
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._subscribers: list[_Subscription] = []

    def check(self) -> Health:
        """Always ok: there is nothing to fail."""
        return Health(self.backend, "ok")

    def publish(self, channel: str, message: Any) -> None:
        """Deliver ``message`` now to every subscriber of ``channel`` or a matching pattern."""
        _check_channel(channel)
        payload = json.dumps(message)
        with self._lock:
            targets = [s for s in self._subscribers
                       if s.name == channel
                       or (is_pattern(s.name) and fnmatch.fnmatchcase(channel, s.name))]
        self._count_published()
        for subscriber in targets:
            self._deliver(subscriber.callback, channel, payload)

    def subscribe(self, channel_or_pattern: str, callback: Callback) -> Subscription:
        """Deliver matching messages to ``callback`` until unsubscribed."""
        subscription = _Subscription(self, channel_or_pattern, callback)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def _remove(self, subscription: _Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def close(self) -> None:
        """Drop every subscription."""
        with self._lock:
            self._subscribers.clear()


class _Ack:
    """Waits for Redis to confirm one SUBSCRIBE or PSUBSCRIBE."""

    def __init__(self):
        self.event = threading.Event()
        self.error: BaseException | None = None

    def done(self, error: BaseException | None = None) -> None:
        self.error = error
        self.event.set()


class RedisPubSub(_Counts, PubSub):
    """Redis channels ``tk:{channel}``, read by one background listener thread.

    One redis-py ``PubSub`` connection carries every subscription of this instance: each
    distinct channel or pattern is subscribed once on Redis, when its first local subscriber
    arrives, and unsubscribed when its last one leaves. ``subscribe`` returns once Redis has
    confirmed the subscription, so a message published right after it is delivered; it raises
    the Redis error if Redis cannot be reached. When the connection breaks later, the listener
    logs one warning, reconnects with exponential back-off (0.1 s doubling to 5 s), subscribes
    everything again and logs the recovery.

    ``client`` is a ``redis.Redis`` with ``decode_responses=True``.
    """

    backend = "redis"

    #: How long the listener blocks on one read (bounds how long ``close`` waits).
    POLL_SECONDS = 0.1
    #: How long ``subscribe`` waits for Redis to confirm.
    SUBSCRIBE_TIMEOUT = 5.0
    BACKOFF_START = 0.1
    BACKOFF_MAX = 5.0

    def __init__(self, client, keyspace: Keyspace, clock=None):
        super().__init__()
        self.client = client
        self.keyspace = keyspace
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[_Subscription]] = {}  # local name -> subscribers
        self._pending: dict[str, _Ack] = {}  # Redis name -> confirmation awaited
        self._pubsub = None  # the redis-py PubSub; replaced only by the listener thread
        self._stale = False  # a command failed on _pubsub: the listener must replace it
        self._failing = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    def check(self) -> Health:
        """Ok if Redis answers PING and the listener is connected; never raises."""
        try:
            self.client.ping()
        except Exception as exc:  # the contract: check() must not raise
            return Health(self.backend, "fallback", detail=str(exc))
        if self._failing:
            return Health(self.backend, "degraded", "the subscriber connection is reconnecting")
        return Health(self.backend, "ok")

    def publish(self, channel: str, message: Any) -> None:
        """Publish ``message`` as JSON on ``tk:{channel}`` to every subscribed process."""
        _check_channel(channel)
        self.client.publish(self.keyspace.key(channel), json.dumps(message))
        self._count_published()

    def subscribe(self, channel_or_pattern: str, callback: Callback) -> Subscription:
        """Deliver matching messages to ``callback`` (on the listener thread) until
        unsubscribed; effective when this returns."""
        name = channel_or_pattern
        redis_name = self.keyspace.key(name)
        subscription = _Subscription(self, name, callback)
        with self._lock:
            if self._closed:
                raise RuntimeError("this RedisPubSub is closed")
            subscribers = self._subscribers.setdefault(name, [])
            subscribers.append(subscription)
            ack = self._pending.get(redis_name)
            if len(subscribers) == 1:
                ack = self._pending[redis_name] = _Ack()
                try:
                    self._send_subscribe(name, redis_name)
                except BaseException:
                    self._remove_locked(subscription)
                    raise
        if ack is not None:
            if not ack.event.wait(self.SUBSCRIBE_TIMEOUT):
                from redis.exceptions import TimeoutError as RedisTimeoutError

                ack.done(RedisTimeoutError(f"Redis did not confirm subscribing to {redis_name}"))
            if ack.error is not None:
                self._remove(subscription)
                raise ack.error
        return subscription

    def _send_subscribe(self, name: str, redis_name: str) -> None:
        """Subscribe on Redis now (connecting first if needed); the caller holds the lock."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._listen, name=f"trackeep-pubsub-{id(self):x}", daemon=True)
            self._thread.start()
        if self._stale:
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError("the Redis pub/sub connection is being replaced")
        if self._pubsub is None:
            self._connect_locked()  # subscribes every registered name, this one included
            self._wake.set()  # the listener may be sleeping in its back-off
            return
        try:
            if is_pattern(name):
                self._pubsub.psubscribe(redis_name)
            else:
                self._pubsub.subscribe(redis_name)
        except BaseException:
            self._stale = True
            raise

    def _remove(self, subscription: _Subscription) -> None:
        with self._lock:
            self._remove_locked(subscription)

    def _remove_locked(self, subscription: _Subscription) -> None:
        subscribers = self._subscribers.get(subscription.name)
        if not subscribers or subscription not in subscribers:
            return
        subscribers.remove(subscription)
        if subscribers:
            return
        del self._subscribers[subscription.name]
        redis_name = self.keyspace.key(subscription.name)
        self._pending.pop(redis_name, None)
        if self._pubsub is None or self._stale:
            return
        try:
            if is_pattern(subscription.name):
                self._pubsub.punsubscribe(redis_name)
            else:
                self._pubsub.unsubscribe(redis_name)
        except Exception:  # the listener replaces the connection, without this name
            self._stale = True

    def _connect_locked(self):
        """A new redis-py PubSub subscribed to every registered name; caller holds the lock."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=False)
        channels = [self.keyspace.key(n) for n in self._subscribers if not is_pattern(n)]
        patterns = [self.keyspace.key(n) for n in self._subscribers if is_pattern(n)]
        try:
            if channels:
                pubsub.subscribe(*channels)
            if patterns:
                pubsub.psubscribe(*patterns)
            if not channels and not patterns:
                self.client.ping()  # nothing to subscribe: at least prove Redis answers
        except BaseException:
            pubsub.close()
            raise
        self._pubsub = pubsub
        self._stale = False
        return pubsub

    def _disconnect(self, error: BaseException | None = None) -> None:
        """Close the current connection; fail the subscribes still waiting on it."""
        with self._lock:
            pubsub, self._pubsub = self._pubsub, None
            self._stale = False
            pending = list(self._pending.values())
            self._pending.clear()
        for ack in pending:
            ack.done(error or RuntimeError("the pub/sub connection was closed"))
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                pass

    def _listen(self) -> None:
        """The listener thread: read, dispatch, and reconnect with back-off on errors."""
        delay = self.BACKOFF_START
        while not self._stop.is_set():
            try:
                with self._lock:
                    stale, pubsub = self._stale, self._pubsub
                if stale:
                    self._disconnect()
                    pubsub = None
                if pubsub is None:
                    with self._lock:
                        if self._closed:
                            break
                        pubsub = self._pubsub or self._connect_locked()
                message = pubsub.get_message(timeout=self.POLL_SECONDS)
            except Exception as exc:
                self._disconnect(exc)
                if not self._failing:
                    self._failing = True
                    log.warning("Redis pub/sub connection failed (%s: %s); reconnecting",
                                type(exc).__name__, exc)
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(delay * 2, self.BACKOFF_MAX)
                continue
            if self._failing:
                self._failing = False
                delay = self.BACKOFF_START
                log.warning("Redis pub/sub connection recovered; subscriptions restored")
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict) -> None:
        kind = message["type"]
        if kind in ("subscribe", "psubscribe"):
            with self._lock:
                ack = self._pending.pop(message["channel"], None)
            if ack is not None:
                ack.done()
            return
        if kind == "message":
            name = channel = self.keyspace.strip(message["channel"])
        elif kind == "pmessage":
            name = self.keyspace.strip(message["pattern"])
            channel = self.keyspace.strip(message["channel"])
        else:
            return
        with self._lock:
            subscribers = list(self._subscribers.get(name, ()))
        for subscriber in subscribers:
            self._deliver(subscriber.callback, channel, message["data"])

    def close(self) -> None:
        """Stop the listener thread, close the connection and drop every subscription."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._subscribers.clear()
            thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout=10)
        self._disconnect()

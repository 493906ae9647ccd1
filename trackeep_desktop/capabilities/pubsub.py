"""Publish/subscribe: in process (memory) or across processes through Redis.

Messages travel as JSON, so every callback gets its own copy. Channel names and patterns are
given without the key prefix (``messages:42``, ``messages:*``); patterns follow Redis glob
rules (``fnmatch.fnmatchcase`` in memory). A callback that raises is logged and skipped.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from trackeep_desktop.capabilities.base import Health, PubSub, Subscription, is_pattern
from trackeep_desktop.capabilities.keys import Keyspace
from trackeep_desktop.clock import SystemClock

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
            message = json.loads(payload)
        except ValueError:
            log.warning("pub/sub message on %s is not JSON; dropped", channel)
            return
        try:
            callback(channel, message)
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
    everything again and logs the recovery; a ``publish`` meanwhile reconnects at once.

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
        # The lock guards the fields below. It is never held while connecting, so an
        # unsubscribe never waits on a Redis outage; connecting has a lock of its own.
        self._lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._subscribers: dict[str, list[_Subscription]] = {}  # local name -> subscribers
        self._pending: dict[str, _Ack] = {}  # Redis name -> confirmation awaited
        self._pubsub = None  # the connected redis-py PubSub, closed only by the listener
        self._stale = False  # a command failed on _pubsub: the listener must replace it
        self._failing = False  # the listener lost the connection and has not recovered
        self._closed = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # cuts the listener's back-off short

    def check(self) -> Health:
        """Ok if Redis answers PING and the listener is connected; never raises."""
        try:
            self.client.ping()
        except Exception as exc:  # the contract: check() must not raise
            return Health(self.backend, "fallback", detail=str(exc))
        if self._failing:
            return Health(self.backend, "degraded", "the subscriber connection is reconnecting")
        return Health(self.backend, "ok")

    # ----------------------------------------------------------------------------- contract

    def publish(self, channel: str, message: Any) -> None:
        """Publish ``message`` as JSON on ``tk:{channel}`` to every subscribed process."""
        _check_channel(channel)
        payload = json.dumps(message)
        if self._failing:
            self._catch_up()
        self.client.publish(self.keyspace.key(channel), payload)
        self._count_published()

    def subscribe(self, channel_or_pattern: str, callback: Callback) -> Subscription:
        """Deliver matching messages to ``callback`` (on the listener thread) until
        unsubscribed; effective when this returns."""
        name = channel_or_pattern
        redis_name = self.keyspace.key(name)
        subscription = _Subscription(self, name, callback)
        connect = False
        with self._lock:
            if self._closed:
                raise RuntimeError("this RedisPubSub is closed")
            self._start_listener()
            subscribers = self._subscribers.setdefault(name, [])
            subscribers.append(subscription)
            ack = self._pending.get(redis_name)
            if len(subscribers) == 1:
                ack = self._pending[redis_name] = _Ack()
                try:
                    connect = not self._send_locked("subscribe", [name])
                except BaseException:
                    self._remove_locked(subscription)
                    raise
        if connect:
            try:
                self._connect()  # subscribes every registered name, this one included
            except BaseException:
                self._remove(subscription)
                raise
        if ack is not None:
            if not ack.event.wait(self.SUBSCRIBE_TIMEOUT):
                from redis.exceptions import TimeoutError as RedisTimeoutError

                ack.done(RedisTimeoutError(f"Redis did not confirm subscribing to {redis_name}"))
            if ack.error is not None:
                self._remove(subscription)
                raise ack.error
        return subscription

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

    # ------------------------------------------------------------------------ subscriptions

    def _start_listener(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._listen, name=f"trackeep-pubsub-{id(self):x}", daemon=True)
            self._thread.start()

    def _send_locked(self, command: str, names: list[str]) -> bool:
        """Send (P)SUBSCRIBE or (P)UNSUBSCRIBE for local names on the current connection.

        False if there is no connection (the next connect subscribes what is registered).
        The caller holds the lock; sending on an open connection does not wait for Redis.
        """
        if self._stale:
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError("the Redis pub/sub connection is being replaced")
        if self._pubsub is None:
            return False
        channels = [self.keyspace.key(n) for n in names if not is_pattern(n)]
        patterns = [self.keyspace.key(n) for n in names if is_pattern(n)]
        try:
            if channels:
                getattr(self._pubsub, command)(*channels)
            if patterns:
                getattr(self._pubsub, "p" + command)(*patterns)
        except BaseException:
            self._stale = True
            self._wake.set()
            raise
        return True

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
        self._pending.pop(self.keyspace.key(subscription.name), None)
        # On failure the listener replaces the connection, without this name.
        with contextlib.suppress(Exception):
            self._send_locked("unsubscribe", [subscription.name])

    # --------------------------------------------------------------------------- connection

    def _connect(self) -> None:
        """Open a connection subscribed to every registered name, unless one is open.

        Connecting happens outside the lock; names registered or dropped meanwhile are
        reconciled once the connection is installed. Raises the Redis error on failure.
        """
        with self._connect_lock:
            self._connect_once()
        self._wake.set()  # the listener may be sleeping in its back-off

    def _connect_once(self) -> None:
        with self._lock:
            if self._pubsub is not None or self._closed:
                return
            names = list(self._subscribers)
        pubsub = self.client.pubsub(ignore_subscribe_messages=False)
        try:
            channels = [self.keyspace.key(n) for n in names if not is_pattern(n)]
            patterns = [self.keyspace.key(n) for n in names if is_pattern(n)]
            if channels:
                pubsub.subscribe(*channels)
            if patterns:
                pubsub.psubscribe(*patterns)
            if not names:
                self.client.ping()  # nothing to subscribe: at least prove Redis answers
        except BaseException:
            pubsub.close()
            raise
        with self._lock:
            if self._pubsub is None and not self._closed:
                self._pubsub, pubsub = pubsub, None
                self._stale = False
                current = list(self._subscribers)
                for name in current:
                    self._pending.setdefault(self.keyspace.key(name), _Ack())
                try:
                    self._send_locked("subscribe", [n for n in current if n not in names])
                    self._send_locked("unsubscribe", [n for n in names if n not in current])
                except Exception:  # already marked stale: the listener starts over
                    pass
        if pubsub is not None:  # closed meanwhile
            pubsub.close()

    def _catch_up(self) -> None:
        """While the listener is reconnecting: reconnect now and wait until this instance's
        subscriptions are back, so our own subscribers get what we publish after an outage.
        Raises the Redis error if Redis is still unreachable."""
        self._connect()
        with self._lock:
            waiting = list(self._pending.values())
        for ack in waiting:
            ack.event.wait(self.SUBSCRIBE_TIMEOUT)

    def _disconnect(self, error: BaseException | None = None) -> None:
        """Close the current connection; fail the subscribes still waiting on it."""
        with self._lock:
            pubsub, self._pubsub = self._pubsub, None
            self._stale = False
            pending = list(self._pending.values())
            self._pending.clear()
        if pending and error is None:
            from redis.exceptions import ConnectionError as RedisConnectionError

            error = RedisConnectionError("the Redis pub/sub connection was closed")
        for ack in pending:
            ack.done(error)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    # ----------------------------------------------------------------------------- listener

    def _listen(self) -> None:
        """The listener thread: read, dispatch, and reconnect with back-off on errors."""
        delay = self.BACKOFF_START
        while not self._stop.is_set():
            try:
                with self._lock:
                    stale, pubsub = self._stale, self._pubsub
                if stale:
                    self._disconnect()
                if stale or pubsub is None:
                    self._connect()
                    continue
                message = pubsub.get_message(timeout=self.POLL_SECONDS)
            except Exception as exc:
                self._wake.clear()  # only a wake-up from now on cuts this back-off short
                self._disconnect(exc)
                if not self._failing:
                    self._failing = True
                    log.warning("Redis pub/sub connection failed (%s: %s); reconnecting",
                                type(exc).__name__, exc)
                self._wake.wait(delay)
                delay = min(delay * 2, self.BACKOFF_MAX)
                continue
            if self._failing:
                self._failing = False
                delay = self.BACKOFF_START
                log.warning("Redis pub/sub connection recovered; subscriptions restored")
            if message is not None:
                try:
                    self._dispatch(message)
                except Exception:  # never let one odd message stop the listener
                    log.exception("could not dispatch pub/sub message %r", message)

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

"""The pub/sub contract, run against MemoryPubSub and RedisPubSub."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from trackeep_desktop.capabilities.base import PubSub
from trackeep_desktop.capabilities.keys import Keyspace
from trackeep_desktop.capabilities.pubsub import MemoryPubSub, RedisPubSub

from clocks import eventually

TIMEOUT = 5.0


class Inbox:
    """A callback that records ``(channel, message)`` and lets a test wait for deliveries."""

    def __init__(self):
        self.received: list[tuple[str, object]] = []
        self._changed = threading.Condition()

    def __call__(self, channel, message):
        with self._changed:
            self.received.append((channel, message))
            self._changed.notify_all()

    def wait(self, count: int = 1) -> list[tuple[str, object]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.received) >= count, TIMEOUT), (
                f"expected {count} messages, got {self.received}")
            return list(self.received)


@pytest.fixture
def pubsub(backend):
    instance = backend.make("pubsub")
    yield instance
    instance.close()


@pytest.fixture
def redis_pubsubs(redis_url, key_prefix):
    """Builds RedisPubSub instances each on its own client, as separate processes would."""
    import redis

    made = []

    def make(**client_options):
        client = redis.Redis.from_url(redis_url, decode_responses=True, **client_options)
        instance = RedisPubSub(client=client, keyspace=Keyspace(key_prefix))
        made.append((instance, client))
        return instance

    yield make
    for instance, client in made:
        instance.close()
        client.close()


class LogRecords(logging.Handler):
    """Every record the pub/sub module logs, whatever an app's logging setup did to the
    logger tree (it stops propagation, which blinds pytest's ``caplog``)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)


@pytest.fixture
def pubsub_log():
    logger = logging.getLogger("trackeep_desktop.capabilities.pubsub")
    handler, level = LogRecords(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def numsub(client, channel: str) -> int:
    return dict(client.pubsub_numsub(channel))[channel]


def test_both_implementations_implement_the_interface():
    for cls in (MemoryPubSub, RedisPubSub):
        assert issubclass(cls, PubSub)
        assert not cls.__abstractmethods__


def test_a_subscriber_receives_messages_of_its_channel(pubsub):
    inbox = Inbox()
    pubsub.subscribe("messages:1", inbox)
    pubsub.publish("messages:2", {"text": "not for you"})
    pubsub.publish("messages:1", {"text": "hi", "n": [1, 2]})
    pubsub.publish("messages:1", "second")
    assert inbox.wait(2) == [("messages:1", {"text": "hi", "n": [1, 2]}),
                             ("messages:1", "second")]


def test_a_pattern_receives_matching_channels_by_their_own_name(pubsub):
    inbox, single = Inbox(), Inbox()
    pubsub.subscribe("messages:*", inbox)
    pubsub.subscribe("notifications:?", single)
    pubsub.publish("notifications:77", {"n": 77})
    pubsub.publish("notifications:7", {"n": 7})
    pubsub.publish("messages:42", {"m": 42})
    assert inbox.wait(1) == [("messages:42", {"m": 42})]
    assert single.wait(1) == [("notifications:7", {"n": 7})]


def test_channel_and_pattern_subscribers_each_get_one_copy(pubsub):
    exact, pattern = Inbox(), Inbox()
    pubsub.subscribe("messages:1", exact)
    pubsub.subscribe("messages:*", pattern)
    pubsub.publish("messages:1", 1)
    pubsub.publish("messages:1", 2)
    assert exact.wait(2) == [("messages:1", 1), ("messages:1", 2)]
    assert pattern.wait(2) == [("messages:1", 1), ("messages:1", 2)]


def test_unsubscribe_stops_delivery(backend, pubsub):
    leaving, staying, last, sentinel = Inbox(), Inbox(), Inbox(), Inbox()
    first = pubsub.subscribe("messages:1", leaving)
    pubsub.subscribe("messages:1", staying)
    only = pubsub.subscribe("messages:9", last)
    first.unsubscribe()
    first.unsubscribe()  # idempotent
    only.unsubscribe()  # the channel's last local subscriber leaves
    pubsub.subscribe("messages:end", sentinel)
    pubsub.publish("messages:1", "a")
    pubsub.publish("messages:9", "b")
    pubsub.publish("messages:end", "end")
    sentinel.wait(1)  # Redis delivers in order: everything before "end" has arrived
    assert staying.wait(1) == [("messages:1", "a")]
    assert leaving.received == []
    assert last.received == []
    if backend.name == "redis":
        assert numsub(backend.client, backend.keyspace.key("messages:9")) == 0
        assert numsub(backend.client, backend.keyspace.key("messages:1")) == 1


def test_a_failing_callback_reaches_neither_the_publisher_nor_others(pubsub, pubsub_log):
    def broken(channel, message):
        raise RuntimeError("boom")

    inbox = Inbox()
    pubsub.subscribe("messages:1", broken)
    pubsub.subscribe("messages:1", inbox)
    pubsub.publish("messages:1", "first")
    pubsub.publish("messages:1", "second")
    assert inbox.wait(2) == [("messages:1", "first"), ("messages:1", "second")]
    eventually(lambda: len(pubsub_log.records) == 2)
    assert all(r.levelno == logging.ERROR and r.exc_info[1].args == ("boom",)
               for r in pubsub_log.records)
    eventually(lambda: pubsub.delivered == 2)
    assert pubsub.published == 2


def test_each_subscriber_gets_its_own_json_copy(pubsub):
    def vandal(channel, message):
        message["items"].append("vandalised")

    inbox = Inbox()
    pubsub.subscribe("messages:1", vandal)
    pubsub.subscribe("messages:1", inbox)
    original = {"items": [1, 2], "pair": (3, 4)}
    pubsub.publish("messages:1", original)
    [(_, received)] = inbox.wait(1)
    assert received == {"items": [1, 2], "pair": [3, 4]}  # a JSON round trip
    assert received is not original
    assert original["items"] == [1, 2]


def test_messages_must_be_json_and_channels_not_patterns(pubsub):
    with pytest.raises(TypeError):
        pubsub.publish("messages:1", {"when": object()})
    with pytest.raises(ValueError, match="cannot publish to a pattern"):
        pubsub.publish("messages:*", "hello")
    assert pubsub.published == 0


def test_subscribers_may_subscribe_and_unsubscribe_from_threads(pubsub):
    inboxes = [Inbox() for _ in range(8)]

    def work(inbox):
        for _ in range(5):
            pubsub.subscribe("messages:1", inbox).unsubscribe()
        pubsub.subscribe("messages:1", inbox)

    threads = [threading.Thread(target=work, args=(inbox,)) for inbox in inboxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pubsub.publish("messages:1", "all")
    for inbox in inboxes:
        assert inbox.wait(1) == [("messages:1", "all")]


def test_close_drops_subscriptions(backend, pubsub):
    inbox = Inbox()
    pubsub.subscribe("messages:1", inbox)
    pubsub.close()
    pubsub.close()  # idempotent
    if backend.name == "memory":
        pubsub.publish("messages:1", "after close")
        assert inbox.received == []
    else:
        assert not any(t.name.startswith("trackeep-pubsub") for t in threading.enumerate())
        assert numsub(backend.client, backend.keyspace.key("messages:1")) == 0
        with pytest.raises(RuntimeError):
            pubsub.subscribe("messages:1", inbox)


def test_check_is_ok(backend, pubsub):
    health = pubsub.check()
    assert (health.backend, health.state) == (backend.name, "ok")


# ----------------------------------------------------------------------------- Redis only


def test_every_process_receives_every_message(redis_pubsubs):
    first, second = redis_pubsubs(), redis_pubsubs()
    inbox_a, inbox_b = Inbox(), Inbox()
    first.subscribe("notifications:7", inbox_a)
    second.subscribe("notifications:*", inbox_b)
    first.publish("notifications:7", {"kind": "mention"})
    assert inbox_a.wait(1) == [("notifications:7", {"kind": "mention"})]
    assert inbox_b.wait(1) == [("notifications:7", {"kind": "mention"})]
    assert (first.published, second.published) == (1, 0)


def test_channels_carry_the_key_prefix(redis_pubsubs, redis_client, key_prefix):
    pubsub = redis_pubsubs()
    inbox = Inbox()
    pubsub.subscribe("messages:5", inbox)
    pubsub.subscribe("messages:5", Inbox())
    assert numsub(redis_client, f"{key_prefix}:messages:5") == 1  # one Redis subscription
    redis_client.publish(f"{key_prefix}:messages:5", json.dumps({"from": "another program"}))
    assert inbox.wait(1) == [("messages:5", {"from": "another program"})]


def test_a_message_that_is_not_json_is_dropped(redis_pubsubs, redis_client, key_prefix,
                                               pubsub_log):
    pubsub = redis_pubsubs()
    inbox = Inbox()
    pubsub.subscribe("messages:5", inbox)
    redis_client.publish(f"{key_prefix}:messages:5", "{not json")
    pubsub.publish("messages:5", "fine")
    assert inbox.wait(1) == [("messages:5", "fine")]
    assert "not JSON" in pubsub_log.text()


def test_the_listener_reconnects_and_subscribes_again(redis_pubsubs, redis_client, key_prefix,
                                                      pubsub_log):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries in redis-py: the broken connection reaches the listener's own recovery.
    pubsub = redis_pubsubs(retry=Retry(NoBackoff(), 0))
    inbox = Inbox()
    pubsub.subscribe("messages:1", inbox)
    pubsub.subscribe("messages:*", inbox)
    channel = f"{key_prefix}:messages:1"
    assert redis_client.client_kill_filter(_type="pubsub") >= 1
    eventually(lambda: "recovered" in pubsub_log.text())
    eventually(lambda: numsub(redis_client, channel) == 1)
    eventually(lambda: redis_client.pubsub_numpat() == 1)
    pubsub.publish("messages:1", "after")
    assert inbox.wait(2) == [("messages:1", "after"), ("messages:1", "after")]
    warnings = [r for r in pubsub_log.records if r.levelno == logging.WARNING]
    assert [("failed" in r.getMessage(), "recovered" in r.getMessage()) for r in warnings] == [
        (True, False), (False, True)]
    assert pubsub.check().state == "ok"


def test_subscribe_raises_when_redis_is_unreachable(key_prefix):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from services import free_port

    client = redis.Redis(port=free_port(), decode_responses=True, retry=Retry(NoBackoff(), 0))
    pubsub = RedisPubSub(client=client, keyspace=Keyspace(key_prefix))
    try:
        with pytest.raises(redis.ConnectionError):
            pubsub.subscribe("messages:1", Inbox())
        assert pubsub.check().state == "fallback"
    finally:
        pubsub.close()
        client.close()


def test_publishing_after_an_outage_does_not_wait_for_the_back_off(redis_pubsubs, redis_client,
                                                                   pubsub_log):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pubsub = redis_pubsubs(retry=Retry(NoBackoff(), 0))
    pubsub.BACKOFF_START = 60  # the listener would sleep a minute before reconnecting
    inbox = Inbox()
    pubsub.subscribe("messages:1", inbox)
    assert redis_client.client_kill_filter(_type="pubsub") >= 1
    eventually(lambda: pubsub.check().state == "degraded")
    pubsub.publish("messages:1", "right after")  # reconnects and resubscribes first
    assert inbox.wait(1) == [("messages:1", "right after")]
    eventually(lambda: pubsub.check().state == "ok")
    assert "recovered" in pubsub_log.text()

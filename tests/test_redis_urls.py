"""Every Redis URL the settings accept starts the program, on one client and one monitor.

Each accepted form runs against a real server started here: ``redis://`` with a database
number, ``unix://`` (a redis-server on a unix socket only), ``redis+sentinel://`` (a
redis-server plus one real sentinel) and ``rediss://`` (a redis-server answering TLS only,
with a self-signed certificate). For each, the app starts, ``/health`` says Redis is ok, a
change event written on one instance reaches a WebSocket client of another, and Socket.IO's
queue is the pub/sub capability bound to that server.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest
import requests
import socketio
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions, bearer

from trackeep_desktop.capabilities import RedisTarget, parse_redis_url, redis_client_from_url
from trackeep_desktop.realtime.namespaces import EVENTS_NAMESPACE
from trackeep_desktop.realtime.queue import PubSubQueueManager
from trackeep_desktop.storage.db import ConfigurationError

from clocks import wait_until
from processes import ThreadServer
from services import RedisServer, SentinelServer, TlsFiles

SCHEMES = ["redis", "unix", "redis+sentinel", "rediss"]


# ------------------------------------------------------------------------------- the parser


def test_each_accepted_url_form_is_parsed_once_into_a_target():
    plain = parse_redis_url("redis://:s3cret@127.0.0.1:6380/2")
    assert (plain.scheme, plain.tls) == ("redis", False)
    assert plain.describe() == "redis://:***@127.0.0.1:6380/2"
    assert parse_redis_url("rediss://cache.example:6379/0").tls
    assert parse_redis_url("unix:///run/redis.sock?db=3").scheme == "unix"
    sentinel = parse_redis_url("redis+sentinel://:pw@10.0.0.1:26380,10.0.0.2/cache/4")
    assert sentinel == RedisTarget(
        url="redis+sentinel://:pw@10.0.0.1:26380,10.0.0.2/cache/4", scheme="redis+sentinel",
        sentinels=(("10.0.0.1", 26380), ("10.0.0.2", 26379)), service="cache", db=4,
        password="pw")
    assert parse_redis_url("redis+sentinel://10.0.0.1").service == "mymaster"


@pytest.mark.parametrize("url", [
    "memcached://127.0.0.1:11211", "http://127.0.0.1:6379", "127.0.0.1:6379",
    "unix://", "redis+sentinel://10.0.0.1:port/mymaster",
    "redis+sentinel://10.0.0.1/mymaster/notadb",
])
def test_an_unsupported_redis_url_is_a_configuration_error(url):
    with pytest.raises(ConfigurationError, match=r"redis://HOST:PORT/DB.*redis\+sentinel://"):
        parse_redis_url(url)


def test_the_app_refuses_an_unsupported_scheme_before_its_first_request(make_app):
    with pytest.raises(ConfigurationError, match="unsupported Redis URL 'memcached://"):
        make_app(REDIS_URL="memcached://127.0.0.1:11211")


def test_a_rediss_url_builds_tls_connections():
    """Without starting anything: the client for rediss:// speaks TLS."""
    import redis

    client = redis_client_from_url("rediss://127.0.0.1:6390/0?ssl_cert_reqs=none")
    try:
        assert client.connection_pool.connection_class is redis.SSLConnection
    finally:
        client.close()


# ---------------------------------------------------------------------- real servers per URL


class RedisUnderTest:
    """A real Redis reachable by one URL form, and a plain client to its data.

    Every server started is stopped by :meth:`stop`, also when a later one fails to start.
    """

    def __init__(self, scheme: str, folder: Path):
        self.scheme = scheme
        self.servers: list = []
        self.raw = None
        try:
            if scheme == "unix":
                redis = RedisServer(unix_socket=folder / "redis.sock")
            elif scheme == "rediss":
                redis = RedisServer(tls=TlsFiles(folder).create())
            else:
                redis = RedisServer()
            self.servers.append(redis.start())
            if scheme == "redis+sentinel":
                sentinel = SentinelServer(redis, folder)
                self.servers.append(sentinel.start())
                self.url = sentinel.url
            elif scheme == "redis":
                self.url = f"redis://127.0.0.1:{redis.port}/3"  # not the default database
            else:
                self.url = redis.url
            # Straight to the server (not through the sentinel), in the URL's database.
            self.raw = redis_client_from_url(self.url if scheme == "redis" else redis.url)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.raw is not None:
            self.raw.close()
        for server in reversed(self.servers):
            server.stop()


@pytest.fixture(params=SCHEMES)
def redis_under_test(request):
    from conftest import unavailable

    if not RedisServer.available():
        unavailable("no redis-server binary to start")
    if request.param == "rediss" and not TlsFiles.available():
        unavailable("no openssl to make a certificate for the TLS redis-server")
    # A short folder: a unix socket path must fit in 108 bytes, pytest's tmp_path may not.
    folder = Path(tempfile.mkdtemp(prefix="tk-redis-"))
    try:
        under_test = RedisUnderTest(request.param, folder)
        try:
            yield under_test
        finally:
            under_test.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_every_accepted_url_starts_the_app_and_carries_change_events(
        make_app, redis_under_test, key_prefix):
    config = dict(REDIS_URL=redis_under_test.url, KEY_PREFIX=key_prefix, FETCH_METADATA=False,
                  REDIS_REQUIRED=True, **GENEROUS_LIMITS)
    first, second = make_app(**config), make_app(**config)
    caps = first.extensions["trackeep"].capabilities
    assert caps.redis_target == parse_redis_url(redis_under_test.url)

    health = first.test_client().get("/health").get_json()
    assert health["status"] == "ok", health
    assert health["redis"]["state"] == "ok", health
    caps.cache.set("probe", {"via": redis_under_test.scheme}, 60)
    assert redis_under_test.raw.get(f"{key_prefix}:cache:probe") is not None  # that server

    manager = first.extensions["trackeep"].socketio.server.manager
    assert isinstance(manager, PubSubQueueManager)
    assert manager.target == caps.redis_target
    assert manager.pubsub is caps.pubsub

    actions = AuthActions(second)
    owner, _ = actions.register_owner()
    served = ThreadServer(first)
    client = socketio.Client(reconnection=False)
    changes, announced = [], threading.Event()
    client.on("change", changes.append, namespace=EVENTS_NAMESPACE)
    client.on("announce", lambda data: announced.set())
    try:
        client.connect(served.url, headers=bearer(owner), transports=["websocket"],
                       namespaces=["/", EVENTS_NAMESPACE], wait_timeout=10)
        # The queue subscribed on that very server, under the configured prefix.
        assert wait_until(lambda: redis_under_test.raw.pubsub_channels(f"{key_prefix}:socketio"))

        # A change written on the second instance reaches a socket of the first...
        bookmark = actions.api("POST", "/bookmarks", owner,
                               json={"url": "https://example.com/live"}).get_json()
        assert wait_until(lambda: changes), "the change event did not cross instances"
        assert [(c["action"], c["id"]) for c in changes] == [("created", bookmark["id"])]
        # ...and an emit through the second instance's Socket.IO queue does too.
        second.extensions["trackeep"].socketio.emit("announce", {"n": 1}, namespace="/")
        assert announced.wait(10), "Socket.IO's queue did not carry the emit"
        assert first.extensions["trackeep"].capabilities.monitor.up
    finally:
        client.disconnect()
        served.stop()


@pytest.mark.slow
def test_trackeep_serve_starts_on_every_accepted_url(redis_under_test, serve, key_prefix):
    """The real program under gevent: unix:// and sentinel URLs used to stop it at start
    ("Kombu package is not installed")."""
    server = serve("--redis-url", redis_under_test.url,
                   env_extra={"TRACKEEP_KEY_PREFIX": key_prefix, "TRACKEEP_REDIS_REQUIRED": "1"})
    health = requests.get(f"{server.url}/health", timeout=5).json()
    assert health["redis"]["state"] == "ok", health
    assert health["status"] == "ok", health
    registered = requests.post(f"{server.url}/api/v1/auth/register", json=OWNER, timeout=10)
    assert registered.status_code == 201, registered.text
    sio = socketio.Client(reconnection=False)
    sio.connect(server.url, headers=bearer(registered.json()["token"]),
                transports=["websocket"], wait_timeout=10)
    try:
        assert sio.call("ping", {"n": 1}, timeout=5)["pong"] == {"n": 1}
        assert wait_until(lambda: redis_under_test.raw.pubsub_channels(
            f"{key_prefix}:socketio"))
    finally:
        sio.disconnect()
    assert server.stop() == 0, server.output()
    assert "Traceback" not in server.output()

"""`trackeep serve` as a real process: gevent, real WebSockets, SIGTERM, Redis message queue."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import socketio
from auth_actions import OWNER, bearer

from processes import listening_addresses

pytestmark = pytest.mark.slow


def test_serve_answers_health_and_carries_a_real_websocket(serve):
    instance = serve()
    health = requests.get(f"{instance.url}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    registered = requests.post(f"{instance.url}/api/v1/auth/register", json=OWNER, timeout=10)
    assert registered.status_code == 201, registered.text
    anonymous = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        anonymous.connect(instance.url, transports=["websocket"], wait_timeout=5)

    client = socketio.Client(reconnection=False)
    echoed = threading.Event()
    received = {}

    @client.on("echo")
    def on_echo(data):
        received["echo"] = data
        echoed.set()

    client.connect(instance.url, headers=bearer(registered.json()["token"]),
                   transports=["websocket"], wait_timeout=10)
    try:
        assert client.transport() == "websocket"
        answer = client.call("ping", {"n": 1}, timeout=5)
        assert answer["pong"] == {"n": 1}
        client.emit("echo", {"hello": "world"})
        assert echoed.wait(5)
        assert received["echo"] == {"hello": "world"}
    finally:
        client.disconnect()


def test_sigterm_stops_cleanly_and_keeps_data(serve, tmp_path):
    data_dir = tmp_path / "kept"
    instance = serve(data_dir=data_dir)
    assert requests.get(f"{instance.url}/health", timeout=5).ok
    assert instance.stop() == 0
    assert "Traceback" not in instance.output()
    again = serve(data_dir=data_dir)
    assert requests.get(f"{again.url}/health", timeout=5).json()["database"]["state"] == "ok"
    assert (data_dir / "secret_key").exists()


def test_serve_binds_loopback_by_default(serve):
    instance = serve()
    assert instance.url.startswith("http://127.0.0.1:")
    port = int(instance.url.rsplit(":", 1)[1])
    # The socket itself, not only the printed URL: bound to loopback, not to every address.
    assert listening_addresses(port) == {"127.0.0.1"}


def test_events_reach_clients_on_every_instance_through_redis(serve, redis_url, key_prefix):
    """Two instances on one Redis: an event emitted into the queue reaches both."""
    first = serve("--redis-url", redis_url, env_extra={"TRACKEEP_KEY_PREFIX": key_prefix})
    second = serve("--redis-url", redis_url, env_extra={"TRACKEEP_KEY_PREFIX": key_prefix})
    got = {first.url: threading.Event(), second.url: threading.Event()}
    registered = requests.post(f"{first.url}/api/v1/auth/register", json=OWNER, timeout=10)
    assert registered.status_code == 201, registered.text
    token = registered.json()["token"]
    clients = []
    for instance in (first, second):
        client = socketio.Client(reconnection=False)
        client.on("announce", lambda data, url=instance.url: got[url].set())
        client.connect(instance.url, headers=bearer(token), transports=["websocket"],
                       wait_timeout=10)
        clients.append(client)
    try:
        emitter = socketio.RedisManager(redis_url, channel=f"{key_prefix}:socketio",
                                        write_only=True)
        deadline = time.monotonic() + 10
        while not all(e.is_set() for e in got.values()) and time.monotonic() < deadline:
            emitter.emit("announce", {"text": "to everyone"}, namespace="/")
            time.sleep(0.2)
        assert all(e.is_set() for e in got.values()), "an instance did not relay the event"
    finally:
        for client in clients:
            client.disconnect()

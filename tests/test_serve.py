"""`trackeep serve` as a real process: gevent, real WebSockets, SIGTERM, Redis message queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


class ServedInstance:
    """One ``trackeep serve`` child process on a free port."""

    def __init__(self, data_dir: Path, database_url: str, *extra: str, env_extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKEEP_")}
        env.update(env_extra or {})
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir.parent / f"{data_dir.name}-serve-{id(self)}.log"
        self._log = self.log_path.open("w")  # a file, not a pipe: a chatty server never blocks
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trackeep_desktop", "serve", "--port", "0",
             "--data-dir", str(data_dir), "--database-url", database_url, *extra],
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=env, cwd=ROOT)
        self.stderr = None
        self.url = self._read_url()

    def _read_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"serve exited: {self.log_path.read_text()}")
                continue
            if line.startswith("Trackeep is running at "):
                return line.split(" at ", 1)[1].strip().rstrip("/")
        raise RuntimeError("serve printed no URL within 30 s")

    def stop(self) -> int:
        if self.stderr is not None:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise
        self._log.close()
        self.stderr = self.log_path.read_text()
        self.proc.stdout.close()
        return self.proc.returncode


@pytest.fixture
def serve(tmp_path, database_url):
    instances = []

    def start(*extra, env_extra=None, data_dir=None):
        instance = ServedInstance(data_dir or tmp_path / f"data{len(instances)}", database_url,
                                  *extra, env_extra=env_extra)
        instances.append(instance)
        return instance

    yield start
    for instance in instances:
        instance.stop()


def test_serve_answers_health_and_carries_a_real_websocket(serve):
    instance = serve()
    health = requests.get(f"{instance.url}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    client = socketio.Client(reconnection=False)
    echoed = threading.Event()
    received = {}

    @client.on("echo")
    def on_echo(data):
        received["echo"] = data
        echoed.set()

    client.connect(instance.url, transports=["websocket"], wait_timeout=10)
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
    assert "Traceback" not in instance.stderr
    again = serve(data_dir=data_dir)
    assert requests.get(f"{again.url}/health", timeout=5).json()["database"]["state"] == "ok"
    assert (data_dir / "secret_key").exists()


def test_serve_binds_loopback_by_default(serve):
    instance = serve()
    assert instance.url.startswith("http://127.0.0.1:")


def test_events_reach_clients_on_every_instance_through_redis(serve, redis_url, key_prefix):
    """Two instances on one Redis: an event emitted into the queue reaches both."""
    first = serve("--redis-url", redis_url, env_extra={"TRACKEEP_KEY_PREFIX": key_prefix})
    second = serve("--redis-url", redis_url, env_extra={"TRACKEEP_KEY_PREFIX": key_prefix})
    got = {first.url: threading.Event(), second.url: threading.Event()}
    clients = []
    for instance in (first, second):
        client = socketio.Client(reconnection=False)
        client.on("announce", lambda data, url=instance.url: got[url].set())
        client.connect(instance.url, transports=["websocket"], wait_timeout=10)
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

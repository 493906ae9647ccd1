"""Faults that count, on real processes: Redis killed under load, and the server killed
during a write burst. Every acknowledged write must be there afterwards, nobody signed in
may be answered 401, and the fallbacks must serve (no 5xx). Loops are bounded in count and
time; every process is stopped in teardown, pass or fail; loopback only."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from services import RedisServer

pytestmark = pytest.mark.slow

LIMITS = {"TRACKEEP_API_RATE_LIMIT": "1000000", "TRACKEEP_UI_RATE_LIMIT": "1000000",
          "TRACKEEP_AUTH_RATE_LIMIT": "10000", "TRACKEEP_FETCH_METADATA": "false",
          "TRACKEEP_LOG_LEVEL": "WARNING"}
OWNER = {"email": "owner@example.com", "username": "owner", "password": "owner-pass-123",
         "fullName": "Olive Owner"}
PASSWORD = "user-pass-456"
CLIENTS = 4
LOAD_SECONDS = 5.0
MAX_REQUESTS_PER_CLIENT = 3000


@pytest.fixture
def processes(serve):
    """``trackeep serve`` (conftest's ``serve``: stopped after the test, pass or fail, a
    killed one included) and redis-server processes, killed at teardown."""
    redis_servers: list[RedisServer] = []

    class Starter:
        def serve(self, data_dir, *extra, env=None):
            return serve(*extra, env_extra={**LIMITS, **(env or {})}, data_dir=data_dir)

        def redis(self, port=None):
            if not RedisServer.available():
                pytest.skip("no redis-server binary")
            server = RedisServer(port).start()
            redis_servers.append(server)
            return server

    yield Starter()
    for server in redis_servers:
        server.stop()


def api(base: str, method: str, path: str, token: str | None = None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{base}/api/v1{path}", headers=headers, timeout=10,
                            **kwargs)


def set_up_users(base: str, count: int) -> list[str]:
    """The owner and ``count - 1`` users; returns a session token for each (a login)."""
    response = api(base, "POST", "/auth/register", json=OWNER)
    assert response.status_code == 201, response.text
    owner = response.json()["token"]
    logins = [OWNER["username"]]
    for n in range(count - 1):
        name = f"user{n}"
        created = api(base, "POST", "/admin/users", owner, json={
            "email": f"{name}@example.com", "username": name, "password": PASSWORD,
            "fullName": name.title(), "role": "user"})
        assert created.status_code == 201, created.text
        logins.append(name)
    tokens = []
    for login in logins:
        password = OWNER["password"] if login == OWNER["username"] else PASSWORD
        answer = api(base, "POST", "/auth/login", json={"email": login, "password": password})
        assert answer.status_code == 200, answer.text
        tokens.append(answer.json()["token"])
    return tokens


def bookmark_ids(base: str, token: str) -> set[int]:
    """Every bookmark id of the token's user (paged, bounded)."""
    ids: set[int] = set()
    for page in range(200):
        answer = api(base, "GET", "/bookmarks", token,
                     params={"limit": 200, "offset": page * 200})
        assert answer.status_code == 200, answer.text
        batch = answer.json()
        ids.update(b["id"] for b in batch)
        if len(batch) < 200:
            return ids
    raise AssertionError("more bookmarks than the test ever writes")


class Load:
    """Client threads, one per token, alternating a bookmark write and reads, until
    stopped or LOAD_SECONDS (plus slack) pass; what each got is recorded."""

    def __init__(self, base_of, tokens: list[str], reads: bool = True):
        self.base_of = base_of  # a callable: the server may move (a restart)
        self.tokens = tokens
        self.reads = reads
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: dict[str, list[int]] = {t: [] for t in tokens}
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(t, n), daemon=True)
                        for n, t in enumerate(tokens)]

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def _record(self, kind: str, status: int, text: str = "") -> None:
        with self.lock:
            self.statuses[(kind, status)] += 1
            if status >= 500 or status == 401:
                self.errors.append(f"{kind} {status}: {text[:200]}")

    def _run(self, token: str, n: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        deadline = time.monotonic() + LOAD_SECONDS * 3
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            base = self.base_of()
            try:
                answer = session.post(f"{base}/api/v1/bookmarks", timeout=10, json={
                    "url": f"https://load.example/{n}/{i}", "title": f"load {n} {i}"})
            except requests.RequestException as exc:
                with self.lock:
                    self.statuses[("write", "connection")] += 1
                    self.errors.append(f"write connection: {exc}")
                continue
            if answer.status_code == 201:
                with self.lock:
                    self.acknowledged[token].append(answer.json()["id"])
            self._record("write", answer.status_code, answer.text)
            if not self.reads:
                continue
            for path in ("/auth/me", "/bookmarks?limit=5", f"/search?q=load+{n}"):
                try:
                    read = session.get(f"{base}/api/v1{path}", timeout=10)
                except requests.RequestException as exc:
                    with self.lock:
                        self.statuses[("read", "connection")] += 1
                        self.errors.append(f"read connection: {exc}")
                    continue
                self._record("read", read.status_code, read.text)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self.threads)

    @property
    def total_acknowledged(self) -> int:
        return sum(len(v) for v in self.acknowledged.values())


def test_killing_redis_under_load_loses_no_write_and_signs_nobody_out(processes, tmp_path):
    redis_server = processes.redis()
    port = redis_server.port
    server = processes.serve(tmp_path / "data", "--redis-url", redis_server.url)
    tokens = set_up_users(server.url, CLIENTS)

    load = Load(lambda: server.url, tokens).start()
    try:
        time.sleep(LOAD_SECONDS * 0.4)
        redis_server.proc.kill()  # kill -9
        redis_server.proc.wait(5)
        time.sleep(LOAD_SECONDS * 0.3)
        redis_server.start()  # the same port, empty
        assert redis_server.port == port
        time.sleep(LOAD_SECONDS * 0.3)
    finally:
        load.join()

    print(f"statuses: {dict(load.statuses)}; acknowledged writes: {load.total_acknowledged}")
    assert load.total_acknowledged > 0
    assert load.errors == []  # no 401 (nobody signed out), no 5xx, no dropped connection
    for token, ids in load.acknowledged.items():
        assert set(ids) <= bookmark_ids(server.url, token)
    assert api(server.url, "GET", "/auth/me", tokens[0]).status_code == 200
    health = requests.get(f"{server.url}/health", timeout=5).json()
    assert health["status"] in ("ok", "degraded")
    assert health["redis"]["outages"] >= 1  # the server did notice Redis go


def test_killing_the_server_during_writes_keeps_every_acknowledged_write(
        processes, tmp_path):
    data_dir = tmp_path / "data"
    server = processes.serve(data_dir)
    tokens = set_up_users(server.url, CLIENTS)
    current = {"url": server.url}

    load = Load(lambda: current["url"], tokens, reads=False).start()
    try:
        deadline = time.monotonic() + LOAD_SECONDS
        while load.total_acknowledged < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        server.proc.kill()  # kill -9 in the middle of the burst
        server.proc.wait(10)
        time.sleep(0.3)
    finally:
        load.join()
    acknowledged = {t: list(ids) for t, ids in load.acknowledged.items()}
    assert sum(len(ids) for ids in acknowledged.values()) >= 50
    refused = [e for e in load.errors if "connection" not in e]
    assert refused == []  # before the kill, no write failed

    again = processes.serve(data_dir)
    print(f"acknowledged before the kill: {sum(len(i) for i in acknowledged.values())}")
    for token, ids in acknowledged.items():
        assert set(ids) <= bookmark_ids(again.url, token)

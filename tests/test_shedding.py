"""Bounded work in flight: requests past MAX_IN_FLIGHT wait their turn, then get a 503 with
Retry-After; Socket.IO and /health are never held back."""

from __future__ import annotations

import threading

import pytest
import requests
import socketio
from auth_actions import GENEROUS_LIMITS, AuthActions, bearer

from trackeep_desktop.web.shedding import LoadShedder

from processes import ThreadServer


class Blocking:
    """A WSGI app whose requests wait until released (counting how many are inside)."""

    def __init__(self):
        self.release = threading.Event()
        self.inside = 0

    def __call__(self, environ, start_response):
        self.inside += 1
        self.release.wait(5)
        self.inside -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]


def call(app, path: str) -> tuple[str, dict, bytes]:
    got = {}

    def start_response(status, headers):
        got["status"], got["headers"] = status, dict(headers)

    body = app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response)
    data = b"".join(body)
    getattr(body, "close", lambda: None)()
    return got["status"], got["headers"], data


def test_past_the_bound_a_request_waits_then_gets_a_503_with_retry_after():
    inner = Blocking()
    shed = []
    shedder = LoadShedder(inner, max_in_flight=1, queue_timeout=0.2,
                          on_shed=lambda: shed.append(1))
    first = threading.Thread(target=call, args=(shedder, "/api/v1/bookmarks"))
    first.start()
    while inner.inside == 0:
        threading.Event().wait(0.01)
    status, headers, body = call(shedder, "/api/v1/tasks")
    assert status.startswith("503")
    assert headers["Retry-After"] == "1"
    assert headers["Content-Type"] == "application/json"
    assert body == b'{"error": "The server is busy; try again in a moment."}'
    page = call(shedder, "/tasks")
    assert page[0].startswith("503")
    assert page[1]["Content-Type"].startswith("text/html")
    assert shed == [1, 1]
    inner.release.set()
    first.join(5)
    assert call(shedder, "/api/v1/tasks")[0] == "200 OK"  # the slot came back


def test_a_waiting_request_gets_the_slot_when_it_frees_in_time():
    inner = Blocking()
    shedder = LoadShedder(inner, max_in_flight=1, queue_timeout=5)
    first = threading.Thread(target=call, args=(shedder, "/a"))
    first.start()
    while inner.inside == 0:
        threading.Event().wait(0.01)
    answers = []
    second = threading.Thread(target=lambda: answers.append(call(shedder, "/b")[0]))
    second.start()
    threading.Event().wait(0.2)
    assert answers == []  # waiting in line, not refused
    inner.release.set()
    second.join(5)
    first.join(5)
    assert answers == ["200 OK"]
    assert shedder.shed == 0


def test_socket_io_and_health_pass_a_full_server():
    inner = Blocking()
    inner.release.set()
    shedder = LoadShedder(inner, max_in_flight=1, queue_timeout=0)
    shedder._semaphore().acquire()  # every slot taken
    assert call(shedder, "/socket.io/")[0] == "200 OK"
    assert call(shedder, "/health")[0] == "200 OK"
    assert call(shedder, "/api/v1/x")[0].startswith("503")


def test_test_clients_that_never_read_a_body_do_not_use_up_the_slots(make_app):
    app = make_app(MAX_IN_FLIGHT=2, QUEUE_TIMEOUT=0.1, **GENEROUS_LIMITS)
    client = app.test_client()
    answers = [client.get("/api/v1/auth/check-users").status_code for _ in range(10)]
    assert answers == [200] * 10


def test_a_slot_is_given_back_when_the_view_raises():
    def broken(environ, start_response):
        raise RuntimeError("boom")

    shedder = LoadShedder(broken, max_in_flight=1, queue_timeout=0)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            call(shedder, "/api/v1/x")
    assert shedder._semaphore().acquire(blocking=False)


@pytest.mark.slow
def test_a_served_app_sheds_past_its_bound_and_keeps_sockets_and_health(make_app):
    app = make_app(MAX_IN_FLIGHT=1, QUEUE_TIMEOUT=0.2, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    gate = threading.Event()
    app.view_functions["observability.metrics"] = lambda: (gate.wait(10), "slow")[1]
    served = ThreadServer(app)
    try:
        slow = threading.Thread(target=requests.get, args=(f"{served.url}/metrics",),
                                kwargs={"timeout": 15})
        slow.start()
        busy = None
        for _ in range(50):  # until the slow one holds the only slot
            busy = requests.get(f"{served.url}/api/v1/auth/me", headers=bearer(token),
                                timeout=5)
            if busy.status_code == 503:
                break
        assert busy is not None
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "1"
        assert busy.json() == {"error": "The server is busy; try again in a moment."}
        assert requests.get(f"{served.url}/health", timeout=5).status_code == 200
        client = socketio.Client(reconnection=False)
        client.connect(served.url, headers=bearer(token), transports=["websocket"],
                       wait_timeout=10)
        assert client.call("ping", {"n": 1}, timeout=5)["pong"] == {"n": 1}
        client.disconnect()
        gate.set()
        slow.join(15)
        assert requests.get(f"{served.url}/api/v1/auth/me", headers=bearer(token),
                            timeout=5).status_code == 200
        metrics = app.extensions["trackeep"].metrics.render().decode()
        shed = next(line for line in metrics.splitlines()
                    if line.startswith("trackeep_requests_shed_total"))
        assert float(shed.split()[-1]) >= 1
    finally:
        gate.set()
        served.stop()

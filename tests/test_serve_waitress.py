"""`trackeep serve --server waitress`: the pure-Python server for hosts without gevent.

waitress cannot hand a request's socket to a WebSocket, so Socket.IO is offered long-polling
only; these tests check that live updates still reach a client that way, that a WebSocket is
refused instead of half-working, and that a stop drains cleanly.
"""

from __future__ import annotations

import threading

import pytest
import requests
import socketio
from auth_actions import OWNER, bearer

from trackeep_desktop.realtime.namespaces import EVENTS_NAMESPACE

from clocks import wait_until

pytestmark = pytest.mark.slow


def _register(url: str) -> str:
    registered = requests.post(f"{url}/api/v1/auth/register", json=OWNER, timeout=10)
    assert registered.status_code == 201, registered.text
    return registered.json()["token"]


def test_waitress_serves_the_api_and_live_changes_over_long_polling(serve):
    instance = serve("--server", "waitress")
    health = requests.get(f"{instance.url}/health", timeout=5)
    assert health.status_code == 200
    assert health.headers["Server"] == "trackeep"  # waitress answered, not gevent
    token = _register(instance.url)

    handshake = requests.get(f"{instance.url}/socket.io/?EIO=4&transport=polling", timeout=5)
    assert handshake.status_code == 200
    assert '"upgrades":[]' in handshake.text  # no upgrade offered that would fail

    received: list[dict] = []
    client = socketio.Client(reconnection=False)
    client.on("change", received.append, namespace=EVENTS_NAMESPACE)
    client.connect(instance.url, headers=bearer(token), transports=["polling"],
                   namespaces=["/", EVENTS_NAMESPACE], wait_timeout=10)
    try:
        assert client.transport() == "polling"
        assert client.call("ping", {"n": 7}, timeout=5)["pong"] == {"n": 7}
        created = requests.post(f"{instance.url}/api/v1/bookmarks", headers=bearer(token),
                                json={"url": "https://example.com/polled"}, timeout=10)
        assert created.status_code == 201, created.text
        assert wait_until(lambda: received, timeout=10)
        assert [(m["action"], m["id"]) for m in received] == [
            ("created", created.json()["id"])]
    finally:
        client.disconnect()


def test_waitress_refuses_a_websocket_instead_of_half_opening_it(serve):
    instance = serve("--server", "waitress")
    token = _register(instance.url)
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(instance.url, headers=bearer(token), transports=["websocket"],
                       wait_timeout=5)


def test_waitress_answers_requests_during_a_stop_and_keeps_data(serve, tmp_path):
    data_dir = tmp_path / "kept"
    instance = serve("--server", "waitress", data_dir=data_dir)
    token = _register(instance.url)
    # A long poll in progress must not hold the stop up for its 25 s.
    poller = socketio.Client(reconnection=False)
    poller.connect(instance.url, headers=bearer(token), transports=["polling"],
                   wait_timeout=10)
    answers: list[int] = []

    def save_many():
        with requests.Session() as session:
            for n in range(200):
                try:
                    answer = session.post(f"{instance.url}/api/v1/bookmarks",
                                          headers=bearer(token), timeout=10,
                                          json={"url": f"https://example.com/{n}"})
                except requests.ConnectionError:
                    return  # the server stopped accepting: later saves are refused whole
                answers.append(answer.status_code)

    saver = threading.Thread(target=save_many)
    saver.start()
    assert wait_until(lambda: len(answers) >= 5, timeout=20)
    assert instance.stop() == 0
    saver.join(15)
    poller.disconnect()
    output = instance.output()
    assert "Traceback" not in output
    assert "stopped" in output
    assert set(answers) == {201}  # every save that was answered was saved, none half-done

    again = serve("--server", "waitress", data_dir=data_dir)
    login = requests.post(f"{again.url}/api/v1/auth/login", timeout=10,
                          json={"email": OWNER["username"], "password": OWNER["password"]})
    assert login.status_code == 200, login.text
    listed = requests.get(f"{again.url}/api/v1/bookmarks?limit=200", timeout=10,
                          headers=bearer(login.json()["token"]))
    assert listed.status_code == 200
    # Each answered save is kept; a save cut by the stop may be kept without its answer.
    assert len(answers) <= int(listed.headers["X-Total-Count"]) <= len(answers) + 1


def test_an_unknown_server_is_a_clear_configuration_error(serve):
    with pytest.raises(AssertionError, match="unknown server 'nginx'"):
        serve(env_extra={"TRACKEEP_SERVER": "nginx"})

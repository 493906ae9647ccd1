"""The desktop program's stable port and the discovery answer an extension looks for.

An extension or a bookmark can only find the desktop program if it listens where it did
before: 8080 (the original extension's default) when it is free, else the port of last time,
else the rest of 8080-8089, else any free port.
"""

from __future__ import annotations

import socket

import pytest
import requests
from flask import Flask

from trackeep_desktop.desktop.launch import PORT_FILE
from trackeep_desktop.desktop.program import bind_stable_port, candidate_ports, port_is_free
from trackeep_desktop.web.server import ThreadedServer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _taken_port():
    """A listening socket on a port of its own (close it to free the port)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder, holder.getsockname()[1]


@pytest.fixture
def make_server():
    app = Flask(__name__)
    app.get("/")(lambda: "here")
    started: list[ThreadedServer] = []

    def make(port: int) -> ThreadedServer:
        server = ThreadedServer(app, "127.0.0.1", port)
        started.append(server)
        return server

    yield make
    for server in started:  # never served (stop() would wait for serve_forever): close
        server._server.server_close()


def test_the_order_of_ports_tried(tmp_path):
    assert candidate_ports(tmp_path) == [*range(8080, 8090), 0]
    (tmp_path / PORT_FILE).write_text('{"port": 9123}')
    assert candidate_ports(tmp_path) == [8080, 9123, *range(8081, 8090), 0]
    (tmp_path / PORT_FILE).write_text('{"port": "nonsense"}')
    assert candidate_ports(tmp_path)[:2] == [8080, 8081]


def test_the_preferred_port_when_free_and_it_is_remembered(tmp_path, make_server):
    preferred = _free_port()
    server = bind_stable_port(make_server, tmp_path, preferred=preferred, scan=[])
    assert server.port == preferred
    assert f'"port": {preferred}' in (tmp_path / PORT_FILE).read_text()
    server.start_background()
    try:
        assert requests.get(f"http://127.0.0.1:{preferred}/", timeout=5).text == "here"
    finally:
        server.stop(timeout=1)


def test_a_taken_preferred_port_falls_back_to_last_times_then_the_range(tmp_path,
                                                                        make_server):
    holder, preferred = _taken_port()
    try:
        assert not port_is_free(preferred)
        last = _free_port()
        (tmp_path / PORT_FILE).write_text(f'{{"port": {last}}}')
        assert bind_stable_port(make_server, tmp_path, preferred=preferred).port == last

        in_range = _free_port()
        (tmp_path / PORT_FILE).write_text(f'{{"port": {preferred}}}')  # taken as well
        assert bind_stable_port(make_server, tmp_path, preferred=preferred,
                                scan=[preferred, in_range]).port == in_range

        other_holder, other = _taken_port()
        try:  # everything taken: any free port, and that one is remembered
            server = bind_stable_port(make_server, tmp_path, preferred=preferred,
                                      scan=[other])
            assert server.port not in (preferred, other, 0)
            assert f'"port": {server.port}' in (tmp_path / PORT_FILE).read_text()
        finally:
            other_holder.close()
    finally:
        holder.close()


def test_discovery_says_who_answers_and_nothing_secret(make_app):
    app = make_app()
    client = app.test_client()
    answer = client.get("/.well-known/trackeep",
                        headers={"Origin": "chrome-extension://abcdefghijklmnop"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["app"] == "trackeep"
    assert body["mode"] == "server"
    assert body["api"] == "http://localhost/api/v1"
    assert body["pairing"] == "http://localhost/api/v1/auth/pair"
    assert set(body) == {"app", "name", "version", "mode", "api", "pairing"}
    assert answer.headers["Access-Control-Allow-Origin"] == "chrome-extension://abcdefghijklmnop"
    assert "Access-Control-Allow-Credentials" not in answer.headers
    firefox = client.get("/.well-known/trackeep",
                         headers={"Origin": "moz-extension://6c1f0a3e-1d2b-4c5d-9e8f-0a1b2c3d4e5f"})
    assert firefox.headers["Access-Control-Allow-Origin"].startswith("moz-extension://")
    page = client.get("/.well-known/trackeep", headers={"Origin": "https://evil.example"})
    assert page.status_code == 200
    assert "Access-Control-Allow-Origin" not in page.headers  # a web page cannot read it


def test_discovery_in_desktop_mode_says_desktop(make_app):
    app = make_app(DESKTOP_MODE=True)
    assert app.test_client().get("/.well-known/trackeep").get_json()["mode"] == "desktop"

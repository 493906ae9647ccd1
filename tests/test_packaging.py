"""The single executable: build the server binary with packaging/build.sh (once per session)
and smoke-test it as a home server would run it: health, owner set-up, a bookmark saved over
the API, Socket.IO over a real WebSocket, SIGTERM, and the data after restart."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import socketio
from auth_actions import OWNER, bearer

from conftest import unavailable

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.packaging, pytest.mark.slow]


@pytest.fixture(scope="session")
def _server_build(tmp_path_factory):
    """``(path, None)`` of a freshly built ``trackeep-server``, or ``(None, reason)``."""
    if importlib.util.find_spec("PyInstaller") is None:
        yield None, "PyInstaller is not installed (pip install -e '.[packaging]')"
        return
    out = tmp_path_factory.mktemp("pyinstaller")
    env = {**os.environ, "PYTHON": sys.executable, "DIST_DIR": str(out / "dist"),
           "BUILD_DIR": str(out / "build")}
    result = subprocess.run(["bash", "packaging/build.sh", "server"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    binary = out / "dist" / "trackeep-server"
    if result.returncode != 0 or not binary.is_file():
        pytest.fail(f"packaging/build.sh server failed ({result.returncode}):\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}", pytrace=False)
    yield binary, None


@pytest.fixture
def server_binary(_server_build):
    binary, reason = _server_build
    if binary is None:
        unavailable(reason)
    return binary


BOOKMARK = {"url": "https://example.org/frozen", "title": "Saved by the frozen server"}


def test_server_binary_serves_keeps_data_and_stops_on_sigterm(server_binary, tmp_path, serve,
                                                              database_url):
    data_dir = tmp_path / "data"
    # The test bookmark's page is not fetched.
    first = serve(data_dir=data_dir, binary=server_binary,
                  env_extra={"TRACKEEP_FETCH_METADATA": "0"})
    try:
        health = first.wait_for_health()
        assert health["status"] == "ok", health
        backend = "postgresql" if database_url.startswith("postgres") else "sqlite"
        assert health["database"]["backend"] == backend

        created = requests.post(f"{first.url}/api/v1/auth/register", json=OWNER, timeout=10)
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        saved = requests.post(f"{first.url}/api/v1/bookmarks", json=BOOKMARK,
                              headers=bearer(token), timeout=10)
        assert saved.status_code == 201, saved.text

        client = socketio.Client(reconnection=False)
        client.connect(first.url, headers=bearer(token), transports=["websocket"],
                       wait_timeout=10)
        try:
            assert client.transport() == "websocket"
            assert client.call("ping", {"frozen": True}, timeout=5)["pong"] == {"frozen": True}
        finally:
            client.disconnect()
    finally:
        code = first.stop()
    assert code == 0, first.output()
    assert "Traceback" not in first.output()
    assert "stopped" in first.output()

    again = serve(data_dir=data_dir, binary=server_binary,
                  env_extra={"TRACKEEP_FETCH_METADATA": "0"})
    try:
        assert again.wait_for_health()["status"] == "ok"
        me = requests.get(f"{again.url}/api/v1/auth/me", headers=bearer(token), timeout=10)
        assert me.status_code == 200, me.text  # the session outlived the restart
        login = requests.post(f"{again.url}/api/v1/auth/login", timeout=10, json={
            "email": OWNER["username"], "password": OWNER["password"]})
        assert login.status_code == 200, login.text  # and so did the owner
        setup = requests.get(f"{again.url}/api/v1/auth/check-users", timeout=10).json()
        assert setup["hasUsers"] is True
        listing = requests.get(f"{again.url}/api/v1/bookmarks", headers=bearer(token),
                               timeout=10)
        assert listing.status_code == 200, listing.text
        assert BOOKMARK["title"] in listing.text, listing.text
    finally:
        assert again.stop() == 0, again.output()

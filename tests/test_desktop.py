"""Desktop mode: the launch token, one instance per data folder, the remembered window,
headless serving, and (marked ``desktop``) the real pywebview window under Xvfb."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from auth_actions import OWNER, AuthActions

from trackeep_desktop import desktop
from trackeep_desktop.clock import ManualClock
from trackeep_desktop.desktop import pages as desktop_pages

from conftest import unavailable
from processes import ROOT, ServerProcess, clean_environment

ARTIFACTS = ROOT / "test-artifacts" / "desktop"


@pytest.fixture
def desktop_app(make_app):
    """An app as desktop mode builds it: with ``/desktop/launch`` and its token store."""
    app = make_app()
    return app, desktop_pages.register_launch(app)


# --------------------------------------------------------------------------- launch token


def test_launch_token_signs_the_owner_in_once(desktop_app):
    app, tokens = desktop_app
    AuthActions(app).register_owner()
    token = tokens.issue()
    window = app.test_client()
    response = window.get(f"/desktop/launch?token={token}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    cookie = window.get_cookie("trackeep_session")
    assert cookie is not None
    assert cookie.http_only
    dashboard = window.get("/")
    assert dashboard.status_code == 200
    assert OWNER["fullName"] in dashboard.text
    assert tokens.session_ids == {cookie.value}

    thief = app.test_client()  # the same link again, from anywhere, is worthless
    again = thief.get(f"/desktop/launch?token={token}")
    assert again.status_code == 302
    assert again.headers["Location"].startswith("/login")
    assert thief.get_cookie("trackeep_session") is None
    assert thief.get("/").status_code == 302


def test_wrong_and_expired_tokens_lead_to_the_login_page(make_app):
    app = make_app()
    clock = ManualClock()
    tokens = desktop.LaunchTokens(ttl=60, clock=clock.now)
    app.extensions[desktop.EXTENSION] = tokens
    app.register_blueprint(desktop_pages.bp, url_prefix="/desktop")
    AuthActions(app).register_owner()
    client = app.test_client()
    real = tokens.issue()
    altered = real[:-1] + ("B" if real.endswith("A") else "A")  # one character off
    for bad in ("", "nope", "x" * 300, altered):
        response = client.get("/desktop/launch", query_string={"token": bad})
        assert response.headers["Location"].startswith("/login"), bad
    stale = tokens.issue()
    clock.advance(61)
    assert client.get(f"/desktop/launch?token={stale}").headers["Location"].startswith("/login")
    assert client.get_cookie("trackeep_session") is None


def test_first_launch_shows_the_owner_set_up(desktop_app):
    app, tokens = desktop_app
    client = app.test_client()
    response = client.get(f"/desktop/launch?token={tokens.issue()}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/setup"
    assert "Create the owner account" in client.get("/setup").text


def test_launch_token_never_reaches_the_logs(desktop_app, caplog):
    app, tokens = desktop_app
    AuthActions(app).register_owner()
    token = tokens.issue()
    with caplog.at_level(logging.DEBUG):
        client = app.test_client()
        client.get(f"/desktop/launch?token={token}")
        client.get(f"/desktop/launch?token={token}")  # refused: logged, without the token
    assert any("refused a desktop launch link" in r.getMessage() for r in caplog.records)
    assert all(token not in r.getMessage() for r in caplog.records)


def test_only_desktop_mode_has_the_launch_route(client):
    assert client.get("/desktop/launch?token=x").status_code == 404


def test_window_sessions_end_when_the_desktop_stops(make_app, tmp_path):
    app = make_app()
    tokens = desktop_pages.register_launch(app)
    AuthActions(app).register_owner()
    window = app.test_client()
    window.get(f"/desktop/launch?token={tokens.issue()}")
    session_id = window.get_cookie("trackeep_session").value
    desktop.end_window_sessions(app.extensions["trackeep"], tokens)
    assert app.extensions["trackeep"].capabilities.sessions.get(session_id) is None
    assert window.get("/").status_code == 302


# ----------------------------------------------------------------------- single instance


def test_instance_lock_is_exclusive_and_released(tmp_path):
    first, second = desktop.InstanceLock(tmp_path), desktop.InstanceLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_control_port_answers_only_with_the_key(tmp_path):
    control = desktop.ControlServer(lambda: {"window": True, "url": "http://127.0.0.1:1/"})
    control.start()
    try:
        record = {"control_port": control.port, "key": control.key}
        assert desktop.ask_running_instance(record, "activate")["window"] is True
        with pytest.raises((ConnectionError, ValueError)):
            desktop.ask_running_instance({**record, "key": "0" * 64}, "activate")
        with pytest.raises(ConnectionError):
            desktop.ask_running_instance(record, "format-disk")
    finally:
        control.stop()


def test_private_files_are_written_for_the_owner_only(tmp_path):
    path = tmp_path / "desktop.json"
    desktop.write_private_json(path, {"key": "secret"})
    assert desktop.read_json(path) == {"key": "secret"}
    assert path.stat().st_mode & 0o077 == 0


def test_closing_lets_a_request_in_progress_finish():
    """The desktop's server stops accepting at once but lets a save or upload finish."""
    import threading

    from flask import Flask

    from trackeep_desktop.web.server import ThreadedServer

    app = Flask(__name__)
    started, finished = threading.Event(), threading.Event()

    @app.post("/slow")
    def slow():
        started.set()
        time.sleep(0.5)
        finished.set()
        return "saved"

    server = ThreadedServer(app, "127.0.0.1", 0)
    thread = server.start_background()
    answers = []
    client = threading.Thread(target=lambda: answers.append(
        requests.post(f"http://127.0.0.1:{server.port}/slow", timeout=10)))
    client.start()
    assert started.wait(5)
    server.stop(timeout=5)
    assert finished.is_set(), "stop() returned before the request finished"
    client.join(5)
    thread.join(5)
    assert answers
    assert answers[0].text == "saved"


def test_no_display_means_headless(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert "no display" in desktop.window_unavailable_reason()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # an explicit Qt platform is a display
    assert desktop.has_display()


# ------------------------------------------------------------------------ window geometry


def test_window_geometry_is_remembered_and_nonsense_ignored(tmp_path):
    path = tmp_path / "window.json"
    assert desktop.WindowGeometry.load(path) == desktop.WindowGeometry()
    desktop.WindowGeometry(width=900, height=700, x=-20, y=30, maximized=True).save(path)
    assert desktop.WindowGeometry.load(path) == desktop.WindowGeometry(900, 700, -20, 30, True)
    path.write_text(json.dumps({"width": 10, "height": "big", "x": 5, "maximized": 1}))
    assert desktop.WindowGeometry.load(path) == desktop.WindowGeometry()
    path.write_text("{not json")
    assert desktop.WindowGeometry.load(path) == desktop.WindowGeometry()


def test_window_geometry_follows_moves_but_keeps_the_size_from_before_maximizing():
    class Event(list):
        """pywebview's ``window.events.<name>``: ``+=`` a handler, ``set(...)`` fires."""

        def __iadd__(self, handler):
            self.append(handler)
            return self

        def set(self, *args):
            for handler in self:
                handler(*args)

    class Events:
        moved, resized, maximized, restored = Event(), Event(), Event(), Event()

    class Window:
        events = Events()

    geometry = desktop.WindowGeometry()
    geometry.follow(Window)
    Window.events.moved.set(10, 20)
    Window.events.resized.set(1000, 700)
    Window.events.maximized.set()
    Window.events.resized.set(1920, 1080)
    Window.events.moved.set(0, 0)
    assert (geometry.width, geometry.height, geometry.x, geometry.y) == (1000, 700, 10, 20)
    assert geometry.maximized
    Window.events.restored.set()
    assert not geometry.maximized


def test_the_window_menu_starts_and_stops_the_timer_and_opens_the_time_page():
    """The menu's timer entry presses the header timer in the page (run_js); Time opens
    /time. A window object stands in for pywebview's."""
    pytest.importorskip("webview.menu")
    from trackeep_desktop.desktop.program import TOGGLE_TIMER_JS, DesktopWindow

    class Window:
        def __init__(self):
            self.ran, self.loaded = [], []

        def run_js(self, code):
            self.ran.append(code)

        def load_url(self, url):
            self.loaded.append(url)

    window = object.__new__(DesktopWindow)
    window.window = Window()
    window.desktop = type("Desktop", (), {"url": "http://127.0.0.1:5000/",
                                          "data_dir": Path("/nowhere")})()
    actions = {item.title: item for item in window.menu()[0].items if hasattr(item, "title")}
    actions["Start or stop the timer"].function()
    assert window.window.ran == [TOGGLE_TIMER_JS]
    assert "timer-toggle" in TOGGLE_TIMER_JS
    actions["Time"].function()
    assert window.window.loaded == ["http://127.0.0.1:5000/time"]


# ------------------------------------------------------------------------------- processes


def desktop_process(data_dir: Path, database_url: str, env: dict,
                    log_path: Path) -> ServerProcess:
    """``trackeep`` (desktop mode) as a child process, its output in ``log_path``."""
    return ServerProcess([sys.executable, "-m", "trackeep_desktop", "--data-dir", str(data_dir),
                          "--database-url", database_url], log_path, env=env)


@pytest.mark.slow
def test_headless_launch_serves_prints_the_url_and_stops_cleanly(tmp_path, database_url):
    data_dir = tmp_path / "data"
    first = desktop_process(data_dir, database_url, clean_environment(), tmp_path / "first.log")
    try:
        url = first.url + "/"
        assert url.startswith("http://127.0.0.1:")
        assert "no display found" in first.output()
        assert requests.get(f"{url}health", timeout=5).json()["status"] == "ok"

        second = subprocess.run(
            [sys.executable, "-m", "trackeep_desktop", "--data-dir", str(data_dir),
             "--database-url", database_url],
            env=clean_environment(), cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert f"Trackeep is already running at {url}" in second.stdout
        assert requests.get(f"{url}health", timeout=5).ok  # the first one is untouched
    finally:
        code = first.stop()
    assert code == 0
    assert "Traceback" not in first.output()
    assert not (data_dir / desktop.INSTANCE_FILE).exists()
    if database_url.startswith("sqlite"):
        wal = Path(database_url.removeprefix("sqlite:///") + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0, "the WAL was not checkpointed"


# ------------------------------------------------------------------ the real window (Qt)


def _window_toolkit_missing() -> str | None:
    for module in ("webview", "qtpy", "PySide6"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[desktop]')"
    if importlib.util.find_spec("PySide6.QtWebEngineWidgets") is None:
        return "PySide6's Qt WebEngine is not installed (pip install -e '.[desktop]')"
    return None


@pytest.fixture(scope="session")
def x_display(tmp_path_factory):
    """A private Xvfb display, ``:N``, for the session."""
    reason = _window_toolkit_missing()
    if reason is None and shutil.which("Xvfb") is None:
        reason = "Xvfb is not installed (apt install xvfb)"
    if reason:
        yield None, reason
        return
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0",
                             "1280x900x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    yield (f":{number}" if number else None), "Xvfb did not start"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def display(x_display):
    name, reason = x_display
    if name is None:
        unavailable(reason)
    return name


def _screenshot(display_name: str, name: str) -> Path | None:
    """Save the whole virtual screen under test-artifacts/desktop/ (ImageMagick's ``import``)."""
    if shutil.which("import") is None:
        return None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    subprocess.run(["import", "-display", display_name, "-window", "root", str(path)],
                   check=True, timeout=30)
    return path


PAGE_PROBE = ("JSON.stringify({title: document.title, path: location.pathname, "
              "text: document.body ? document.body.innerText : ''})")


def _page(process: ServerProcess, after: int = 0) -> dict:
    loaded = json.loads(process.wait_for_line(desktop.LOADED_PREFIX, timeout=90, after=after))
    return {"url": loaded["url"], **json.loads(loaded["result"])}


@pytest.mark.desktop
def test_window_shows_set_up_then_signs_the_owner_in_and_keeps_data(
        tmp_path, database_url, display):
    data_dir = tmp_path / "data"
    backend = "postgres" if database_url.startswith("postgres") else "sqlite"
    env = clean_environment(DISPLAY=display, **{desktop.PROBE_ENV: PAGE_PROBE})
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env["QTWEBENGINE_DISABLE_SANDBOX"] = "1"

    first = desktop_process(data_dir, database_url, env, tmp_path / "first.log")
    try:
        url = first.url + "/"
        page = _page(first)
        assert page["path"] == "/setup", page  # first launch: the owner set-up
        assert "Create the owner account" in page["text"]
        shot = _screenshot(display, f"desktop-first-launch-{backend}.png")
        assert shot is None or shot.stat().st_size > 1000

        # Written while the window is open, checked after it was closed and reopened.
        created = requests.post(f"{url}api/v1/auth/register", json=OWNER, timeout=10)
        assert created.status_code == 201, created.text
        assert requests.get(f"{url}", timeout=5, allow_redirects=False).status_code == 302

        second = subprocess.run(
            [sys.executable, "-m", "trackeep_desktop", "--data-dir", str(data_dir),
             "--database-url", database_url],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert "its window was brought forward" in second.stdout
    finally:
        code = first.stop()  # SIGTERM closes the window as its close button does
    assert code == 0, first.output()
    assert "Traceback" not in first.output()
    assert "signal SIGTERM: closing the window" in first.output()
    assert desktop.read_json(data_dir / desktop.WINDOW_FILE)["width"] >= desktop.MIN_SIZE[0]
    assert not (data_dir / desktop.INSTANCE_FILE).exists()

    again = desktop_process(data_dir, database_url, env, tmp_path / "again.log")
    try:
        page = _page(again)
        assert page["path"] == "/", page  # signed in by the launch token, no password
        assert page["title"].endswith("Trackeep")
        assert OWNER["fullName"] in page["text"], page  # the owner written before closing
        _screenshot(display, f"desktop-dashboard-{backend}.png")
        # The window's session is the window's: a browser on the same server is not in.
        assert requests.get(again.url, timeout=5, allow_redirects=False).status_code == 302
    finally:
        code = again.stop()
    assert code == 0, again.output()
    assert "Traceback" not in again.output()

"""Desktop mode (``trackeep`` with no command): the server on a free loopback port and a
native window on it, for the person sitting at the machine.

* **One instance per data folder.** The first launch holds ``desktop.lock`` in the data folder
  and writes ``desktop.json`` (its URL and a loopback control port with a random key, readable
  by the owner only). A second launch finds the lock taken, asks the running instance over
  the control port to bring its window forward, and exits: two servers never share a
  database.
* **Signed in without a password.** The window opens ``/desktop/launch?token=...`` with a
  one-time token that lives only in this process's memory, expires after
  :data:`LAUNCH_TOKEN_TTL` seconds and is never logged; the server swaps it for a session of
  the owner. Every other client (a browser, the extension, a script) still needs credentials.
  On the first launch there is no owner yet, and the window shows the owner set-up.
* **A clean shutdown.** Closing the window (or Quit, or SIGTERM) stops the server, lets the
  requests in progress finish, ends the window's sessions, flushes counters and checkpoints
  SQLite (:meth:`~trackeep_desktop.app.TrackeepState.close`).
* **Headless.** With no display, or no window toolkit (``pip install
  'trackeep-desktop[desktop]'``), it says so, serves on loopback, prints the URL (opening the
  system browser when there is a display) and runs until SIGINT or SIGTERM.

The window is pywebview: Qt through PySide6 on Linux (``QT_API=pyside6``), the system's web
view on Windows and macOS. The server runs in this process in threading mode: gevent's
monkey-patching hangs the Qt window before its ``loaded`` event (see stack-notes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import secrets
import signal
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, redirect, request, url_for

from . import accounts
from .auth import end_current_session, public, set_session_cookie, start_session
from .models import User

log = logging.getLogger(__name__)

WINDOW_TITLE = "Trackeep"
LOCK_FILE = "desktop.lock"
INSTANCE_FILE = "desktop.json"
WINDOW_FILE = "window.json"

#: Seconds a launch token stays valid; the window asks for its page right after start-up.
LAUNCH_TOKEN_TTL = 120.0
#: The window's default and smallest size.
DEFAULT_SIZE = (1200, 800)
MIN_SIZE = (480, 400)
#: Test and benchmark hook: a JavaScript expression evaluated in the window after each page
#: load; the result is printed as one ``Trackeep window loaded: {json}`` line on stdout.
PROBE_ENV = "TRACKEEP_DESKTOP_PROBE"
LOADED_PREFIX = "Trackeep window loaded: "
RUNNING_PREFIX = "Trackeep is running at "

#: ``app.extensions`` key of the :class:`LaunchTokens` of a desktop app.
EXTENSION = "trackeep_desktop_launch"


# ------------------------------------------------------------------------- launch tokens


class LaunchTokens:
    """One-time, short-lived tokens that sign the desktop's owner in.

    Only a SHA-256 of each token is kept, in this process's memory; a token is gone once
    redeemed or expired. The ids of the sessions started this way are remembered so the
    desktop can end them when its window closes.
    """

    def __init__(self, ttl: float = LAUNCH_TOKEN_TTL, clock=time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}  # sha256(token) -> monotonic expiry
        self.session_ids: set[str] = set()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def issue(self) -> str:
        """A new token, valid once within :attr:`ttl` seconds."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._expiry = {d: t for d, t in self._expiry.items() if t > now}
            self._expiry[self._digest(token)] = now + self.ttl
        return token

    def redeem(self, token: str) -> bool:
        """True once for a live token; False for an unknown, used or expired one."""
        if not token or len(token) > 256:
            return False
        with self._lock:
            expires = self._expiry.pop(self._digest(token), None)
        return expires is not None and expires > self._clock()


bp = Blueprint("desktop", __name__)


def _private(response):
    """Keep a response that carries or follows a launch token out of caches and Referers."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def find_owner():
    """The account the desktop signs in: the first active admin, or None."""
    return (User.select().where(User.role == "admin", User.is_active)
            .order_by(User.id).first())


@bp.get("/launch")
@public  # deliberately anonymous: the token is the credential
def launch():
    """Swap a launch token for a session of the owner, then show the dashboard.

    Before the owner exists this is the owner set-up; a wrong, used or expired token leads
    to the login page, as for any other client.
    """
    tokens: LaunchTokens = current_app.extensions[EXTENSION]
    if not tokens.redeem(request.args.get("token", "")):
        log.warning("refused a desktop launch link: unknown, used or expired token")
        return _private(redirect(url_for("auth_web.login")))
    if accounts.count_users() == 0:
        return _private(redirect(url_for("auth_web.setup")))
    owner = find_owner()
    if owner is None:
        log.warning("desktop launch: no active admin account to sign in")
        return _private(redirect(url_for("auth_web.login")))
    end_current_session()
    session = start_session(owner, remember=False, kind="desktop")
    tokens.session_ids.add(session["id"])
    response = redirect(url_for("web.index"))
    set_session_cookie(response, session)
    return _private(response)


def register_launch(app: Flask) -> LaunchTokens:
    """Add ``/desktop/launch`` to ``app`` (desktop mode only); returns its token store."""
    tokens = LaunchTokens()
    app.extensions[EXTENSION] = tokens
    app.register_blueprint(bp, url_prefix="/desktop")
    return tokens


# ----------------------------------------------------------------------- single instance


class InstanceLock:
    """An exclusive, non-blocking lock on ``desktop.lock`` in the data folder.

    The operating system releases it when the process ends, however it ends, so a crash
    never leaves the data folder locked.
    """

    def __init__(self, data_dir: Path):
        self.path = data_dir / LOCK_FILE
        self._file = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+b")  # held open while locked
        try:
            if os.name == "nt":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is None:
            return
        try:
            if os.name == "nt":
                import msvcrt

                self._file.seek(0)
                msvcrt.locking(self._file.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._file.close()
            self._file = None


def write_private_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON readable by this user only, replacing ``path`` atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class ControlServer:
    """The running instance's loopback control port: a second launch asks it to show itself.

    One JSON line in (``{"key": ..., "command": "activate"}``), one JSON line out. The key
    is random per run and written only to ``desktop.json`` in the data folder (mode 0600):
    whoever can read it can read the database too.
    """

    def __init__(self, on_activate):
        self.key = secrets.token_hex(32)
        self.on_activate = on_activate
        control = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 5

            def handle(self):
                try:
                    message = json.loads(self.rfile.readline(4096) or b"{}")
                except ValueError:
                    return
                if not isinstance(message, dict) or not hmac.compare_digest(
                        str(message.get("key", "")), control.key):
                    log.warning("refused a desktop control request with a wrong key")
                    return
                answer = control.handle(message.get("command"))
                self.wfile.write(json.dumps(answer).encode() + b"\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def handle(self, command: str | None) -> dict[str, Any]:
        if command == "activate":
            return {"ok": True, **self.on_activate()}
        return {"ok": False, "error": f"unknown command {command!r}"}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="trackeep-desktop-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()


def ask_running_instance(record: dict, command: str, timeout: float = 5.0) -> dict:
    """Send ``command`` to the instance described by ``desktop.json``; returns its answer."""
    import socket

    with socket.create_connection(("127.0.0.1", int(record["control_port"])),
                                  timeout=timeout) as sock:
        sock.sendall(json.dumps({"key": record["key"], "command": command}).encode() + b"\n")
        with sock.makefile("rb") as reader:
            line = reader.readline(65536)
    answer = json.loads(line) if line else None
    if not isinstance(answer, dict) or not answer.get("ok"):
        raise ConnectionError(f"the running instance refused {command!r}: {answer}")
    return answer


# ------------------------------------------------------------------------ window geometry


@dataclasses.dataclass
class WindowGeometry:
    """The window's size, position and maximized state, kept in ``window.json``."""

    width: int = DEFAULT_SIZE[0]
    height: int = DEFAULT_SIZE[1]
    x: int | None = None
    y: int | None = None
    maximized: bool = False

    @classmethod
    def load(cls, path: Path) -> WindowGeometry:
        """The saved geometry, with anything missing or absurd replaced by a default."""
        data = read_json(path) or {}
        geometry = cls()

        def number(name, low, high):
            value = data.get(name)
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
            return value if ok else None

        geometry.width = number("width", MIN_SIZE[0], 10_000) or geometry.width
        geometry.height = number("height", MIN_SIZE[1], 10_000) or geometry.height
        x, y = number("x", -10_000, 10_000), number("y", -10_000, 10_000)
        if x is not None and y is not None:
            geometry.x, geometry.y = x, y
        geometry.maximized = data.get("maximized") is True
        return geometry

    def save(self, path: Path) -> None:
        try:
            write_private_json(path, dataclasses.asdict(self))
        except OSError as exc:
            log.warning("could not save the window's size and position: %s", exc)

    def follow(self, window) -> None:
        """Track a pywebview window's moves, resizes and maximizing. A maximized window's
        size is not kept, so un-maximizing next time restores the size it had before."""

        def moved(x, y):
            if not self.maximized:
                self.x, self.y = int(x), int(y)

        def resized(width, height):
            if not self.maximized:
                self.width = max(int(width), MIN_SIZE[0])
                self.height = max(int(height), MIN_SIZE[1])

        def maximized():
            self.maximized = True

        def restored():
            self.maximized = False

        window.events.moved += moved
        window.events.resized += resized
        window.events.maximized += maximized
        window.events.restored += restored


# ------------------------------------------------------------------------ the environment


def has_display() -> bool:
    """Whether a window could be shown: always on Windows and macOS; on Linux an X11 or
    Wayland display, or an explicit Qt platform (``QT_QPA_PLATFORM=offscreen`` in tests)."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or os.environ.get("QT_QPA_PLATFORM"))


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def window_unavailable_reason() -> str | None:
    """Why no window can open here, or None when it can."""
    if not has_display():
        return "no display found (DISPLAY and WAYLAND_DISPLAY are unset)"
    install = "pip install 'trackeep-desktop[desktop]'"
    if not _module_exists("webview"):
        return f"the window toolkit is not installed ({install})"
    if sys.platform.startswith("linux"):
        if not (_module_exists("qtpy") and _module_exists("PySide6.QtWebEngineWidgets")):
            return f"Qt WebEngine for Python is not installed ({install})"
        if _needs_xcb() and not getattr(sys, "frozen", False):
            import ctypes.util

            if ctypes.util.find_library("xcb-cursor") is None:
                # Qt would abort the whole process, server included, without it.
                return ("Qt needs the system library libxcb-cursor0 "
                        "(apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1)")
    return None


def _needs_xcb() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.startswith("xcb")
    return bool(os.environ.get("DISPLAY")) and not os.environ.get("WAYLAND_DISPLAY")


def _prepare_qt_environment() -> None:
    """Settings Qt reads at import: PySide6 (LGPL) rather than PyQt6, and no Chromium
    sandbox as root, where QtWebEngine refuses to start with one."""
    os.environ.setdefault("QT_API", "pyside6")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")


def open_in_browser(url: str) -> None:
    """Open ``url`` in the system's browser (which signs in like any other client)."""
    import webbrowser

    try:
        webbrowser.open(url)
    except Exception as exc:  # no browser is not an error worth stopping for
        log.info("could not open a browser: %s", exc)


def open_folder(path: Path) -> None:
    """Show ``path`` in the system's file manager."""
    try:
        if sys.platform == "win32":
            os.startfile(path)  # type: ignore[attr-defined]
        elif sys.platform == "darwin":
            subprocess.Popen(["open", str(path)])
        else:
            subprocess.Popen(["xdg-open", str(path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    except OSError as exc:
        log.warning("could not open %s: %s", path, exc)


def icon_path() -> Path | None:
    """The window icon (PNG), bundled with the static files."""
    from .paths import static_dir

    path = static_dir() / "icons" / "trackeep.png"
    return path if path.is_file() else None


# --------------------------------------------------------------------------- the program


def wait_for_health(url: str, timeout: float = 30.0) -> float:
    """Wait until ``url/health`` answers (any HTTP status); returns the seconds waited."""
    started = time.perf_counter()
    deadline = started + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "health", timeout=2):
                return time.perf_counter() - started
        except urllib.error.HTTPError:
            return time.perf_counter() - started  # it answered: 503 is an answer too
        except OSError:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the server at {url} did not answer /health") from None
            time.sleep(0.02)


class DesktopServer:
    """The application and its threaded server on a loopback port, with launch tokens."""

    def __init__(self, overrides: dict):
        from .app import create_app
        from .server import ThreadedServer

        overrides = {**overrides, "ASYNC_MODE": "threading", "HOST": "127.0.0.1"}
        if "PORT" not in overrides and not os.environ.get("TRACKEEP_PORT"):
            overrides["PORT"] = 0  # a free port: never collide with another program
        self.app = create_app(overrides)
        self.state = self.app.extensions["trackeep"]
        self.tokens = register_launch(self.app)
        self.server = ThreadedServer(self.app, "127.0.0.1", self.state.config["PORT"])
        self.url = f"http://127.0.0.1:{self.server.port}/"
        self.data_dir = Path(self.state.config["DATA_DIR"])
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve in a background thread and wait until ``/health`` answers."""
        self._thread = self.server.start_background()
        wait_for_health(self.url)

    def launch_url(self) -> str:
        """A one-time URL that signs the window in as the owner (never print or log it)."""
        return f"{self.url}desktop/launch?token={self.tokens.issue()}"

    def stop(self) -> None:
        """Stop serving (requests in progress finish), end the window's sessions, then
        flush and close the database."""
        try:
            if self._thread is not None:
                self.server.stop()
                self._thread.join(timeout=15)
            end_window_sessions(self.state, self.tokens)
        finally:
            self.state.close()


def end_window_sessions(state, tokens: LaunchTokens) -> None:
    """End the sessions that launch tokens started (the window's cookie dies with it)."""
    from .db import connection

    if not tokens.session_ids:
        return
    try:
        with connection(state.db):
            for session_id in tokens.session_ids:
                state.capabilities.sessions.delete(session_id)
    except Exception:
        log.exception("could not end the window's sessions")
    tokens.session_ids.clear()


def run_desktop(overrides: dict) -> int:
    """``trackeep``: a window on this user's data, or the running instance brought forward,
    or, headless, a server whose URL is printed. Returns the exit status."""
    from .config import load_config

    data_dir = Path(load_config(overrides)["DATA_DIR"])
    lock = InstanceLock(data_dir)
    deadline = time.monotonic() + 30
    while not lock.acquire():
        answer = contact_running_instance(data_dir)
        if answer is not None:
            return report_running_instance(answer)
        if time.monotonic() > deadline:  # e.g. its window is stuck, or it is shutting down
            print(f"trackeep: another Trackeep holds {data_dir / LOCK_FILE} but does not "
                  "answer", file=sys.stderr, flush=True)
            return 1
        time.sleep(0.2)
    try:
        desktop = DesktopServer(overrides)
        try:
            desktop.start()
            window, reason = None, window_unavailable_reason()
            if reason is None:
                try:
                    window = DesktopWindow(desktop)
                except ImportError as exc:
                    reason = f"the window toolkit could not be loaded ({exc})"
            with announced(desktop, window):
                if window is not None:
                    window.run()
                    return 0
                return run_headless(desktop, reason)
        finally:
            desktop.stop()
    finally:
        lock.release()


def contact_running_instance(data_dir: Path) -> dict | None:
    """Ask the instance that holds the lock to come forward; None if it does not answer
    (it may still be starting, or be shutting down)."""
    record = read_json(data_dir / INSTANCE_FILE)
    if record is None:
        return None
    try:
        return ask_running_instance(record, "activate")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("the running instance does not answer: %s", exc)
        return None


def report_running_instance(answer: dict) -> int:
    """Tell the person what the running instance did for this second launch."""
    if answer.get("window"):
        print("Trackeep is already open; its window was brought forward.", flush=True)
    else:
        print(f"Trackeep is already running at {answer['url']}", flush=True)
        if has_display():
            open_in_browser(answer["url"])
    return 0


@contextlib.contextmanager
def announced(desktop: DesktopServer, window: DesktopWindow | None):
    """Let second launches find this instance (``desktop.json`` and the control port) for
    the duration of the block."""
    def activate() -> dict:
        if window is not None:
            window.bring_forward()
        return {"window": window is not None, "url": desktop.url}

    control = ControlServer(activate)
    control.start()
    record_path = desktop.data_dir / INSTANCE_FILE
    try:
        write_private_json(record_path, {"pid": os.getpid(), "url": desktop.url,
                                         "control_port": control.port, "key": control.key})
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            record_path.unlink()
        control.stop()


class DesktopWindow:
    """The pywebview window on the desktop server, with its menu and remembered geometry."""

    def __init__(self, desktop: DesktopServer):
        _prepare_qt_environment()
        import webview  # ImportError here means: no usable toolkit, serve headless

        self.desktop = desktop
        self._webview = webview
        self.geometry_path = desktop.data_dir / WINDOW_FILE
        self.geometry = WindowGeometry.load(self.geometry_path)
        geometry = self.geometry
        self.window = webview.create_window(
            WINDOW_TITLE, desktop.launch_url(), width=geometry.width, height=geometry.height,
            x=geometry.x, y=geometry.y, maximized=geometry.maximized, min_size=MIN_SIZE,
            background_color="#F6F7F9", text_select=True)
        geometry.follow(self.window)
        _probe(self.window)

    def menu(self) -> list:
        """Reload, Open data folder, Open in browser, Quit (in the window's menu bar on
        Linux and Windows, the application menu on macOS)."""
        from webview.menu import Menu, MenuAction, MenuSeparator

        desktop = self.desktop
        return [Menu("Trackeep", [
            MenuAction("Reload", self.reload),
            MenuAction("Open data folder", lambda: open_folder(desktop.data_dir)),
            MenuAction("Open in browser", lambda: open_in_browser(desktop.url)),
            MenuSeparator(),
            MenuAction("Quit", self.close),
        ])]

    def reload(self) -> None:
        self.window.load_url(self.window.get_current_url() or self.desktop.url)

    def close(self) -> None:
        """Close the window, as its close button does (from any thread)."""
        self.window.destroy()

    def bring_forward(self) -> None:
        """Un-minimize, raise and focus the window (a second launch asked for it)."""
        try:
            self.window.restore()
            self.window.show()
        except Exception as exc:
            log.warning("could not bring the window forward: %s", exc)

    def run(self) -> None:
        """Show the window; return once it is closed (its size and position saved)."""

        def close_on_signal(signum, frame):
            log.info("signal %s: closing the window", signal.Signals(signum).name)
            # destroy() waits until the window is shown: never block the main thread on it.
            threading.Thread(target=self.close, name="trackeep-close", daemon=True).start()

        signal.signal(signal.SIGTERM, close_on_signal)
        print(f"{RUNNING_PREFIX}{self.desktop.url} (window open)", flush=True)
        icon = icon_path()
        self._webview.start(gui="qt" if sys.platform.startswith("linux") else None,
                            menu=self.menu(), icon=str(icon) if icon else None,
                            private_mode=True)
        self.geometry.save(self.geometry_path)


def _probe(window) -> None:
    """The :data:`PROBE_ENV` hook: print the expression's value after each page load."""
    expression = os.environ.get(PROBE_ENV)
    if not expression:
        return

    def on_loaded():
        try:
            result = window.evaluate_js(expression)
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        page = (window.get_current_url() or "").split("?", 1)[0]
        print(LOADED_PREFIX + json.dumps({"url": page, "result": result}), flush=True)

    window.events.loaded += on_loaded


def run_headless(desktop: DesktopServer, reason: str) -> int:
    """Serve without a window until SIGINT or SIGTERM."""
    print(f"Trackeep: {reason}; serving without a window.", flush=True)
    print(f"{RUNNING_PREFIX}{desktop.url}", flush=True)
    if has_display():
        open_in_browser(desktop.url)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):  # a timeout keeps signals prompt on every platform
        pass
    log.info("shutting down")
    return 0

"""The desktop program itself: start the server on loopback, open the window on it, and
stop cleanly when the window closes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .environment import (
    _prepare_qt_environment,
    has_display,
    icon_path,
    open_folder,
    open_in_browser,
    window_unavailable_reason,
)
from .geometry import WindowGeometry
from .instance import (
    ControlServer,
    InstanceLock,
    ask_running_instance,
    read_json,
    write_private_json,
)
from .launch import (
    DEFAULT_PORT,
    DISCOVERY_PORTS,
    INSTANCE_FILE,
    LOADED_PREFIX,
    LOCK_FILE,
    MIN_SIZE,
    PORT_FILE,
    PROBE_ENV,
    RUNNING_PREFIX,
    WINDOW_FILE,
    WINDOW_TITLE,
    LaunchTokens,
)
from .pages import register_launch

if TYPE_CHECKING:
    from trackeep_desktop.web.server import ThreadedServer

log = logging.getLogger(__name__)


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
        from trackeep_desktop.app import create_app
        from trackeep_desktop.web.server import ThreadedServer

        # DESKTOP_MODE is no setting: it tells the domains they serve the desktop (daily
        # backups unless BACKUP_INTERVAL_HOURS says otherwise).
        overrides = {**overrides, "ASYNC_MODE": "threading", "HOST": "127.0.0.1",
                     "DESKTOP_MODE": True}
        chosen = "PORT" in overrides or bool(os.environ.get("TRACKEEP_PORT"))
        self.app = create_app(overrides)
        self.state = self.app.extensions["trackeep"]
        self.tokens = register_launch(self.app)
        self.data_dir = Path(self.state.config["DATA_DIR"])
        if chosen:
            self.server = ThreadedServer(self.app, "127.0.0.1", self.state.config["PORT"])
        else:
            self.server = bind_stable_port(
                lambda port: ThreadedServer(self.app, "127.0.0.1", port), self.data_dir)
        self.url = f"http://127.0.0.1:{self.server.port}/"
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


def candidate_ports(data_dir: Path, preferred: int = DEFAULT_PORT,
                    scan: Iterable[int] = DISCOVERY_PORTS) -> list[int]:
    """The ports to try, in order: 8080 (where extensions and bookmarks look first), the
    port of last time, the rest of the discovery range, then any free one (0)."""
    last = (read_json(data_dir / PORT_FILE) or {}).get("port")
    ports = [preferred]
    if isinstance(last, int) and 0 < last < 65536:
        ports.append(last)
    ports += list(scan)
    return [*dict.fromkeys(ports), 0]


def port_is_free(port: int) -> bool:
    """Whether a listening socket could bind ``127.0.0.1:port`` now (as the server binds:
    with SO_REUSEADDR, so a port in TIME_WAIT after our own last run counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def bind_stable_port(make_server: Callable[[int], ThreadedServer], data_dir: Path,
                     preferred: int = DEFAULT_PORT, scan: Iterable[int] = DISCOVERY_PORTS
                     ) -> ThreadedServer:
    """A server on the first of :func:`candidate_ports` that is free, its port recorded
    for next time. (Werkzeug exits the process when its bind fails, so each port is tried
    with a probe first.)"""
    port = next(p for p in candidate_ports(data_dir, preferred, scan)
                if p == 0 or port_is_free(p))
    server = make_server(port)
    if server.port != preferred:
        log.info("port %d is taken: listening on %d", preferred, server.port)
    try:
        write_private_json(data_dir / PORT_FILE, {"port": server.port})
    except OSError as exc:
        log.warning("could not remember the port (%s)", exc)
    return server


def end_window_sessions(state, tokens: LaunchTokens) -> None:
    """End the sessions that launch tokens started (the window's cookie dies with it)."""
    from trackeep_desktop.storage.db import connection

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
    from trackeep_desktop.config import load_config

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


#: What the menu's "Start or stop the timer" runs in the page.
TOGGLE_TIMER_JS = 'document.getElementById("timer-toggle")?.click()'


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
        """Start or stop the timer, Time, Reload, Open data folder, Open in browser, Quit (in
        the window's menu bar on Linux and Windows, the application menu on macOS)."""
        from webview.menu import Menu, MenuAction, MenuSeparator

        desktop = self.desktop
        return [Menu("Trackeep", [
            MenuAction("Start or stop the timer", self.toggle_timer),
            MenuAction("Time", lambda: self.window.load_url(f"{desktop.url}time")),
            MenuSeparator(),
            MenuAction("Reload", self.reload),
            MenuAction("Open data folder", lambda: open_folder(desktop.data_dir)),
            MenuAction("Open in browser", lambda: open_in_browser(desktop.url)),
            MenuSeparator(),
            MenuAction("Quit", self.close),
        ])]

    def toggle_timer(self) -> None:
        """Press the page's header timer (``static/js/timer.js``): it starts a timer now or
        stops the running one, as a click does. ``run_js``, not ``evaluate_js``: the pages'
        Content-Security-Policy refuses the ``eval`` the latter wraps the code in."""
        self.window.run_js(TOGGLE_TIMER_JS)

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
            # run_js, not evaluate_js: evaluate_js wraps the expression in eval(), which the
            # pages' Content-Security-Policy refuses; run_js hands it to the engine as is.
            result = window.run_js(expression)
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

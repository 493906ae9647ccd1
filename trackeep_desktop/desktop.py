"""Desktop mode: the server on a free loopback port and a native window on it.

Without a display, or without the GUI toolkit (``pip install 'trackeep-desktop[desktop]'``),
it says so and runs the server, printing its URL. The window runs in this process in
threading mode: gevent monkey-patching hangs pywebview's Qt window (see stack-notes).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
import threading

log = logging.getLogger(__name__)


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def window_unavailable_reason() -> str | None:
    """Why no window can open here, or None when it can."""
    if not has_display():
        return "no display found (DISPLAY / WAYLAND_DISPLAY unset)"
    if importlib.util.find_spec("webview") is None:
        return "the window toolkit is not installed (pip install 'trackeep-desktop[desktop]')"
    return None


def run_desktop(overrides: dict) -> int:
    from .app import create_app
    from .server import ThreadedServer

    overrides = {"ASYNC_MODE": "threading", **overrides}
    if "PORT" not in overrides and not os.environ.get("TRACKEEP_PORT"):
        overrides["PORT"] = 0  # a free port: never collide with another program
    overrides["HOST"] = "127.0.0.1"
    app = create_app(overrides)
    state = app.extensions["trackeep"]
    server = ThreadedServer(app, "127.0.0.1", state.config["PORT"])
    url = f"http://127.0.0.1:{server.port}/"
    reason = window_unavailable_reason()
    try:
        if reason is None:
            return _run_window(server, url)
        print(f"Trackeep: {reason}; serving in this terminal instead.", flush=True)
        print(f"Trackeep is running at {url}", flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        thread = server.start_background()
        if has_display():
            import webbrowser

            webbrowser.open(url)
        stop.wait()
        server.stop()
        thread.join(timeout=5)
        return 0
    finally:
        state.close()


def _run_window(server, url: str) -> int:
    os.environ.setdefault("QT_API", "pyside6")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    import webview

    thread = server.start_background()
    webview.create_window("Trackeep", url, width=1200, height=800, min_size=(480, 400))
    print(f"Trackeep is running at {url} (window open)", flush=True)
    webview.start(gui="qt" if sys.platform.startswith("linux") else None)
    server.stop()
    thread.join(timeout=5)
    return 0

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

from trackeep_desktop.desktop.environment import (
    has_display,
    window_unavailable_reason,
)
from trackeep_desktop.desktop.geometry import (
    WindowGeometry,
)
from trackeep_desktop.desktop.instance import (
    ControlServer,
    InstanceLock,
    ask_running_instance,
    read_json,
    write_private_json,
)
from trackeep_desktop.desktop.launch import (
    EXTENSION,
    INSTANCE_FILE,
    LOADED_PREFIX,
    MIN_SIZE,
    PROBE_ENV,
    RUNNING_PREFIX,
    WINDOW_FILE,
    LaunchTokens,
)
from trackeep_desktop.desktop.program import (
    end_window_sessions,
)

__all__ = [
    "EXTENSION",
    "INSTANCE_FILE",
    "LOADED_PREFIX",
    "MIN_SIZE",
    "PROBE_ENV",
    "RUNNING_PREFIX",
    "WINDOW_FILE",
    "ControlServer",
    "InstanceLock",
    "LaunchTokens",
    "WindowGeometry",
    "ask_running_instance",
    "end_window_sessions",
    "has_display",
    "read_json",
    "window_unavailable_reason",
    "write_private_json",
]

"""What the machine offers the window: a display, Qt's settings, the icon, and opening
folders and URLs with the system's own programs."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


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
    from trackeep_desktop.paths import static_dir

    path = static_dir() / "icons" / "trackeep.png"
    return path if path.is_file() else None

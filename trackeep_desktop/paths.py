"""Where things live: bundled templates and static files, and the user's data folder.

A source checkout keeps ``static/`` and ``templates/`` at its top; an installed wheel has
them inside the package; a PyInstaller bundle has them under ``sys._MEIPASS``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs

PACKAGE_DIR = Path(__file__).resolve().parent
APP_NAME = "Trackeep"


def _resource_dir(name: str) -> Path:
    candidates = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / name)
    candidates += [PACKAGE_DIR / name, PACKAGE_DIR.parent / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name}/ folder (looked in {candidates})")


def static_dir() -> Path:
    """The folder of CSS, JavaScript, fonts and icons served under ``/static``."""
    return _resource_dir("static")


def templates_dir() -> Path:
    """The folder of Jinja templates."""
    return _resource_dir("templates")


def default_data_dir() -> Path:
    """The user's data folder for Trackeep (``~/.local/share/Trackeep`` on Linux)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))

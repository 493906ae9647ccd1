"""The import rule of docs/architecture.md, checked by walking every module's imports.

* The domain (every module of the domain packages but their ``api.py`` and ``pages.py``, and
  the shared Flask-free modules) imports neither Flask, Flask-SocketIO nor Werkzeug, nor any
  module of the web side (``web/``, views, ``app``): it runs the same under a view, a job,
  the CLI and a test.
* A view (``api.py``, ``pages.py``) imports no other view: what two views share lives in
  ``web/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import trackeep_desktop

PACKAGE = Path(trackeep_desktop.__file__).parent
FLASK_PACKAGES = ("flask", "flask_socketio", "werkzeug")
#: The web side: what may speak Flask.
WEB_SIDE = ("trackeep_desktop.__main__", "trackeep_desktop.app", "trackeep_desktop.cli",
            "trackeep_desktop.web",
            "trackeep_desktop.realtime.namespaces", "trackeep_desktop.realtime.queue",
            "trackeep_desktop.desktop")
VIEW_NAMES = ("api", "pages")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (absolute names)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def is_view(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in VIEW_NAMES


def on_web_side(name: str) -> bool:
    return is_view(name) or any(name == w or name.startswith(w + ".") for w in WEB_SIDE)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_the_walk_sees_the_layers():
    found = modules()
    assert "trackeep_desktop.items.bookmarks" in found
    assert not on_web_side("trackeep_desktop.items.bookmarks")
    assert on_web_side("trackeep_desktop.items.api")
    assert on_web_side("trackeep_desktop.web.auth")
    assert "flask" in imports_of(found["trackeep_desktop.items.api"])


def test_domain_modules_import_no_flask_and_nothing_of_the_web_side():
    offences = []
    for name, path in sorted(modules().items()):
        if on_web_side(name):
            continue
        for imported in sorted(imports_of(path)):
            root = imported.split(".")[0]
            if root in FLASK_PACKAGES or (imported.startswith("trackeep_desktop.")
                                          and on_web_side(imported)):
                offences.append(f"{name} imports {imported}")
    assert offences == []


def test_no_view_imports_another_view():
    offences = []
    found = modules()
    for name, path in sorted(found.items()):
        if not is_view(name):
            continue
        for imported in sorted(imports_of(path)):
            if imported in found and is_view(imported) and imported != name:
                offences.append(f"{name} imports {imported}")
    assert offences == []

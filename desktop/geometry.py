"""TODO geometry."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .instance import read_json, write_private_json
from .launch import DEFAULT_SIZE, MIN_SIZE, log


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

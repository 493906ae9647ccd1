"""Clocks. Every capability takes one so tests can move time instead of sleeping."""

import threading
import time


class SystemClock:
    """Wall-clock time in seconds (float), as ``time.time()``."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to; for tests of TTLs and windows."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

"""Periodic work of one application instance, on one background thread.

Today: flushing counters to the database (``COUNTER_FLUSH_INTERVAL``) and purging the trash
of what has been in it longer than the retention (hourly). Each task runs in the
application's database connection and change pipeline; a task that fails logs and runs
again at its next time. The thread starts with the first task and stops at
:meth:`Periodic.close`.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import threading
import time
from collections.abc import Callable

from trackeep_desktop.storage.changes import Pipeline, use_pipeline
from trackeep_desktop.storage.db import connection

log = logging.getLogger(__name__)


@dataclasses.dataclass(order=True)
class _Due:
    at: float
    name: str = dataclasses.field(compare=False)
    interval: float = dataclasses.field(compare=False)
    run: Callable[[], None] = dataclasses.field(compare=False)


class Periodic:
    """Runs named tasks every so many seconds (monotonic time) on one thread."""

    def __init__(self, db, pipeline: Pipeline):
        self.db = db
        self.pipeline = pipeline
        self._due: list[_Due] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread: threading.Thread | None = None

    def every(self, interval: float, name: str, run: Callable[[], None]) -> None:
        """Run ``run()`` every ``interval`` seconds, the first time after one interval."""
        with self._wake:
            heapq.heappush(self._due, _Due(time.monotonic() + interval, name, interval, run))
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._loop, name="trackeep-periodic",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def run_now(self, name: str, run: Callable[[], None]) -> None:
        """Run a task once, here and now, as the thread would (start-up work)."""
        self._run(name, run)

    def _run(self, name: str, run: Callable[[], None]) -> None:
        try:
            with connection(self.db), use_pipeline(self.pipeline):
                run()
        except Exception:
            log.exception("the periodic task %r failed; it runs again at its next time", name)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (
                        not self._due or self._due[0].at > time.monotonic()):
                    timeout = self._due[0].at - time.monotonic() if self._due else None
                    self._wake.wait(timeout)
                if self._closed:
                    return
                due = heapq.heappop(self._due)
                due.at = max(due.at + due.interval, time.monotonic())
                heapq.heappush(self._due, due)
            self._run(due.name, due.run)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (a task under way finishes first); safe to call twice."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

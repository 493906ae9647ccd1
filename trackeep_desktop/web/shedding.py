"""Bounded work in flight: fair under saturation, a clear 503 beyond it.

A home server at 100 % CPU used to serve some clients in 15 ms and others in 2 s: gevent
starts every request at once, they all compete for the same two cores, and whoever the
scheduler favours wins. :class:`LoadShedder` wraps the WSGI application: at most
``MAX_IN_FLIGHT`` requests are worked on at a time; the others wait in line (first come,
first served: gevent's and threading's semaphores wake waiters in order) for at most
``QUEUE_TIMEOUT`` seconds, and a request that still finds no room is answered at once with
``503 Service Unavailable`` and ``Retry-After: 1`` (JSON ``{"error": ...}`` under ``/api/``),
never left hanging. Everyone is served slowly rather than some not at all.

Not counted: Socket.IO (``/socket.io/``: a WebSocket lives for hours and is not work in
flight; its events are small) and ``/health`` (a load balancer must see the instance alive
while it is busy). The slot is given back when the application returns its response: a
Flask response is complete by then, while a streamed one (an export) is produced as the
client reads it, at the client's pace, and holding a slot for a slow download would let a few
downloads shut everyone else out. (Holding it until the server closes the body would also
leak slots wherever a body is never closed, as in Werkzeug's test client.)
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

#: Paths never counted (prefixes).
EXEMPT = ("/socket.io/", "/health")

_BUSY_MESSAGE = "The server is busy; try again in a moment."


class LoadShedder:
    """WSGI middleware: at most ``max_in_flight`` requests at once, a wait of at most
    ``queue_timeout`` seconds for a slot, else a 503 with ``Retry-After``."""

    def __init__(self, app: Callable, max_in_flight: int, queue_timeout: float,
                 on_shed: Callable[[], None] | None = None):
        self.app = app
        self.max_in_flight = max_in_flight
        self.queue_timeout = queue_timeout
        self.on_shed = on_shed
        # Made at the first request, not here: under gevent the module is patched after the
        # app is built in some paths, and a semaphore must be of the kind that runs requests.
        self._slots: threading.Semaphore | None = None
        self._lock = threading.Lock()
        self.shed = 0

    def _semaphore(self) -> threading.Semaphore:
        if self._slots is None:
            with self._lock:
                if self._slots is None:
                    self._slots = threading.BoundedSemaphore(self.max_in_flight)
        return self._slots

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(EXEMPT):
            return self.app(environ, start_response)
        slots = self._semaphore()
        if not slots.acquire(timeout=self.queue_timeout):
            self.shed += 1
            if self.on_shed is not None:
                self.on_shed()
            return _busy(path, start_response)
        try:
            return self.app(environ, start_response)
        finally:
            slots.release()


def _busy(path: str, start_response: Callable) -> list[bytes]:
    if path.startswith("/api/"):
        body = json.dumps({"error": _BUSY_MESSAGE}).encode()
        content_type = "application/json"
    else:
        body = (f"<!doctype html><title>Busy · Trackeep</title><p>{_BUSY_MESSAGE}</p>"
                .encode())
        content_type = "text/html; charset=utf-8"
    start_response("503 SERVICE UNAVAILABLE", [
        ("Content-Type", content_type), ("Content-Length", str(len(body))),
        ("Retry-After", "1"), ("Cache-Control", "no-store")])
    return [body]


def init_app(app, state) -> None:
    """Wrap ``app``'s WSGI callable (outside Socket.IO's, which passes ``/socket.io/`` by)."""
    limit = int(app.config.get("MAX_IN_FLIGHT", 0))
    if limit <= 0:
        return
    metrics = getattr(state, "metrics", None)
    counter = getattr(metrics, "shed", None)
    shedder = LoadShedder(app.wsgi_app, limit, float(app.config.get("QUEUE_TIMEOUT", 1.5)),
                          on_shed=counter.inc if counter is not None else None)
    app.wsgi_app = shedder  # type: ignore[method-assign]
    app.extensions["trackeep_shedder"] = shedder

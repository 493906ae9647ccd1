"""Launch tokens: how a window's first request signs the desktop owner in without a password,
and the names and sizes the desktop program shares."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time

log = logging.getLogger(__name__)


WINDOW_TITLE = "Trackeep"


LOCK_FILE = "desktop.lock"


INSTANCE_FILE = "desktop.json"


WINDOW_FILE = "window.json"

#: The port the desktop program listened on last time (the data folder's ``port.json``).
PORT_FILE = "port.json"

#: Where an extension or a bookmark looks for the desktop program: the original extension's
#: default port (``http://localhost:8080/api/v1``) first, then the rest of this small range,
#: which discovery scans (``/.well-known/trackeep`` on each).
DEFAULT_PORT = 8080
DISCOVERY_PORTS = range(8080, 8090)


#: Seconds a launch token stays valid; the window asks for its page right after start-up.
LAUNCH_TOKEN_TTL = 120.0


#: The window's default and smallest size.
DEFAULT_SIZE = (1200, 800)


MIN_SIZE = (480, 400)


#: Test and benchmark hook: a JavaScript expression evaluated in the window after each page
#: load; the result is printed as one ``Trackeep window loaded: {json}`` line on stdout.
PROBE_ENV = "TRACKEEP_DESKTOP_PROBE"


LOADED_PREFIX = "Trackeep window loaded: "


RUNNING_PREFIX = "Trackeep is running at "


#: ``app.extensions`` key of the :class:`LaunchTokens` of a desktop app.
EXTENSION = "trackeep_desktop_launch"


class LaunchTokens:
    """One-time, short-lived tokens that sign the desktop's owner in.

    Only a SHA-256 of each token is kept, in this process's memory; a token is gone once
    redeemed or expired. The ids of the sessions started this way are remembered so the
    desktop can end them when its window closes.
    """

    def __init__(self, ttl: float = LAUNCH_TOKEN_TTL, clock=time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}  # sha256(token) -> monotonic expiry
        self.session_ids: set[str] = set()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def issue(self) -> str:
        """A new token, valid once within :attr:`ttl` seconds."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._expiry = {d: t for d, t in self._expiry.items() if t > now}
            self._expiry[self._digest(token)] = now + self.ttl
        return token

    def redeem(self, token: str) -> bool:
        """True once for a live token; False for an unknown, used or expired one."""
        if not token or len(token) > 256:
            return False
        with self._lock:
            expires = self._expiry.pop(self._digest(token), None)
        return expires is not None and expires > self._clock()

"""Time in the tests: an app on a clock the test moves (with Redis's own TTLs moved along),
and waiting for something another thread or process does, without a fixed sleep.

    clocked = make_clocked_app(request, make_app, key_prefix)   # or the ``clocked`` fixture
    clocked.advance(3600)                                       # an hour later, at once
    assert wait_until(lambda: server.is_up())
"""

from __future__ import annotations

import time

from trackeep_desktop.clock import ManualClock


def shorten_redis_ttls(client, prefix: str, seconds: float) -> None:
    """Shorten the TTL of every key under ``prefix`` by ``seconds`` (deleting the keys that
    would have expired): Redis expires keys on its own clock, not on the test's."""
    ms = int(seconds * 1000)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        pttl = client.pttl(key)
        if pttl is None or pttl < 0:
            continue
        if pttl - ms <= 0:
            client.delete(key)
        else:
            client.pexpire(key, pttl - ms)


class ClockedApp:
    """An app on a :class:`ManualClock`. With Redis, :meth:`advance` also shortens the TTL of
    every key under the app's prefix."""

    def __init__(self, app, clock: ManualClock):
        self.app = app
        self.clock = clock
        self.state = app.extensions["trackeep"]
        self.backend = self.state.capabilities.backend

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        client = self.state.capabilities.redis
        if client is not None:
            shorten_redis_ttls(client, self.state.config["KEY_PREFIX"], seconds)


def make_clocked_app(request, make_app, key_prefix, **overrides) -> ClockedApp:
    """For a fixture parametrized ``memory``/``redis``: an app on a manual clock."""
    clock = ManualClock(start=float(int(time.time())))
    config = {"CLOCK": clock, **overrides}
    if request.param == "redis":
        config.update(REDIS_URL=request.getfixturevalue("redis_url"), KEY_PREFIX=key_prefix)
    return ClockedApp(make_app(**config), clock)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (its last
    answer). For what another thread or process does; for time itself, move a clock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def eventually(predicate, timeout: float = 5.0) -> None:
    """Assert that ``predicate`` becomes true within ``timeout`` seconds."""
    assert wait_until(predicate, timeout, interval=0.01), "condition not reached in time"

"""A real redis-py client that a test can cut off from Redis, and reconnect, at once.

``client, switch = switchable_client(url)`` gives a client with the options the program uses,
over connections of :class:`SwitchableConnection`. ``switch.cut()`` makes every connection of
that client fail with ``redis.ConnectionError`` on its next connect, send or read (commands,
pipelines, Lua scripts and the pub/sub connection alike) while the server keeps running for
everyone else; ``switch.restore()`` lets them through again. It stands for an outage without
killing a server, so a fallback test takes milliseconds instead of seconds.
"""

from __future__ import annotations

import redis


class RedisSwitch:
    """Whether the connections of one switchable client may reach Redis."""

    def __init__(self):
        self.down = False

    def cut(self) -> None:
        self.down = True

    def restore(self) -> None:
        self.down = False


class SwitchableConnection(redis.Connection):
    """A TCP connection that fails like a dead server while its switch is cut."""

    def __init__(self, *args, switch: RedisSwitch, **kwargs):
        self.switch = switch
        super().__init__(*args, **kwargs)

    def _check(self) -> None:
        if self.switch.down:
            raise redis.ConnectionError("Redis is cut off by the test (RedisSwitch)")

    def connect(self):
        self._check()
        return super().connect()

    def send_packed_command(self, command, check_health=True):
        self._check()
        return super().send_packed_command(command, check_health)

    def can_read(self, timeout: float = 0) -> bool:
        self._check()
        return super().can_read(timeout)

    def read_response(self, *args, **kwargs):
        self._check()
        return super().read_response(*args, **kwargs)


def switchable_client(url: str) -> tuple[redis.Redis, RedisSwitch]:
    """A client for a ``redis://`` URL, with the program's options, and its switch."""
    switch = RedisSwitch()
    pool = redis.BlockingConnectionPool.from_url(
        url, connection_class=SwitchableConnection, switch=switch, max_connections=32,
        timeout=5, decode_responses=True, socket_connect_timeout=1.0, socket_timeout=2.0,
        health_check_interval=15, retry_on_timeout=False)
    return redis.Redis(connection_pool=pool), switch

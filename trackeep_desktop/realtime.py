"""Socket.IO: real WebSockets, and Redis as the message queue across instances.

Each application gets its own ``SocketIO`` server (tests build many apps in one process).
With a Redis URL, Socket.IO uses Redis as its message queue, so an event emitted on one
instance reaches clients connected to any instance; python-socketio still delivers to this
instance's own clients when Redis is down, which is the seed's "local-only" fallback.
"""

from __future__ import annotations

import time

from flask import Flask
from flask_socketio import Namespace, SocketIO


class SystemNamespace(Namespace):
    """The default namespace: liveness and round-trip checks for clients and benchmarks."""

    def on_ping(self, data=None):
        """Acknowledge with the data sent and the server time (``emit('ping', x, callback)``)."""
        return {"pong": data, "server_time": time.time()}

    def on_echo(self, data=None):
        """Emit the data back as an ``echo`` event (measures a full event round trip)."""
        self.emit("echo", data)


def create_socketio(app: Flask, config: dict) -> SocketIO:
    """Build and bind the Socket.IO server for ``app`` from its settings."""
    options = dict(async_mode=config["ASYNC_MODE"], manage_session=False, logger=False,
                   engineio_logger=False)
    if config.get("REDIS_URL"):
        options.update(message_queue=config["REDIS_URL"],
                       channel=f"{config['KEY_PREFIX']}:socketio")
    socketio = SocketIO(app, **options)
    socketio.on_namespace(SystemNamespace("/"))
    return socketio

"""Socket.IO: real WebSockets, and Redis as the message queue across instances.

Each application gets its own ``SocketIO`` server (tests build many apps in one process).
With a Redis URL, Socket.IO uses Redis as its message queue, so an event emitted on one
instance reaches clients connected to any instance; python-socketio still delivers to this
instance's own clients when Redis is down, which is the seed's "local-only" fallback.

Live change events live in the ``/events`` namespace. Connecting needs the session cookie
(or an ``Authorization: Bearer`` header with a session token, or an API key with the
``read`` scope); anonymous clients are refused. Each client joins the room ``user:{id}``.
The app subscribes once to ``events:*`` on the pub/sub capability (see
:mod:`trackeep_desktop.events`) and emits each message as a ``change`` event to that room
*on this instance only* (``ignore_queue=True``): with Redis, the pub/sub capability has
already carried the message to every instance, and relaying it through Socket.IO's queue
too would deliver it once per instance.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app
from flask_socketio import Namespace, SocketIO, join_room

from . import events
from .capabilities.base import PubSub, Subscription
from .db import connection

log = logging.getLogger(__name__)

EVENTS_NAMESPACE = "/events"


def user_room(user_id: int) -> str:
    """The Socket.IO room of one user's connections."""
    return f"user:{int(user_id)}"


class SystemNamespace(Namespace):
    """The default namespace: liveness and round-trip checks for clients and benchmarks."""

    def on_ping(self, data=None):
        """Acknowledge with the data sent and the server time (``emit('ping', x, callback)``)."""
        return {"pong": data, "server_time": time.time()}

    def on_echo(self, data=None):
        """Emit the data back as an ``echo`` event (measures a full event round trip)."""
        self.emit("echo", data)


def connected_user_id() -> int | None:
    """The user behind this Socket.IO handshake (its cookie or ``Authorization`` header), or
    None. API keys need the ``read`` scope: change events carry the items themselves."""
    from .auth import current_credentials

    with connection(current_app.extensions["trackeep"].db):
        credentials = current_credentials()
    if credentials is None or not credentials.allows("read", "GET"):
        return None
    return credentials.user.id


class EventsNamespace(Namespace):
    """``/events``: the signed-in user's live ``change`` events (server to client only)."""

    def on_connect(self, auth=None):
        """Refuse anonymous clients; put the user's clients in the room ``user:{id}``."""
        user_id = connected_user_id()
        if user_id is None:
            raise ConnectionRefusedError("authentication required")
        join_room(user_room(user_id))


def bridge_change_events(socketio: SocketIO, pubsub: PubSub) -> Subscription:
    """Relay every ``events:{user_id}`` message to that user's clients on this instance."""

    def relay(channel: str, message) -> None:
        user_id = events.user_of_channel(channel)
        if user_id is None:
            return
        socketio.emit("change", message, namespace=EVENTS_NAMESPACE, to=user_room(user_id),
                      ignore_queue=True)

    return pubsub.subscribe(events.CHANNEL_PATTERN, relay)


def create_socketio(app: Flask, config: dict) -> SocketIO:
    """Build and bind the Socket.IO server for ``app`` from its settings, and bridge the
    pub/sub change events to it."""
    options = dict(async_mode=config["ASYNC_MODE"], manage_session=False, logger=False,
                   engineio_logger=False)
    if config.get("REDIS_URL"):
        options.update(message_queue=config["REDIS_URL"],
                       channel=f"{config['KEY_PREFIX']}:socketio")
    socketio = SocketIO(app, **options)
    socketio.on_namespace(SystemNamespace("/"))
    socketio.on_namespace(EventsNamespace(EVENTS_NAMESPACE))
    state = app.extensions.get("trackeep")
    if state is not None:
        subscription = bridge_change_events(socketio, state.capabilities.pubsub)
        state.on_close.append(subscription.unsubscribe)
    return socketio

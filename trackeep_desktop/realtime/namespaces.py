"""Socket.IO: real WebSockets, and Redis as the message queue across instances.

Each application gets its own ``SocketIO`` server (tests build many apps in one process).
With a Redis URL, Socket.IO's message queue is the pub/sub capability
(:class:`~trackeep_desktop.realtime.queue.PubSubQueueManager`, channel
``{KEY_PREFIX}:socketio``): it runs over the one Redis client the capabilities built from
the URL, so every accepted URL works and a Redis failure shows in ``/health``; an event
emitted without ``ignore_queue`` on one instance reaches clients connected to any instance,
and while Redis is down python-socketio still delivers to this instance's own clients, which
is the "local-only" fallback of docs/architecture.md.

Almost nothing goes through that queue, on purpose. The two bridges below emit with
``ignore_queue=True``: what they relay already came over the pub/sub capability, which has
fanned it out to every instance, so each instance hands it to its own clients only. Sending
it through the queue as well would deliver it once per instance. The queue is left for
emits that start on one instance and must reach sockets on others (a room broadcast from a
handler, ``emit`` to a sid connected elsewhere, or an external ``socketio.RedisManager``
emitter on the same channel).

Live change events live in the ``/events`` namespace. Connecting needs the session cookie
(or an ``Authorization: Bearer`` header with a session token, or an API key with the
``read`` scope); anonymous clients are refused. Each client joins the room ``user:{id}``,
and a client signed in by a session the room ``session:{handle}``: when that session ends
(logout, revocation, password change, a disabled account) every instance disconnects it.
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

from trackeep_desktop import accounts
from trackeep_desktop.capabilities.base import PubSub, Subscription
from trackeep_desktop.realtime import events
from trackeep_desktop.realtime.queue import PubSubQueueManager
from trackeep_desktop.storage.db import connection

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


def session_room(handle: str) -> str:
    """The Socket.IO room of the connections signed in by one session."""
    return f"session:{handle}"


def connected_credentials():
    """The credentials behind this Socket.IO handshake (its cookie or ``Authorization``
    header), or None. API keys need the ``read`` scope: change events carry the items."""
    from trackeep_desktop.web.auth import current_credentials

    with connection(current_app.extensions["trackeep"].db):
        credentials = current_credentials()
    if credentials is None or not credentials.allows("read", "GET"):
        return None
    return credentials


class EventsNamespace(Namespace):
    """``/events``: the signed-in user's live ``change`` events (server to client only)."""

    def on_connect(self, auth=None):
        """Refuse anonymous clients; put the user's clients in the room ``user:{id}``."""
        credentials = connected_credentials()
        if credentials is None:
            raise ConnectionRefusedError("authentication required")
        join_room(user_room(credentials.user.id))
        if credentials.session is not None:
            join_room(session_room(accounts.session_handle(credentials.session["id"])))


def bridge_change_events(socketio: SocketIO, pubsub: PubSub) -> Subscription:
    """Relay every ``events:{user_id}`` message to that user's clients on this instance."""

    def relay(channel: str, message) -> None:
        user_id = events.user_of_channel(channel)
        if user_id is None:
            return
        socketio.emit("change", message, namespace=EVENTS_NAMESPACE, to=user_room(user_id),
                      ignore_queue=True)

    return pubsub.subscribe(events.CHANNEL_PATTERN, relay)


def disconnect_ended_sessions(socketio: SocketIO, pubsub: PubSub) -> Subscription:
    """Close this instance's sockets of every session announced as ended."""
    from trackeep_desktop.accounts.sessions import SESSIONS_ENDED_CHANNEL

    def close(channel: str, message) -> None:
        server = socketio.server
        for handle in message.get("handles", []):
            room = session_room(str(handle))
            for sid, _ in list(server.manager.get_participants(EVENTS_NAMESPACE, room)):
                server.disconnect(sid, namespace=EVENTS_NAMESPACE, ignore_queue=True)

    return pubsub.subscribe(SESSIONS_ENDED_CHANNEL, close)


def create_socketio(app: Flask, config: dict) -> SocketIO:
    """Build and bind the Socket.IO server for ``app`` from its settings, and bridge the
    pub/sub change events to it."""
    options = dict(async_mode=config["ASYNC_MODE"], manage_session=False, logger=False,
                   engineio_logger=False)
    state = app.extensions.get("trackeep")
    queue = None
    if state is not None and state.capabilities.redis is not None:
        queue = PubSubQueueManager(state.capabilities.pubsub,
                                   target=state.capabilities.redis_target)
        options.update(client_manager=queue)
    socketio = SocketIO(app, **options)
    socketio.on_namespace(SystemNamespace("/"))
    socketio.on_namespace(EventsNamespace(EVENTS_NAMESPACE))
    if state is not None:
        if queue is not None:
            state.on_close.append(queue.close)
        for bridge in (bridge_change_events, disconnect_ended_sessions):
            subscription = bridge(socketio, state.capabilities.pubsub)
            state.on_close.append(subscription.unsubscribe)
    return socketio


def init_app(app: Flask, state) -> None:
    """Socket.IO on this app, with the change events bridged to it."""
    state.socketio = create_socketio(app, app.config)

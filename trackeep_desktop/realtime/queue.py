"""Socket.IO's message queue, carried by the pub/sub capability.

Flask-SocketIO picks a queue manager from a URL prefix and knows only ``redis://`` and
``rediss://`` (``unix://`` and ``redis+sentinel://`` fall to kombu, which is not installed);
python-socketio's own ``RedisManager`` opens a second Redis client that retries on its own,
unseen by ``/health`` and by ``TRACKEEP_REDIS_REQUIRED``. :class:`PubSubQueueManager`
instead publishes and receives Socket.IO's queue messages on the pub/sub capability, channel
``socketio`` (``{KEY_PREFIX}:socketio`` in Redis, the channel python-socketio's
``RedisManager`` would use, so an external ``RedisManager(url, channel="tk:socketio",
write_only=True)`` can still emit to every instance). So:

- every accepted Redis URL works, over the one client the capabilities built from it;
- a Redis failure while publishing is reported to the capabilities' ``RedisMonitor`` like any
  other, and the queue falls back with pub/sub to local-only delivery (this instance's
  clients are served by python-socketio directly, before the message is published);
- start-up already failed if ``TRACKEEP_REDIS_REQUIRED`` is set and Redis does not answer.
"""

from __future__ import annotations

from socketio import PubSubManager
from socketio.manager import Manager

from trackeep_desktop.capabilities.base import PubSub, Subscription

#: The pub/sub channel of Socket.IO's queue (``{prefix}:socketio`` in Redis).
QUEUE_CHANNEL = "socketio"


class PubSubQueueManager(PubSubManager):
    """A python-socketio client manager whose queue is the pub/sub capability.

    ``target`` is the :class:`~trackeep_desktop.capabilities.RedisTarget` the capability's
    client connects to (shown in logs and tests; the manager opens no connection itself).
    """

    name = "trackeep-pubsub"

    def __init__(self, pubsub: PubSub, *, target=None, channel: str = QUEUE_CHANNEL):
        super().__init__(channel=channel)
        self.pubsub = pubsub
        self.target = target
        self._subscription: Subscription | None = None

    def initialize(self) -> None:
        """Called by the server before its first client: start receiving the queue.

        No listening thread of our own: the pub/sub capability's listener delivers each
        message to :meth:`_receive`.
        """
        Manager.initialize(self)  # not PubSubManager's: it would start a _listen() thread
        if self._subscription is None:
            self._subscription = self.pubsub.subscribe(self.channel, self._receive)

    def close(self) -> None:
        """Stop receiving the queue (the app is closing)."""
        if self._subscription is not None:
            self._subscription.unsubscribe()
            self._subscription = None

    def _publish(self, data) -> None:
        """Send one queue message to every instance (python-socketio calls this)."""
        self.pubsub.publish(self.channel, data)

    def _listen(self):  # pragma: no cover - messages arrive through _receive instead
        raise NotImplementedError("PubSubQueueManager receives through the pub/sub capability")

    def _receive(self, channel: str, data) -> None:
        """Handle one queue message, as python-socketio's listening thread would."""
        if not isinstance(data, dict) or "method" not in data:
            return
        if data["method"] == "callback":
            self._handle_callback(data)
            return
        if data.get("host_id") == self.host_id:
            return  # python-socketio handled it here before publishing it
        handler = {
            "emit": self._handle_emit,
            "disconnect": self._handle_disconnect,
            "enter_room": self._handle_enter_room,
            "leave_room": self._handle_leave_room,
            "close_room": self._handle_close_room,
        }.get(data["method"])
        if handler is not None:
            handler(data)

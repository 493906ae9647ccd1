"""What messaging tells the live clients, and when: after the write commits.

Every conversation event travels in the original Trackeep's envelope on the pub/sub
capability, channel ``messages:{conversation_id}`` (``tk:messages:{id}`` in Redis, so every
instance hears it; each relays it to its own members' sockets)::

    {"type": "message.created", "conversation_id": 7, "data": {...}, "timestamp": "...Z",
     "seq": 42}

``seq`` numbers a conversation's events 1, 2, 3... in the order their transactions
committed (assigned under the conversation row's lock, stored in ``conversation_event``): a
client that reconnects asks for the events after the last ``seq`` it saw and gets exactly
those, in order. Typing events are not stored and carry ``seq: null``.

Notifications go to ``notifications:{user_id}`` as ``{"type": "notification.created",
"data": notification, "timestamp"}``.

Publishing waits for the commit (:class:`Outbox`): a client must never hear of a message a
rollback took back, and what it hears must already be readable from the database.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.capabilities.base import PubSub
from trackeep_desktop.storage.db import database

log = logging.getLogger(__name__)

CONVERSATION_PREFIX = "messages:"
CONVERSATION_PATTERN = CONVERSATION_PREFIX + "*"
NOTIFICATION_PREFIX = "notifications:"
NOTIFICATION_PATTERN = NOTIFICATION_PREFIX + "*"

#: The conversation events (stored and numbered), then the transient ones.
EVENT_TYPES = ("message.created", "message.updated", "message.deleted", "reaction.added",
               "reaction.removed", "conversation.updated", "read.updated")
TRANSIENT_TYPES = ("typing.started", "typing.stopped")


def conversation_channel(conversation_id: int) -> str:
    """The pub/sub channel of one conversation's events."""
    return f"{CONVERSATION_PREFIX}{int(conversation_id)}"


def notification_channel(user_id: int) -> str:
    """The pub/sub channel of one user's notifications."""
    return f"{NOTIFICATION_PREFIX}{int(user_id)}"


def id_of_channel(channel: str, prefix: str) -> int | None:
    """The id in ``{prefix}{id}``, or None for any other name."""
    if not channel.startswith(prefix):
        return None
    rest = channel[len(prefix):]
    return int(rest) if rest.isdigit() else None


def envelope(event_type: str, conversation_id: int | None, data: Any,
             seq: int | None = None, at: float | None = None) -> dict:
    """One event in the original's envelope, with its ``seq``."""
    return {"type": event_type, "conversation_id": conversation_id, "data": data,
            "timestamp": iso_time(time.time() if at is None else at), "seq": seq}


class Outbox:
    """Publishes on the pub/sub capability once the current transaction commits (at once
    outside one); nothing for a rollback. Publishing never raises: the write is done, and a
    client that missed an event catches up through the numbered log on reconnect."""

    def __init__(self, pubsub: PubSub | None):
        self.pubsub = pubsub
        #: What was queued, in order (tests and callers read it back).
        self.sent: list[tuple[str, dict]] = []

    def publish(self, channel: str, message: dict) -> None:
        """Publish ``message`` on ``channel`` after the commit."""

        def send() -> None:
            self.sent.append((channel, message))
            if self.pubsub is None:
                return
            try:
                self.pubsub.publish(channel, message)
            except Exception:
                log.exception("could not publish a %s event on %s", message.get("type"),
                              channel)

        db = database.obj
        if db is None or db.transaction_depth() == 0:
            send()
        else:
            db.after_commit(send)

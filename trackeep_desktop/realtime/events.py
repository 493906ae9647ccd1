"""Change events: what a write tells the user's other windows and devices.

A write publishes one JSON message on the pub/sub capability, channel ``events:{user_id}``
(``tk:events:{user_id}`` in Redis, so every instance sharing that Redis hears it):

    {"type": "bookmark", "action": "updated", "id": 12, "item": {...}, "at": "...Z"}

``action`` is ``created``, ``updated``, ``deleted`` (moved to the trash), ``restored`` or
``purged``; ``item`` is the item as the API renders it (``null`` when purged). The Socket.IO
bridge in :mod:`trackeep_desktop.realtime` relays each message as a ``change`` event to the
user's clients connected to this instance.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.capabilities.base import PubSub

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "events:"
#: What the bridge subscribes to.
CHANNEL_PATTERN = CHANNEL_PREFIX + "*"
ACTIONS = ("created", "updated", "deleted", "restored", "purged")


def channel_for(user_id: int) -> str:
    """The pub/sub channel of one user's change events."""
    return f"{CHANNEL_PREFIX}{int(user_id)}"


def user_of_channel(channel: str) -> int | None:
    """The user id in an ``events:{id}`` channel name, or None for any other name."""
    if not channel.startswith(CHANNEL_PREFIX):
        return None
    rest = channel[len(CHANNEL_PREFIX):]
    return int(rest) if rest.isdigit() else None


def publish_change(pubsub: PubSub, user_id: int, item_type: str, action: str,
                   payload: dict[str, Any] | None, item_id: int | None = None) -> None:
    """Publish one change of the user's data; never raises (the write is already done, and a
    missed live update is repaired by the next page load)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown change action {action!r}")
    message = {
        "type": item_type,
        "action": action,
        "id": item_id if item_id is not None else (payload or {}).get("id"),
        "item": payload,
        "at": iso_time(time.time()),
    }
    try:
        pubsub.publish(channel_for(user_id), message)
    except Exception:
        log.exception("could not publish a %s %s event for user %s", item_type, action, user_id)

"""Notifications: a mention, a direct message, being added to a group.

Kept in the database with their read state, and published after the commit on
``notifications:{user_id}`` so the user's open windows hear of them at once (the
``/messages`` namespace relays them). A muted conversation notifies only on mentions (the
senders of DMs check the mute; mentions ignore it).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.models import Notification

from .conversations import InvalidInput, NotFound, parse_id, write_transaction
from .live import Outbox, envelope, notification_channel

KINDS = ("mention", "direct_message", "added")
MAX_LIMIT = 200


def notify(user_id: int, kind: str, *, conversation_id: int | None, actor_id: int | None,
           text: str, now: float, outbox: Outbox, message_id: int | None = None
           ) -> Notification:
    """Store one notification and publish it after the commit."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    note = Notification.create(user=user_id, kind=kind, conversation=conversation_id,
                               message_id=message_id, actor=actor_id, text=text[:500],
                               created_at=now)
    outbox.publish(notification_channel(user_id),
                   envelope("notification.created", conversation_id,
                            notification_to_json(note), at=now))
    return note


def notification_to_json(note: Notification) -> dict:
    """One notification as its user sees it."""
    return {"id": note.id, "kind": note.kind, "conversation_id": note.conversation_id,
            "message_id": note.message_id, "actor_id": note.actor_id, "text": note.text,
            "read": note.read_at is not None, "created_at": iso_time(note.created_at),
            "read_at": iso_time(note.read_at)}


def unread_notifications(user_id: int) -> int:
    """How many of the user's notifications are unread."""
    return Notification.select().where(Notification.user == user_id,
                                       Notification.read_at.is_null()).count()


def list_notifications(user_id: int, *, unread_only: bool = False,
                       limit: int = 50) -> list[Notification]:
    """The user's latest notifications, newest first."""
    query = Notification.select().where(Notification.user == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_null())
    return list(query.order_by(Notification.id.desc()).limit(limit))


def mark_notifications_read(user_id: int, data: Mapping[str, Any], *,
                            now: float | None = None) -> int:
    """Mark ``{ids: [...]}`` read, or every one with ``{all: true}`` (or no ids); returns
    how many changed."""
    now = time.time() if now is None else now
    ids = data.get("ids")
    query = Notification.update(read_at=now).where(Notification.user == user_id,
                                                   Notification.read_at.is_null())
    if ids is not None and not data.get("all"):
        if not isinstance(ids, list) or len(ids) > MAX_LIMIT:
            raise InvalidInput(f"ids is a list of at most {MAX_LIMIT} notification ids.",
                               "ids")
        query = query.where(Notification.id.in_([parse_id(i, "ids") for i in ids]))
    with write_transaction():
        return query.execute()


def mark_one_read(user_id: int, notification_id: int, *, now: float) -> Notification:
    """Mark one notification read; :class:`NotFound` for another user's."""
    note = Notification.get_or_none(Notification.id == notification_id,
                                    Notification.user == user_id)
    if note is None:
        raise NotFound("No such notification.")
    if note.read_at is None:
        note.read_at = now
        note.save()
    return note

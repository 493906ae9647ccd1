"""Conversations: direct messages, groups, notes to self and the instance's ``#general``.

* A **direct** conversation (``dm``) is two people, one per pair: opening it again returns
  the same one (its ``unique_key`` ``dm:{low}:{high}`` is unique, so two racing opens meet).
  A DM with yourself is your **notes to self** (``self``, one per user).
* A **group** (or ``team``, the original's word, handled the same) has a name and members
  with a role: ``owner``, ``admin`` or ``member``. Owners and admins add and remove members
  and rename it; only owners make owners. Anyone may leave, except the last owner while
  others remain: they hand over first.
* **#general** (``general``) holds every active user of the instance; it is created on first
  use and tops itself up with the users added since (:func:`ensure_general`).

Who may be messaged: any active user of the instance. Archive and mute belong to each member.
A conversation you are not in does not exist for you: every refusal is :class:`NotFound`.

Each change is numbered in the conversation's event log (:func:`record_event`) and published
after the commit (:class:`~trackeep_desktop.messaging.live.Outbox`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import peewee

from trackeep_desktop import errors
from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import (
    Conversation,
    ConversationEvent,
    ConversationMember,
    Message,
    User,
)

from .live import Outbox, conversation_channel, envelope

KINDS = ("dm", "group", "team", "self", "general")
#: The kinds a client may open (``self`` is a DM with yourself; ``general`` exists already).
OPENABLE_KINDS = ("dm", "group", "team", "self")
ROLES = ("owner", "admin", "member")
MAX_NAME_LENGTH = 100
MAX_TOPIC_LENGTH = 500
MAX_MEMBERS_AT_ONCE = 100
GENERAL_KEY = "general"
GENERAL_NAME = "general"


class MessagingError(errors.DomainError):
    """A request the messaging domain refuses."""


class InvalidInput(MessagingError, errors.Invalid):
    """A field is missing, malformed or out of range."""

    reason = "invalid"


class NotFound(MessagingError, errors.NotFound):
    """No such conversation or message for this user (those they are not in included)."""


class NotAllowed(MessagingError, errors.Forbidden):
    """A member may not do this here (a member renaming a group, a stranger's message)."""


class Conflict(MessagingError, errors.Conflict):
    """The change clashes with the conversation's state (the last owner leaving)."""


def write_transaction():
    """``database.atomic()``: SQLite begins it IMMEDIATE; nested calls are savepoints."""
    return database.atomic()


# ------------------------------------------------------------------------------- input


def _text(data: Mapping[str, Any], name: str, limit: int, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string.", name)
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"{name} is at most {limit} characters.", name, "too_long")
    return value


def parse_id(value: Any, field: str) -> int:
    """A positive row id from JSON (an integer, or a string of digits)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be an id.", field)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise InvalidInput(f"{field} must be an id.", field)
    return value


def _user_ids(data: Mapping[str, Any]) -> list[int]:
    raw = data.get("user_ids", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidInput("user_ids must be a list of user ids.", "user_ids")
    if len(raw) > MAX_MEMBERS_AT_ONCE:
        raise InvalidInput(f"At most {MAX_MEMBERS_AT_ONCE} people at once.", "user_ids",
                           "too_long")
    out: list[int] = []
    for value in raw:
        user_id = parse_id(value, "user_ids")
        if user_id not in out:
            out.append(user_id)
    return out


def active_users(user_ids: Iterable[int]) -> dict[int, User]:
    """The active users among these ids."""
    ids = list(user_ids)
    if not ids:
        return {}
    return {u.id: u for u in User.select().where(User.id.in_(ids), User.is_active)}


def _check_people(user_ids: list[int]) -> None:
    found = active_users(user_ids)
    missing = [u for u in user_ids if u not in found]
    if missing:
        raise InvalidInput(f"No active user with the id {missing[0]}.", "user_ids",
                           "not_found")


# ------------------------------------------------------------------------------ events


def next_seq(conversation_id: int) -> int:
    """Take the conversation's next event number, inside the caller's transaction.

    The ``UPDATE`` takes the conversation row's lock until the commit (SQLite's transactions
    hold the write lock from their start), so writers to one conversation get consecutive
    numbers and commit in that order: a client that has seen ``seq`` N has seen every event
    numbered below it. Take it before inserting a message, so message ids follow the same
    order (read state compares ids: a message committed later must never have a lower id)."""
    Conversation.update(last_seq=Conversation.last_seq + 1).where(
        Conversation.id == conversation_id).execute()
    return Conversation.select(Conversation.last_seq).where(
        Conversation.id == conversation_id).scalar()


def record_event(conversation_id: int, event_type: str, data: Any, *, now: float,
                 outbox: Outbox, seq: int | None = None) -> int:
    """Store one event of the conversation, numbered ``seq`` (taken now with
    :func:`next_seq` when None), inside the caller's transaction, and publish it after the
    commit; returns its ``seq``."""
    if seq is None:
        seq = next_seq(conversation_id)
    ConversationEvent.create(conversation=conversation_id, seq=seq, type=event_type,
                             data=json.dumps(data), created_at=now)
    outbox.publish(conversation_channel(conversation_id),
                   envelope(event_type, conversation_id, data, seq, now))
    return seq


def event_to_envelope(event: ConversationEvent) -> dict:
    """A stored event as it was published."""
    return envelope(event.type, event.conversation_id, json.loads(event.data), event.seq,
                    event.created_at)


def events_since(user_id: int, conversation_id: int, since: int,
                 limit: int = 1000) -> tuple[list[dict], bool]:
    """The conversation's events after ``seq`` ``since``, oldest first, at most ``limit``;
    and whether more follow. A member's catch-up after a reconnect."""
    membership(user_id, conversation_id)
    rows = list(ConversationEvent.select()
                .where(ConversationEvent.conversation == conversation_id,
                       ConversationEvent.seq > since)
                .order_by(ConversationEvent.seq).limit(limit + 1))
    return [event_to_envelope(e) for e in rows[:limit]], len(rows) > limit


# ------------------------------------------------------------------------- membership


def membership(user_id: int, conversation_id: int) -> ConversationMember:
    """The user's membership of the conversation; :class:`NotFound` when they are not in it
    (the same answer as for a conversation that does not exist)."""
    member = (ConversationMember.select()
              .where(ConversationMember.conversation == conversation_id,
                     ConversationMember.user == user_id).first())
    if member is None:
        raise NotFound("No such conversation.")
    return member


def member_ids(conversation_id: int) -> list[int]:
    """The ids of the conversation's members."""
    return [u for (u,) in ConversationMember.select(ConversationMember.user)
            .where(ConversationMember.conversation == conversation_id).tuples()]


def conversations_of(user_id: int) -> list[int]:
    """The ids of the conversations the user is in."""
    return [c for (c,) in ConversationMember.select(ConversationMember.conversation)
            .where(ConversationMember.user == user_id).tuples()]


def is_member(user_id: int, conversation_id: int) -> bool:
    """Whether the user is in the conversation now (the live relay asks before each emit)."""
    return ConversationMember.select().where(
        ConversationMember.conversation == conversation_id,
        ConversationMember.user == user_id).exists()


def ensure_general(*, now: float) -> Conversation:
    """``#general``, created on first use, with every active user in it (those added since
    the last call join now). Idempotent and safe under concurrent calls: both inserts ignore
    a row that is already there."""
    general = Conversation.get_or_none(Conversation.unique_key == GENERAL_KEY)
    if general is None:
        Conversation.insert(kind="general", name=GENERAL_NAME, unique_key=GENERAL_KEY,
                            created_at=now, updated_at=now).on_conflict_ignore().execute()
        general = Conversation.get(Conversation.unique_key == GENERAL_KEY)
    missing = (User.select(User.id).where(
        User.is_active,
        ~_exists(ConversationMember.select().where(
            ConversationMember.conversation == general.id,
            ConversationMember.user == User.id))))
    rows = [{"conversation": general.id, "user": user_id, "role": "member", "joined_at": now}
            for (user_id,) in missing.tuples()]
    if rows:
        ConversationMember.insert_many(rows).on_conflict_ignore().execute()
    return general


def _exists(query: peewee.SelectQuery) -> peewee.Expression:
    """``EXISTS (query)``."""
    return peewee.fn.EXISTS(query)


# ------------------------------------------------------------------------------ create


def _add(conversation_id: int, user_id: int, role: str, now: float) -> None:
    ConversationMember.insert(conversation=conversation_id, user=user_id, role=role,
                              joined_at=now).on_conflict_ignore().execute()


def open_conversation(user_id: int, data: Mapping[str, Any], *, now: float,
                      outbox: Outbox) -> tuple[Conversation, bool]:
    """Open a conversation ``{type, name?, topic?, user_ids}``; returns it and whether it is
    new. A DM (``user_ids`` one other person) or notes to self (``type: self``, or a DM with
    yourself) already there is returned as it is."""
    kind = data.get("type", "dm")
    if kind not in OPENABLE_KINDS:
        raise InvalidInput(f"type is one of {', '.join(OPENABLE_KINDS)}.", "type")
    name = _text(data, "name", MAX_NAME_LENGTH)
    topic = _text(data, "topic", MAX_TOPIC_LENGTH)
    others = [u for u in _user_ids(data) if u != user_id]
    if kind == "dm" and not others:
        kind = "self"
    from .notifications import notify  # notifications build on conversations

    with write_transaction():
        if kind in ("dm", "self"):
            if kind == "dm" and len(others) != 1:
                raise InvalidInput("A direct conversation is with exactly one other person; "
                                   "open a group for more.", "user_ids")
            if kind == "self" and others:
                raise InvalidInput("Notes to self have no other members.", "user_ids")
            _check_people(others)
            pair = sorted([user_id, *others])
            key = f"dm:{pair[0]}:{pair[-1]}" if kind == "dm" else f"self:{user_id}"
            created = not Conversation.select().where(Conversation.unique_key == key).exists()
            if created:  # two racing opens: the unique key lets one row in, both get it
                (Conversation.insert(kind=kind, unique_key=key, created_by=user_id,
                                     created_at=now, updated_at=now)
                 .on_conflict_ignore().execute())
            conversation = Conversation.get(Conversation.unique_key == key)
            for person in {user_id, *others}:
                _add(conversation.id, person, "member", now)
            return conversation, created
        if not name:
            raise InvalidInput("A group needs a name.", "name", "required")
        _check_people(others)
        conversation = Conversation.create(kind=kind, name=name, topic=topic,
                                           created_by=user_id, created_at=now, updated_at=now)
        _add(conversation.id, user_id, "owner", now)
        for person in others:
            _add(conversation.id, person, "member", now)
            notify(person, "added", conversation_id=conversation.id, actor_id=user_id,
                   text=f"You were added to {name}.", now=now, outbox=outbox)
        record_event(conversation.id, "conversation.updated",
                     {"action": "created", "conversation": conversation_to_json(conversation)},
                     now=now, outbox=outbox)
    return conversation, True


# ------------------------------------------------------------------------------ change


def _group(conversation_id: int) -> Conversation:
    conversation = Conversation.get_by_id(conversation_id)
    if conversation.kind not in ("group", "team"):
        raise Conflict("Only a group's members and name can change.", reason="not_a_group")
    return conversation


def _manager(member: ConversationMember) -> None:
    if member.role not in ("owner", "admin"):
        raise NotAllowed("Only the group's owners and admins may do this.")


def _announce(conversation: Conversation, action: str, *, now: float, outbox: Outbox,
              **extra: Any) -> None:
    record_event(conversation.id, "conversation.updated",
                 {"action": action, "conversation": conversation_to_json(conversation),
                  **extra}, now=now, outbox=outbox)


def update_conversation(user_id: int, conversation_id: int, data: Mapping[str, Any], *,
                        now: float, outbox: Outbox) -> tuple[Conversation, ConversationMember]:
    """Change what is sent of ``{name, topic}`` (a group's owners and admins) and of
    ``{archived, muted}`` (your own switches, in any conversation)."""
    for flag in ("archived", "muted"):
        if flag in data and not isinstance(data[flag], bool):
            raise InvalidInput(f"{flag} must be true or false.", flag)
    with write_transaction():
        member = membership(user_id, conversation_id)
        conversation = Conversation.get_by_id(conversation_id)
        if "name" in data or "topic" in data:
            conversation = _group(conversation_id)
            _manager(member)
            if "name" in data:
                name = _text(data, "name", MAX_NAME_LENGTH)
                if not name:
                    raise InvalidInput("A group needs a name.", "name", "required")
                conversation.name = name
            if "topic" in data:
                conversation.topic = _text(data, "topic", MAX_TOPIC_LENGTH)
            conversation.updated_at = now
            conversation.save()
            _announce(conversation, "renamed", now=now, outbox=outbox)
        changed = False
        for flag in ("archived", "muted"):
            if flag in data:
                setattr(member, flag, data[flag])
                changed = True
        if changed:
            member.save()
    return conversation, member


def add_member(user_id: int, conversation_id: int, data: Mapping[str, Any], *, now: float,
               outbox: Outbox) -> ConversationMember:
    """Add ``{user_id, role?}`` to a group (its owners and admins; only an owner adds an
    owner). Adding someone already in changes nothing."""
    from .notifications import notify

    new_id = parse_id(data.get("user_id"), "user_id")
    role = data.get("role", "member") or "member"
    if role not in ROLES:
        raise InvalidInput(f"role is one of {', '.join(ROLES)}.", "role")
    with write_transaction():
        member = membership(user_id, conversation_id)
        conversation = _group(conversation_id)
        _manager(member)
        if role == "owner" and member.role != "owner":
            raise NotAllowed("Only an owner may make an owner.")
        _check_people([new_id])
        existing = (ConversationMember.select()
                    .where(ConversationMember.conversation == conversation_id,
                           ConversationMember.user == new_id).first())
        if existing is not None:
            return existing
        _add(conversation_id, new_id, role, now)
        notify(new_id, "added", conversation_id=conversation_id, actor_id=user_id,
               text=f"You were added to {conversation.name}.", now=now, outbox=outbox)
        _announce(conversation, "member_added", now=now, outbox=outbox, user_id=new_id)
        return membership(new_id, conversation_id)


def set_role(user_id: int, conversation_id: int, target_id: int, data: Mapping[str, Any], *,
             now: float, outbox: Outbox) -> ConversationMember:
    """Change a member's ``role`` (owners only: how a group is handed over)."""
    role = data.get("role")
    if role not in ROLES:
        raise InvalidInput(f"role is one of {', '.join(ROLES)}.", "role")
    with write_transaction():
        member = membership(user_id, conversation_id)
        conversation = _group(conversation_id)
        if member.role != "owner":
            raise NotAllowed("Only an owner may change roles.")
        target = membership(target_id, conversation_id)
        if target.role == "owner" and role != "owner" and _owners(conversation_id) == 1:
            raise Conflict("A group keeps at least one owner: make someone else owner first.",
                           reason="last_owner")
        target.role = role
        target.save()
        _announce(conversation, "role_changed", now=now, outbox=outbox, user_id=target_id,
                  role=role)
    return target


def _owners(conversation_id: int) -> int:
    return ConversationMember.select().where(
        ConversationMember.conversation == conversation_id,
        ConversationMember.role == "owner").count()


def remove_member(user_id: int, conversation_id: int, target_id: int, *, now: float,
                  outbox: Outbox) -> None:
    """Remove a member from a group, or leave it (``target_id`` is yourself). Owners and
    admins remove members; only owners remove admins and owners. The last owner cannot leave
    while others remain; the last member leaving deletes the group."""
    with write_transaction():
        member = membership(user_id, conversation_id)
        conversation = _group(conversation_id)
        target = membership(target_id, conversation_id) if target_id != user_id else member
        if target_id != user_id:
            _manager(member)
            if target.role in ("owner", "admin") and member.role != "owner":
                raise NotAllowed("Only an owner may remove an owner or an admin.")
        others = ConversationMember.select().where(
            ConversationMember.conversation == conversation_id,
            ConversationMember.user != target_id).count()
        if target.role == "owner" and _owners(conversation_id) == 1 and others:
            raise Conflict("The last owner cannot leave: make someone else owner first.",
                           reason="last_owner")
        target.delete_instance()
        if not others:
            conversation.delete_instance(recursive=False)
            return
        _announce(conversation, "member_removed", now=now, outbox=outbox, user_id=target_id)


def mark_read(user_id: int, conversation_id: int, data: Mapping[str, Any], *, now: float,
              outbox: Outbox) -> ConversationMember:
    """Record that the user has read the conversation up to ``message_id`` (the latest
    message when omitted). Reading never goes backwards."""
    with write_transaction():
        member = membership(user_id, conversation_id)
        if data.get("message_id") is None:
            message_id = (Message.select(peewee.fn.MAX(Message.id))
                          .where(Message.conversation == conversation_id).scalar()) or 0
        else:
            message_id = parse_id(data.get("message_id"), "message_id")
            if not Message.select().where(Message.id == message_id,
                                          Message.conversation == conversation_id).exists():
                raise InvalidInput("No such message in this conversation.", "message_id",
                                   "not_found")
        if message_id > member.last_read_message_id:
            member.last_read_message_id = message_id
            member.save()
            record_event(conversation_id, "read.updated",
                         {"user_id": user_id, "message_id": message_id}, now=now,
                         outbox=outbox)
    return member


# ------------------------------------------------------------------------------- read


def conversation_to_json(conversation: Conversation) -> dict:
    """A conversation as every member sees it."""
    return {
        "id": conversation.id,
        "type": conversation.kind,
        "name": conversation.name,
        "topic": conversation.topic,
        "created_by": conversation.created_by_id,
        "last_seq": conversation.last_seq,
        "created_at": iso_time(conversation.created_at),
        "updated_at": iso_time(conversation.updated_at),
        "last_message_at": iso_time(conversation.last_message_at),
    }


def membership_to_json(member: ConversationMember) -> dict:
    """One member's own state in a conversation."""
    return {"user_id": member.user_id, "role": member.role, "archived": member.archived,
            "muted": member.muted, "last_read_message_id": member.last_read_message_id,
            "joined_at": iso_time(member.joined_at)}


def user_brief(user: User) -> dict:
    """Who a person is, as other members see them."""
    return {"id": user.id, "username": user.username, "full_name": user.full_name}


def members_of(conversation_id: int) -> list[dict]:
    """The members, each with who they are and their role."""
    rows = (ConversationMember.select(ConversationMember, User)
            .join(User, on=(ConversationMember.user == User.id))
            .where(ConversationMember.conversation == conversation_id)
            .order_by(ConversationMember.id))
    return [{**user_brief(row.user), "user_id": row.user_id, "role": row.role,
             "last_read_message_id": row.last_read_message_id} for row in rows]


def unread_counts(user_id: int) -> dict[int, int]:
    """Unread messages per conversation: others' live messages after the last one read
    (one grouped query over the ``(conversation, id)`` index)."""
    member = ConversationMember.alias()
    rows = (Message.select(Message.conversation, peewee.fn.COUNT(Message.id))
            .join(member, on=((member.conversation == Message.conversation)
                              & (member.user == user_id)))
            .where(Message.id > member.last_read_message_id,
                   Message.deleted_at.is_null(),
                   Message.sender.is_null() | (Message.sender != user_id))
            .group_by(Message.conversation).tuples())
    return dict(rows)


def get_conversation(user_id: int, conversation_id: int) -> dict:
    """``{conversation, membership, members}`` for one of the user's conversations."""
    member = membership(user_id, conversation_id)
    conversation = Conversation.get_by_id(conversation_id)
    out = conversation_to_json(conversation)
    out["unread_count"] = unread_counts(user_id).get(conversation_id, 0)
    return {"conversation": out, "membership": membership_to_json(member),
            "members": members_of(conversation_id)}


def list_conversations(user_id: int, *, now: float, archived: bool | None = None) -> list[dict]:
    """The user's conversations, the latest activity first, each with its unread count,
    last message, the user's own switches and (for a DM) the other person."""
    from .messages import messages_to_json

    ensure_general(now=now)
    rows = list(ConversationMember.select(ConversationMember, Conversation)
                .join(Conversation, on=(ConversationMember.conversation == Conversation.id))
                .where(ConversationMember.user == user_id))
    if archived is not None:
        rows = [r for r in rows if r.archived == archived]
    ids = [r.conversation_id for r in rows]
    unread = unread_counts(user_id)
    last_ids = [m for (m,) in Message.select(peewee.fn.MAX(Message.id))
                .where(Message.conversation.in_(ids)).group_by(Message.conversation).tuples()]
    last = {m["conversation_id"]: m for m in messages_to_json(
        list(Message.select().where(Message.id.in_(last_ids))))} if last_ids else {}
    dm_ids = [r.conversation_id for r in rows if r.conversation.kind == "dm"]
    peers: dict[int, dict] = {}
    if dm_ids:
        for row in (ConversationMember.select(ConversationMember, User)
                    .join(User, on=(ConversationMember.user == User.id))
                    .where(ConversationMember.conversation.in_(dm_ids),
                           ConversationMember.user != user_id)):
            peers[row.conversation_id] = user_brief(row.user)
    out = []
    for row in rows:
        conversation = conversation_to_json(row.conversation)
        conversation.update(unread_count=unread.get(row.conversation_id, 0),
                            last_message=last.get(row.conversation_id),
                            membership=membership_to_json(row),
                            peer=peers.get(row.conversation_id))
        out.append(conversation)
    out.sort(key=lambda c: (c["last_message"]["id"] if c["last_message"] else 0,
                            c["id"]), reverse=True)
    return out


def messageable_users(user_id: int) -> list[dict]:
    """Who the user may message: every active user of the instance but themselves."""
    return [user_brief(u) for u in User.select().where(User.is_active, User.id != user_id)
            .order_by(User.username)]

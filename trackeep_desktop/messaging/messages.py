"""Messages: send, edit, delete (a tombstone), reply, react, mention, attach, page, search.

* The body is Markdown (at most :data:`MAX_BODY_LENGTH` characters), rendered with the
  notes' sanitizer (``body_html``), so a message can show what a note can and nothing more.
* ``@username`` mentions of the conversation's members are recorded and notify them (even
  when they muted the conversation).
* Attachments point at the sender's own bookmarks, notes, tasks or files and are stored as
  cards ``{type, id, title}``: a recipient sees the card's title, never the item itself
  (the item's API answers them 404 as before).
* Deleting keeps the row as a tombstone (no body, no attachments, no reactions) so replies
  keep their thread; only the sender deletes, or a group's owners and admins.
* Reactions: one per user and emoji; what is not an emoji is refused (400).
* Pages run newest first by a cursor (the id of the oldest message already shown) over the
  ``(conversation, id)`` index, so a conversation of 100,000 messages opens as fast as a new
  one.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import peewee

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.items.markdown import render_markdown
from trackeep_desktop.storage.db import is_postgres
from trackeep_desktop.storage.models import (
    Bookmark,
    Conversation,
    ConversationMember,
    File,
    Message,
    Note,
    Reaction,
    Task,
    User,
)

from .conversations import (
    InvalidInput,
    NotAllowed,
    NotFound,
    conversations_of,
    membership,
    next_seq,
    parse_id,
    record_event,
    user_brief,
    write_transaction,
)
from .live import Outbox

MAX_BODY_LENGTH = 10_000
MAX_ATTACHMENTS = 10
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_EMOJI_LENGTH = 32
MENTION = re.compile(r"(?<![\w@])@([a-z0-9_.-]{1,32})", re.IGNORECASE)

#: What an attachment may point at: the type's model and its title.
ATTACHABLE = {
    "bookmark": (Bookmark, lambda item: item.title or item.url),
    "note": (Note, lambda item: item.title),
    "task": (Task, lambda item: item.title),
    "file": (File, lambda item: item.name),
}

# Code points that only make sense inside an emoji sequence.
_JOINERS = {0x200D, 0xFE0F, 0xFE0E, 0x20E3}


def is_emoji(text: str) -> bool:
    """Whether ``text`` is one emoji (or a short run of them): pictographic symbols, with the
    joiners, variation selectors, skin tones, flags' letters and keycaps that build emoji
    sequences; no letters, digits alone, spaces or punctuation."""
    if not text or len(text) > MAX_EMOJI_LENGTH:
        return False
    pictographs = 0
    for i, char in enumerate(text):
        point = ord(char)
        category = unicodedata.category(char)
        if category == "So" or 0x1F3FB <= point <= 0x1F3FF:
            pictographs += 1
        elif point in _JOINERS or 0xE0020 <= point <= 0xE007F:
            continue
        elif char in "#*0123456789" and text[i + 1:i + 2] in ("\ufe0f", "\u20e3"):
            pictographs += 1  # a keycap: 1️⃣
        else:
            return False
    return pictographs > 0


def parse_limit(value: Any) -> int:
    """A page size from a query string: 1 to :data:`MAX_LIMIT`, default 50."""
    if value in (None, ""):
        return DEFAULT_LIMIT
    if not str(value).isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidInput(f"limit is a number from 1 to {MAX_LIMIT}.", "limit",
                           "out_of_range")
    return int(value)


def _body(data: Mapping[str, Any], required: bool = True) -> str:
    body = data.get("body", data.get("content"))
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise InvalidInput("body must be a string.", "body")
    if len(body) > MAX_BODY_LENGTH:
        raise InvalidInput(f"A message is at most {MAX_BODY_LENGTH} characters.", "body",
                           "too_long")
    return body.strip()


def _attachments(user_id: int, data: Mapping[str, Any]) -> list[dict]:
    raw: list = []
    for name in ("attachments", "references"):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            raise InvalidInput(f"{name} must be a list of {{type, id}}.", name)
        raw += value
    if len(raw) > MAX_ATTACHMENTS:
        raise InvalidInput(f"At most {MAX_ATTACHMENTS} attachments.", "attachments",
                           "too_long")
    cards: list[dict] = []
    for entry in raw:
        if (not isinstance(entry, dict) or not isinstance(entry.get("type"), str)
                or entry["type"] not in ATTACHABLE):
            raise InvalidInput("An attachment is {type, id}, type one of "
                               + ", ".join(ATTACHABLE) + ".", "attachments")
        model, title = ATTACHABLE[entry["type"]]
        item_id = parse_id(entry.get("id"), "attachments")
        item = model.get_or_none(model.id == item_id, model.user == user_id,
                                 model.deleted_at.is_null())
        if item is None:
            raise InvalidInput(f"You have no {entry['type']} {item_id} to attach.",
                               "attachments", "not_found")
        card = {"type": entry["type"], "id": item_id, "title": title(item)}
        if card not in cards:
            cards.append(card)
    return cards


def _mentions(conversation_id: int, body: str, sender_id: int) -> list[int]:
    names = {name.lower() for name in MENTION.findall(body)}
    if not names:
        return []
    return [u for (u,) in User.select(User.id)
            .join(ConversationMember, on=(ConversationMember.user == User.id))
            .where(ConversationMember.conversation == conversation_id,
                   User.username.in_(sorted(names)), User.id != sender_id)
            .order_by(User.id).tuples()]


def _message_of_member(user_id: int, message_id: int) -> tuple[Message, ConversationMember]:
    message = Message.get_or_none(Message.id == message_id)
    if message is None:
        raise NotFound("No such message.")
    try:
        member = membership(user_id, message.conversation_id)
    except NotFound:
        raise NotFound("No such message.") from None
    return message, member


def send_message(user_id: int, conversation_id: int, data: Mapping[str, Any], *, now: float,
                 outbox: Outbox) -> Message:
    """Send ``{body, reply_to?, attachments?, references?}``; it needs a body or an
    attachment. Notifies the other person of a DM and everyone mentioned (a muted
    conversation notifies only on mentions)."""
    from .notifications import notify

    body = _body(data)
    reply_to = data.get("reply_to", data.get("parent_id"))
    with write_transaction():
        member = membership(user_id, conversation_id)
        cards = _attachments(user_id, data)
        if not body and not cards:
            raise InvalidInput("A message needs a body or an attachment.", "body", "required")
        if reply_to is not None:
            reply_to = parse_id(reply_to, "reply_to")
            if not Message.select().where(Message.id == reply_to,
                                          Message.conversation == conversation_id).exists():
                raise InvalidInput("The message replied to is not in this conversation.",
                                   "reply_to", "not_found")
        mentions = _mentions(conversation_id, body, user_id)
        # The seq (the event number of this message's creation) is taken first: under the
        # conversation's lock, message ids then follow commit order too.
        seq = next_seq(conversation_id)
        message = Message.create(conversation=conversation_id, sender=user_id, body=body,
                                 reply_to=reply_to, attachments=json.dumps(cards),
                                 mentions=json.dumps(mentions), seq=seq, created_at=now)
        record_event(conversation_id, "message.created", messages_to_json([message])[0],
                     now=now, outbox=outbox, seq=seq)
        Conversation.update(last_message_at=now, updated_at=now).where(
            Conversation.id == conversation_id).execute()
        member.last_read_message_id = message.id  # your own message is read
        member.save(only=[ConversationMember.last_read_message_id])
        conversation = Conversation.get_by_id(conversation_id)
        sender = User.get_by_id(user_id)
        preview = body[:140] or "an attachment"
        for mentioned in mentions:
            notify(mentioned, "mention", conversation_id=conversation_id,
                   message_id=message.id, actor_id=user_id,
                   text=f"@{sender.username} mentioned you: {preview}", now=now,
                   outbox=outbox)
        if conversation.kind == "dm":
            for other in (ConversationMember.select()
                          .where(ConversationMember.conversation == conversation_id,
                                 ConversationMember.user != user_id,
                                 ~ConversationMember.muted)):
                if other.user_id not in mentions:
                    notify(other.user_id, "direct_message", conversation_id=conversation_id,
                           message_id=message.id, actor_id=user_id,
                           text=f"@{sender.username}: {preview}", now=now, outbox=outbox)
    return message


def edit_message(user_id: int, message_id: int, data: Mapping[str, Any], *, now: float,
                 outbox: Outbox) -> Message:
    """Change a message's ``body`` (the sender only); it is marked edited, with the time."""
    body = _body(data)
    if not body:
        raise InvalidInput("A message needs a body.", "body", "required")
    with write_transaction():
        message, _ = _message_of_member(user_id, message_id)
        if message.sender_id != user_id:
            raise NotAllowed("Only the sender may edit a message.")
        if message.deleted_at is not None:
            raise InvalidInput("This message was deleted.", "body", "deleted")
        message.body = body
        message.mentions = json.dumps(_mentions(message.conversation_id, body, user_id))
        message.edited_at = now
        message.save()
        record_event(message.conversation_id, "message.updated",
                     messages_to_json([message])[0], now=now, outbox=outbox)
    return message


def delete_message(user_id: int, message_id: int, *, now: float, outbox: Outbox) -> Message:
    """Delete a message, leaving a tombstone (the sender, or a group's owner or admin)."""
    with write_transaction():
        message, member = _message_of_member(user_id, message_id)
        if message.sender_id != user_id and member.role not in ("owner", "admin"):
            raise NotAllowed("Only the sender may delete a message.")
        if message.deleted_at is None:
            message.body = ""
            message.attachments = "[]"
            message.mentions = "[]"
            message.deleted_at = now
            message.save()
            Reaction.delete().where(Reaction.message == message.id).execute()
            record_event(message.conversation_id, "message.deleted",
                         messages_to_json([message])[0], now=now, outbox=outbox)
    return message


def add_reaction(user_id: int, message_id: int, data: Mapping[str, Any], *, now: float,
                 outbox: Outbox) -> Reaction:
    """React with ``{emoji}`` (once per user and emoji: reacting again changes nothing)."""
    emoji = data.get("emoji")
    if not isinstance(emoji, str) or not is_emoji(emoji):
        raise InvalidInput("emoji must be an emoji.", "emoji")
    with write_transaction():
        message, _ = _message_of_member(user_id, message_id)
        if message.deleted_at is not None:
            raise InvalidInput("This message was deleted.", "emoji", "deleted")
        existing = Reaction.get_or_none(Reaction.message == message_id,
                                        Reaction.user == user_id, Reaction.emoji == emoji)
        if existing is not None:
            return existing
        reaction = Reaction.create(message=message_id, user=user_id, emoji=emoji,
                                   created_at=now)
        record_event(message.conversation_id, "reaction.added",
                     {**reaction_to_json(reaction),
                      "message": messages_to_json([message])[0]}, now=now, outbox=outbox)
    return reaction


def remove_reaction(user_id: int, message_id: int, emoji: str, *, now: float,
                    outbox: Outbox) -> bool:
    """Take back your reaction; False when there was none."""
    with write_transaction():
        message, _ = _message_of_member(user_id, message_id)
        reaction = Reaction.get_or_none(Reaction.message == message_id,
                                        Reaction.user == user_id, Reaction.emoji == emoji)
        if reaction is None:
            return False
        reaction.delete_instance()
        record_event(message.conversation_id, "reaction.removed",
                     {**reaction_to_json(reaction),
                      "message": messages_to_json([message])[0]}, now=now, outbox=outbox)
    return True


def reaction_to_json(reaction: Reaction) -> dict:
    """One reaction."""
    return {"id": reaction.id, "message_id": reaction.message_id,
            "user_id": reaction.user_id, "emoji": reaction.emoji,
            "created_at": iso_time(reaction.created_at)}


def messages_to_json(messages: list[Message]) -> list[dict]:
    """Messages as every member sees them: sender, rendered body, cards, mentions, reactions
    grouped by emoji, and a tombstone's flags (three queries for the whole list)."""
    if not messages:
        return []
    senders = {m.sender_id for m in messages if m.sender_id is not None}
    users = {u.id: user_brief(u) for u in User.select().where(User.id.in_(senders))}
    reactions: dict[int, dict[str, list[int]]] = {}
    for message_id, emoji, reactor in (Reaction.select(Reaction.message, Reaction.emoji,
                                                       Reaction.user)
                                       .where(Reaction.message.in_([m.id for m in messages]))
                                       .order_by(Reaction.id).tuples()):
        reactions.setdefault(message_id, {}).setdefault(emoji, []).append(reactor)
    out = []
    for m in messages:
        deleted = m.deleted_at is not None
        out.append({
            "id": m.id,
            "conversation_id": m.conversation_id,
            "sender_id": m.sender_id,
            "sender": users.get(m.sender_id) if m.sender_id is not None else None,
            "body": m.body,
            "body_html": render_markdown(m.body),
            "reply_to": m.reply_to,
            "attachments": json.loads(m.attachments),
            "mentions": json.loads(m.mentions),
            "reactions": [{"emoji": emoji, "count": len(who), "user_ids": who}
                          for emoji, who in reactions.get(m.id, {}).items()],
            "seq": m.seq,
            "created_at": iso_time(m.created_at),
            "edited": m.edited_at is not None,
            "edited_at": iso_time(m.edited_at),
            "deleted": deleted,
            "deleted_at": iso_time(m.deleted_at),
        })
    return out


def list_messages(user_id: int, conversation_id: int, *, cursor: int | None = None,
                  limit: int = DEFAULT_LIMIT) -> tuple[list[Message], int | None]:
    """One page of messages, newest first, older than the message ``cursor`` (from the
    newest when None); and the cursor of the next (older) page, or None at the start."""
    membership(user_id, conversation_id)
    query = Message.select().where(Message.conversation == conversation_id)
    if cursor is not None:
        query = query.where(Message.id < cursor)
    rows = list(query.order_by(Message.id.desc()).limit(limit + 1))
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit else None)


def messages_since(user_id: int, conversation_id: int, since: int,
                   limit: int = MAX_LIMIT) -> list[Message]:
    """The messages created after the conversation's event ``since``, oldest first."""
    membership(user_id, conversation_id)
    return list(Message.select().where(Message.conversation == conversation_id,
                                       Message.seq > since)
                .order_by(Message.seq).limit(limit))


def search_messages(user_id: int, data: Mapping[str, Any]) -> list[Message]:
    """Live messages containing ``query`` (case-insensitive) in the user's conversations,
    newest first; ``conversation_id`` and ``sender_id`` narrow it, ``limit`` bounds it."""
    text = data.get("query", data.get("q"))
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("query is the text to look for.", "query", "required")
    if len(text) > 200:
        raise InvalidInput("query is at most 200 characters.", "query", "too_long")
    limit = parse_limit(data.get("limit"))
    conversations = conversations_of(user_id)
    if data.get("conversation_id") is not None:
        wanted = parse_id(data["conversation_id"], "conversation_id")
        conversations = [c for c in conversations if c == wanted]
    query = Message.select().where(Message.conversation.in_(conversations),
                                   Message.deleted_at.is_null())
    if data.get("sender_id") is not None:
        query = query.where(Message.sender == parse_id(data["sender_id"], "sender_id"))
    # A plain substring (no LIKE wildcards to escape), case-folded on both databases.
    position = peewee.fn.STRPOS if is_postgres() else peewee.fn.INSTR
    query = query.where(position(peewee.fn.LOWER(Message.body), text.strip().lower()) > 0)
    return list(query.order_by(Message.id.desc()).limit(limit))

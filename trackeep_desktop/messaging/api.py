"""The messaging API under ``/api/v1``, on the original Trackeep's paths.

``/messages/conversations`` (list, open), ``/messages/conversations/{id}`` (read, change),
its ``members``, ``messages`` (a page by cursor, newest first; or ``since`` a sequence
number, oldest first), ``read`` and ``events`` (the numbered log a reconnecting client
replays); ``/messages/messages/{id}`` (edit, delete) and its ``reactions`` (the doubled
``messages/messages`` is the original's real path); ``/messages/messages/search``,
``/messages/unread``, ``/messages/users`` (who may be messaged); ``/notifications``.

A conversation you are not in is 404 on every endpoint, the same as one that does not
exist. API keys need ``messages:write`` for every method (``read`` covers the GETs).
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request

from trackeep_desktop import messaging
from trackeep_desktop.web import openapi
from trackeep_desktop.web.auth import current_user, now, require_scope
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.openapi import api_doc, query_param
from trackeep_desktop.web.requests import json_body, optional_json_body

bp = Blueprint("messaging_api", __name__)

SCOPE = "messages:write"


def init_app(app: Flask, state) -> None:
    """The messaging API."""
    app.register_blueprint(bp, url_prefix="/api/v1")


def _outbox() -> messaging.Outbox:
    return messaging.Outbox(current_app.extensions["trackeep"].capabilities.pubsub)


def _me() -> int:
    return current_user().id


def _one(message) -> dict:
    return messaging.messages_to_json([message])[0]


def _id_arg(name: str) -> int | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    if not value.isdigit() or not 1 <= int(value) <= 2**63 - 1:
        raise ApiError(400, f"{name} must be a message id", field=name, reason="invalid")
    return int(value)


def _seq_arg(name: str) -> int | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    if not value.isdigit() or int(value) > 2**63 - 1:
        raise ApiError(400, f"{name} must be a sequence number (0 or more)", field=name,
                       reason="invalid")
    return int(value)


# ------------------------------------------------------------------------------- schemas

_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}
_ID = {"type": "integer", "minimum": 1}
USER_BRIEF = openapi.schema("UserBrief", {"type": "object", "properties": {
    "id": {"type": "integer"}, "username": {"type": "string"},
    "full_name": {"type": "string"}}})
MEMBERSHIP = openapi.schema("Membership", {"type": "object", "properties": {
    "user_id": {"type": "integer"}, "role": {"type": "string", "enum": list(messaging.ROLES)},
    "archived": {"type": "boolean"}, "muted": {"type": "boolean"},
    "last_read_message_id": {"type": "integer"}, "joined_at": _TIME}})
MEMBER = openapi.schema("ConversationMember", {"type": "object", "properties": {
    "id": {"type": "integer"}, "user_id": {"type": "integer"}, "username": {"type": "string"},
    "full_name": {"type": "string"}, "role": {"type": "string"},
    "last_read_message_id": {"type": "integer"}}})
CARD = openapi.schema("AttachmentCard", {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["bookmark", "note", "task", "file"]},
    "id": {"type": "integer"}, "title": {"type": "string"}}})
MESSAGE = openapi.schema("ChatMessage", {"type": "object", "properties": {
    "id": {"type": "integer"}, "conversation_id": {"type": "integer"},
    "sender_id": {"type": "integer", "nullable": True},
    "sender": {**USER_BRIEF, "nullable": True},
    "body": {"type": "string", "description": "Markdown; empty once deleted"},
    "body_html": {"type": "string", "description": "the body rendered and sanitized"},
    "reply_to": {"type": "integer", "nullable": True},
    "attachments": {"type": "array", "items": CARD},
    "mentions": {"type": "array", "items": {"type": "integer"}},
    "reactions": {"type": "array", "items": {"type": "object", "properties": {
        "emoji": {"type": "string"}, "count": {"type": "integer"},
        "user_ids": {"type": "array", "items": {"type": "integer"}}}}},
    "seq": {"type": "integer", "description": "the conversation event that created it"},
    "created_at": _TIME, "edited": {"type": "boolean"}, "edited_at": _NULLABLE_TIME,
    "deleted": {"type": "boolean"}, "deleted_at": _NULLABLE_TIME}})
CONVERSATION = openapi.schema("Conversation", {"type": "object", "properties": {
    "id": {"type": "integer"}, "type": {"type": "string", "enum": list(messaging.KINDS)},
    "name": {"type": "string"}, "topic": {"type": "string"},
    "created_by": {"type": "integer", "nullable": True},
    "last_seq": {"type": "integer", "description": "the sequence number of its latest event"},
    "created_at": _TIME, "updated_at": _TIME, "last_message_at": _NULLABLE_TIME,
    "unread_count": {"type": "integer"},
    "last_message": {**MESSAGE, "nullable": True},
    "membership": MEMBERSHIP, "peer": {**USER_BRIEF, "nullable": True}}})
EVENT = openapi.schema("ConversationEvent", {"type": "object", "properties": {
    "type": {"type": "string"}, "conversation_id": {"type": "integer", "nullable": True},
    "data": {}, "timestamp": _TIME, "seq": {"type": "integer", "nullable": True}}})
NOTIFICATION = openapi.schema("Notification", {"type": "object", "properties": {
    "id": {"type": "integer"}, "kind": {"type": "string"},
    "conversation_id": {"type": "integer", "nullable": True},
    "message_id": {"type": "integer", "nullable": True},
    "actor_id": {"type": "integer", "nullable": True}, "text": {"type": "string"},
    "read": {"type": "boolean"}, "created_at": _TIME, "read_at": _NULLABLE_TIME}})
ATTACHMENT_INPUT = {"type": "array", "maxItems": 10, "items": {
    "type": "object", "required": ["type", "id"], "properties": {
        "type": {"type": "string", "enum": ["bookmark", "note", "task", "file"]},
        "id": _ID}}}
OPEN_INPUT = openapi.schema("ConversationInput", {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["dm", "group", "team", "self"]},
    "name": {"type": "string", "maxLength": 100}, "topic": {"type": "string", "maxLength": 500},
    "user_ids": {"type": "array", "maxItems": 100, "items": _ID}}})
CHANGE_INPUT = openapi.schema("ConversationChange", {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 100}, "topic": {"type": "string", "maxLength": 500},
    "archived": {"type": "boolean"}, "muted": {"type": "boolean"}}})
MEMBER_INPUT = openapi.schema("MemberInput", {"type": "object", "required": ["user_id"],
                                              "properties": {
    "user_id": _ID, "role": {"type": "string", "enum": list(messaging.ROLES)}}})
ROLE_INPUT = openapi.schema("RoleInput", {"type": "object", "required": ["role"],
                                          "properties": {
    "role": {"type": "string", "enum": list(messaging.ROLES)}}})
MESSAGE_INPUT = openapi.schema("ChatMessageInput", {"type": "object", "properties": {
    "body": {"type": "string", "maxLength": messaging.MAX_BODY_LENGTH},
    "reply_to": {**_ID, "nullable": True},
    "attachments": ATTACHMENT_INPUT, "references": ATTACHMENT_INPUT}})
EDIT_INPUT = openapi.schema("ChatMessageEdit", {"type": "object", "required": ["body"],
                                                "properties": {
    "body": {"type": "string", "minLength": 1, "maxLength": messaging.MAX_BODY_LENGTH}}})
REACTION_INPUT = openapi.schema("ReactionInput", {"type": "object", "required": ["emoji"],
                                                  "properties": {
    "emoji": {"type": "string", "maxLength": 32}}})
REACTION = openapi.schema("Reaction", {"type": "object", "properties": {
    "id": {"type": "integer"}, "message_id": {"type": "integer"},
    "user_id": {"type": "integer"}, "emoji": {"type": "string"}, "created_at": _TIME}})
READ_INPUT = openapi.schema("ReadInput", {"type": "object", "properties": {
    "message_id": {**_ID, "nullable": True}}})
SEARCH_INPUT = openapi.schema("MessageSearch", {"type": "object", "required": ["query"],
                                                "properties": {
    "query": {"type": "string", "minLength": 1, "maxLength": 200},
    "conversation_id": _ID, "sender_id": _ID,
    "limit": {"type": "integer", "minimum": 1, "maximum": messaging.MAX_LIMIT}}})
NOTIFICATIONS_READ = openapi.schema("NotificationsRead", {"type": "object", "properties": {
    "ids": {"type": "array", "maxItems": 200, "items": _ID}, "all": {"type": "boolean"}}})


def _wrap(name: str, inner: dict, **more: dict) -> dict:
    return {"type": "object", "properties": {name: inner, **more}}


# --------------------------------------------------------------------------- conversations


@bp.get("/messages/conversations")
@api_doc(response=_wrap("conversations", {"type": "array", "items": CONVERSATION}),
         params=[query_param("archived", "true: only archived ones; false: only the others",
                             {"type": "string", "enum": ["true", "false"]})])
@require_scope(SCOPE)
def list_conversations():
    """Your conversations, latest activity first, each with its unread count and last
    message (``#general`` included)."""
    archived = request.args.get("archived")
    if archived not in (None, "", "true", "false"):
        raise ApiError(400, "archived is true or false", field="archived", reason="invalid")
    return jsonify({"conversations": messaging.list_conversations(
        _me(), now=now(), archived=None if archived in (None, "") else archived == "true")})


@bp.post("/messages/conversations")
@api_doc(body=OPEN_INPUT, response=_wrap("conversation", CONVERSATION), status=201,
         responses={200: {"description": "the direct conversation (or notes to self) "
                               "already there", "content": {"application/json": {
                                   "schema": _wrap("conversation", CONVERSATION)}}}})
@require_scope(SCOPE)
def open_conversation():
    """Open a conversation: ``dm`` (one other person, one conversation per pair),
    ``group``/``team`` (a name and people), or ``self`` (notes to self).

    An existing DM answers 200 with the conversation; a new one 201.
    """
    user_id = _me()
    conversation, created = messaging.open_conversation(user_id, json_body(), now=now(),
                                                        outbox=_outbox())
    body = messaging.get_conversation(user_id, conversation.id)
    return jsonify({"conversation": body["conversation"]}), 201 if created else 200


@bp.get("/messages/conversations/<id:conversation_id>")
@api_doc(response={"type": "object", "properties": {
    "conversation": CONVERSATION, "membership": MEMBERSHIP,
    "members": {"type": "array", "items": MEMBER}}})
@require_scope(SCOPE)
def get_conversation(conversation_id: int):
    """One conversation with your membership and its members."""
    return jsonify(messaging.get_conversation(_me(), conversation_id))


@bp.patch("/messages/conversations/<id:conversation_id>")
@api_doc(body=CHANGE_INPUT, response={"type": "object", "properties": {
    "conversation": CONVERSATION, "membership": MEMBERSHIP,
    "members": {"type": "array", "items": MEMBER}}},
    responses={409: "a name or topic for a conversation that is not a group"})
@require_scope(SCOPE)
def update_conversation(conversation_id: int):
    """Rename a group or change its topic (owners and admins), or archive or mute it for
    yourself."""
    messaging.update_conversation(_me(), conversation_id, json_body(), now=now(),
                                  outbox=_outbox())
    return jsonify(messaging.get_conversation(_me(), conversation_id))


@bp.post("/messages/conversations/<id:conversation_id>/members")
@api_doc(body=MEMBER_INPUT, response=_wrap("member", MEMBERSHIP), status=201,
         responses={409: "not a group"})
@require_scope(SCOPE)
def add_member(conversation_id: int):
    """Add someone to a group (its owners and admins)."""
    member = messaging.add_member(_me(), conversation_id, json_body(), now=now(),
                                  outbox=_outbox())
    return jsonify({"member": messaging.membership_to_json(member)}), 201


@bp.patch("/messages/conversations/<id:conversation_id>/members/<id:user_id>")
@api_doc(body=ROLE_INPUT, response=_wrap("member", MEMBERSHIP),
         responses={409: "the last owner, or not a group"})
@require_scope(SCOPE)
def set_role(conversation_id: int, user_id: int):
    """Change a member's role (owners only; how a group is handed over)."""
    data = json_body()
    if "role" not in data:
        raise ApiError(400, "role is required", field="role", reason="required")
    member = messaging.set_role(_me(), conversation_id, user_id, data, now=now(),
                                outbox=_outbox())
    return jsonify({"member": messaging.membership_to_json(member)})


@bp.delete("/messages/conversations/<id:conversation_id>/members/<id:user_id>")
@api_doc(status=204, responses={409: "the last owner cannot leave, or not a group"})
@require_scope(SCOPE)
def remove_member(conversation_id: int, user_id: int):
    """Remove a member from a group, or leave it (your own id)."""
    messaging.remove_member(_me(), conversation_id, user_id, now=now(), outbox=_outbox())
    return "", 204


@bp.post("/messages/conversations/<id:conversation_id>/read")
@api_doc(body=READ_INPUT, response=_wrap("membership", MEMBERSHIP,
                                         unread_total={"type": "integer"}),
         body_required=False)
@require_scope(SCOPE)
def mark_read(conversation_id: int):
    """Mark the conversation read up to ``message_id`` (its latest message when omitted)."""
    member = messaging.mark_read(_me(), conversation_id, optional_json_body(), now=now(),
                                 outbox=_outbox())
    return jsonify({"membership": messaging.membership_to_json(member),
                    "unread_total": sum(messaging.unread_counts(_me()).values())})


@bp.get("/messages/unread")
@api_doc(response={"type": "object", "properties": {
    "total": {"type": "integer"},
    "conversations": {"type": "object", "additionalProperties": {"type": "integer"}},
    "notifications": {"type": "integer"}}})
@require_scope(SCOPE)
def unread():
    """Unread messages per conversation and in total, and unread notifications."""
    counts = messaging.unread_counts(_me())
    return jsonify({"total": sum(counts.values()),
                    "conversations": {str(k): v for k, v in counts.items()},
                    "notifications": messaging.unread_notifications(_me())})


@bp.get("/messages/users")
@api_doc(response=_wrap("users", {"type": "array", "items": USER_BRIEF}))
@require_scope(SCOPE)
def messageable_users():
    """Who you may message: every active user of this instance."""
    return jsonify({"users": messaging.messageable_users(_me())})


# -------------------------------------------------------------------------------- messages


@bp.get("/messages/conversations/<id:conversation_id>/messages")
@api_doc(response=_wrap("messages", {"type": "array", "items": MESSAGE},
                        next_cursor={"type": "integer", "nullable": True}),
         params=[
             query_param("limit", f"page size, 1-{messaging.MAX_LIMIT} (default 50)",
                         {"type": "integer", "minimum": 1, "maximum": messaging.MAX_LIMIT}),
             query_param("cursor", "the next_cursor of the previous page: older messages",
                         _ID),
             query_param("before", "the same as cursor", _ID),
             query_param("since", "instead of a page: the messages created after this "
                         "sequence number, oldest first", {"type": "integer", "minimum": 0})])
@require_scope(SCOPE)
def list_messages(conversation_id: int):
    """A page of messages, newest first (``next_cursor`` pages back); or, with ``since``,
    what came after a sequence number, oldest first."""
    limit = messaging.parse_limit(request.args.get("limit"))
    since = _seq_arg("since")
    if since is not None:
        found = messaging.messages_since(_me(), conversation_id, since, limit)
        return jsonify({"messages": messaging.messages_to_json(found), "next_cursor": None})
    cursor = _id_arg("cursor") or _id_arg("before")
    page, next_cursor = messaging.list_messages(_me(), conversation_id, cursor=cursor,
                                                limit=limit)
    return jsonify({"messages": messaging.messages_to_json(page), "next_cursor": next_cursor})


@bp.post("/messages/conversations/<id:conversation_id>/messages")
@api_doc(body=MESSAGE_INPUT, response=_wrap("message", MESSAGE), status=201)
@require_scope(SCOPE)
def send_message(conversation_id: int):
    """Send a message: Markdown ``body``, optionally ``reply_to`` and attachment cards of
    your own bookmarks, notes, tasks or files."""
    message = messaging.send_message(_me(), conversation_id, json_body(), now=now(),
                                     outbox=_outbox())
    return jsonify({"message": _one(message)}), 201


@bp.get("/messages/conversations/<id:conversation_id>/events")
@api_doc(response=_wrap("events", {"type": "array", "items": EVENT},
                        more={"type": "boolean"}),
         params=[query_param("since", "the last sequence number seen (0: from the start)",
                             {"type": "integer", "minimum": 0}),
                 query_param("limit", "at most this many (1-1000, default 1000)",
                             {"type": "integer", "minimum": 1, "maximum": 1000})])
@require_scope(SCOPE)
def list_events(conversation_id: int):
    """The conversation's live events after ``since``, in order: what a reconnecting client
    missed (``more`` says to ask again from the last one)."""
    since = _seq_arg("since") or 0
    raw = request.args.get("limit") or "1000"
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(400, "limit is a number from 1 to 1000", field="limit",
                       reason="out_of_range")
    found, more = messaging.events_since(_me(), conversation_id, since, int(raw))
    return jsonify({"events": found, "more": more})


@bp.patch("/messages/messages/<id:message_id>")
@api_doc(body=EDIT_INPUT, response=_wrap("message", MESSAGE))
@require_scope(SCOPE)
def edit_message(message_id: int):
    """Edit your message (it is marked edited, with the time)."""
    data = json_body()
    if "body" not in data:
        raise ApiError(400, "body is required", field="body", reason="required")
    message = messaging.edit_message(_me(), message_id, data, now=now(), outbox=_outbox())
    return jsonify({"message": _one(message)})


@bp.delete("/messages/messages/<id:message_id>")
@api_doc(response=_wrap("message", MESSAGE))
@require_scope(SCOPE)
def delete_message(message_id: int):
    """Delete a message: a tombstone stays in its place in the thread."""
    message = messaging.delete_message(_me(), message_id, now=now(), outbox=_outbox())
    return jsonify({"message": _one(message)})


@bp.post("/messages/messages/<id:message_id>/reactions")
@api_doc(body=REACTION_INPUT, response=_wrap("reaction", REACTION))
@require_scope(SCOPE)
def add_reaction(message_id: int):
    """React with an emoji (one of each per person)."""
    reaction = messaging.add_reaction(_me(), message_id, json_body(), now=now(),
                                      outbox=_outbox())
    return jsonify({"reaction": messaging.reaction_to_json(reaction)})


@bp.delete("/messages/messages/<id:message_id>/reactions/<path:emoji>")
@api_doc(status=204)
@require_scope(SCOPE)
def remove_reaction(message_id: int, emoji: str):
    """Take back your reaction."""
    if not messaging.remove_reaction(_me(), message_id, emoji, now=now(), outbox=_outbox()):
        raise ApiError(404, "you have no such reaction on this message")
    return "", 204


@bp.post("/messages/messages/search")
@api_doc(body=SEARCH_INPUT, response=_wrap("messages", {"type": "array", "items": MESSAGE}))
@require_scope(SCOPE)
def search_messages():
    """Search the messages of your conversations (``sender_id`` and ``conversation_id``
    narrow it), newest first."""
    found = messaging.search_messages(_me(), json_body())
    return jsonify({"messages": messaging.messages_to_json(found)})


# --------------------------------------------------------------------------- notifications


@bp.get("/notifications")
@api_doc(response=_wrap("notifications", {"type": "array", "items": NOTIFICATION},
                        unread_count={"type": "integer"}),
         params=[query_param("unread", "true: only unread ones",
                             {"type": "string", "enum": ["true", "false"]})])
@require_scope(SCOPE)
def list_notifications():
    """Your latest notifications (mentions, direct messages, being added to a group)."""
    unread_only = request.args.get("unread") == "true"
    found = messaging.list_notifications(_me(), unread_only=unread_only)
    return jsonify({"notifications": [messaging.notification_to_json(n) for n in found],
                    "unread_count": messaging.unread_notifications(_me())})


@bp.post("/notifications/read")
@api_doc(body=NOTIFICATIONS_READ, body_required=False,
         response=_wrap("marked", {"type": "integer"}, unread_count={"type": "integer"}))
@require_scope(SCOPE)
def mark_notifications_read():
    """Mark notifications read: ``ids``, or all of them."""
    marked = messaging.mark_notifications_read(_me(), optional_json_body(), now=now())
    return jsonify({"marked": marked, "unread_count": messaging.unread_notifications(_me())})


@bp.post("/notifications/<id:notification_id>/read")
@api_doc(response=_wrap("notification", NOTIFICATION))
@require_scope(SCOPE)
def mark_notification_read(notification_id: int):
    """Mark one notification read."""
    note = messaging.mark_one_read(_me(), notification_id, now=now())
    return jsonify({"notification": messaging.notification_to_json(note)})

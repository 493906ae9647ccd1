"""Messaging: conversations (direct, groups, notes to self, ``#general``), messages with
replies, reactions, mentions and attachment cards, read state, notifications, and the
numbered live events every instance relays to its members' sockets.

No Flask here: views (:mod:`.api`, :mod:`.pages`) and the ``/messages`` Socket.IO namespace
(:mod:`trackeep_desktop.realtime.namespaces`) parse input, call these and render.
"""

from trackeep_desktop.messaging.conversations import (
    KINDS,
    ROLES,
    Conflict,
    InvalidInput,
    MessagingError,
    NotAllowed,
    NotFound,
    add_member,
    conversation_to_json,
    conversations_of,
    ensure_general,
    events_since,
    get_conversation,
    is_member,
    list_conversations,
    mark_read,
    member_ids,
    membership,
    membership_to_json,
    messageable_users,
    open_conversation,
    remove_member,
    set_role,
    unread_counts,
    update_conversation,
)
from trackeep_desktop.messaging.live import (
    CONVERSATION_PATTERN,
    CONVERSATION_PREFIX,
    NOTIFICATION_PATTERN,
    NOTIFICATION_PREFIX,
    Outbox,
    conversation_channel,
    envelope,
    id_of_channel,
    notification_channel,
)
from trackeep_desktop.messaging.messages import (
    MAX_BODY_LENGTH,
    MAX_LIMIT,
    add_reaction,
    delete_message,
    edit_message,
    is_emoji,
    list_messages,
    messages_since,
    messages_to_json,
    parse_limit,
    reaction_to_json,
    remove_reaction,
    search_messages,
    send_message,
)
from trackeep_desktop.messaging.notifications import (
    list_notifications,
    mark_notifications_read,
    mark_one_read,
    notification_to_json,
    unread_notifications,
)

__all__ = [
    "CONVERSATION_PATTERN", "CONVERSATION_PREFIX", "KINDS", "MAX_BODY_LENGTH", "MAX_LIMIT",
    "NOTIFICATION_PATTERN", "NOTIFICATION_PREFIX", "ROLES", "Conflict", "InvalidInput",
    "MessagingError", "NotAllowed", "NotFound", "Outbox", "add_member", "add_reaction",
    "conversation_channel", "conversation_to_json", "conversations_of", "delete_message",
    "edit_message", "ensure_general", "envelope", "events_since", "get_conversation",
    "id_of_channel", "is_emoji", "is_member", "list_conversations", "list_messages",
    "list_notifications", "mark_notifications_read", "mark_one_read", "mark_read",
    "member_ids", "membership", "membership_to_json", "messageable_users", "messages_since",
    "messages_to_json", "notification_channel", "notification_to_json", "open_conversation",
    "parse_limit", "reaction_to_json", "remove_member", "remove_reaction", "search_messages",
    "send_message", "set_role", "unread_counts", "unread_notifications",
    "update_conversation",
]

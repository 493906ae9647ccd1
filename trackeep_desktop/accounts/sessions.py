"""Session lifecycle, with no Flask in it: start, list, revoke and end a user's sessions.

Sessions live in the sessions capability (:class:`~trackeep_desktop.capabilities.base.
SessionStore`), so an ended session is refused by every instance on its next request; the
pub/sub capability carries the news to the live sockets of every instance (see
:data:`SESSIONS_ENDED_CHANNEL`). Every function takes those capabilities, the time and the
settings as arguments, and runs the same under a view (:mod:`trackeep_desktop.web.auth` reads
them from the request's app and handles the cookie), the CLI's password reset and a test.
Only a session's *handle* (:func:`~trackeep_desktop.accounts.users.session_handle`) is ever
shown or published, never its id, which is the credential.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from trackeep_desktop.accounts.users import (
    describe_user_agent,
    iso_time,
    record_login,
    session_handle,
)
from trackeep_desktop.capabilities.base import PubSub, SessionStore
from trackeep_desktop.storage.models import User

log = logging.getLogger(__name__)

#: The pub/sub channel on which ended credentials are announced to every instance: a message
#: is ``{"handles": [session handles]}`` (those sessions ended) or ``{"users": [ids]}`` (the
#: API keys or the account of those users changed: each instance checks its key-signed-in
#: sockets of those users against the database again).
SESSIONS_ENDED_CHANNEL = "sessions:ended"


def session_ttl(settings: Mapping[str, Any], remember: bool) -> int:
    """How long a new session lives: ``SESSION_REMEMBER_TTL`` for "remember me", else
    ``SESSION_TTL`` (seconds, sliding)."""
    return settings["SESSION_REMEMBER_TTL"] if remember else settings["SESSION_TTL"]


def start_session(sessions: SessionStore, user: User, *, now: float, ttl: int, ip: str,
                  user_agent: str, remember: bool, kind: str) -> dict:
    """Create a session for ``user`` (signed in from ``ip`` with ``user_agent``) living
    ``ttl`` seconds, with a fresh CSRF token, and record the login; returns the session (its
    ``id`` is the token). ``kind`` is ``web``, ``api`` or ``desktop``."""
    data = {
        "ip": ip,
        "user_agent": user_agent[:256],
        "csrf": secrets.token_urlsafe(32),
        "remember": bool(remember),
        "kind": kind,
    }
    session = sessions.create(user.id, ttl, data)
    record_login(user, now)
    log.info("user %s signed in (%s session) from %s", user.username, kind, ip)
    return session


def announce_sessions_ended(pubsub: PubSub, session_ids: Iterable[str]) -> None:
    """Tell every instance these sessions ended, so their live sockets are closed too
    (requests are refused by the shared session store already). Only handles travel."""
    handles = [session_handle(i) for i in session_ids]
    if handles:
        pubsub.publish(SESSIONS_ENDED_CHANNEL, {"handles": handles})


def announce_credentials_changed(pubsub: PubSub, user_ids: Iterable[int]) -> None:
    """Tell every instance that API keys of these users were revoked, or the accounts
    disabled or deleted: each closes the live sockets whose credentials no longer hold."""
    users = sorted({int(u) for u in user_ids})
    if users:
        pubsub.publish(SESSIONS_ENDED_CHANNEL, {"users": users})


def end_session(sessions: SessionStore, pubsub: PubSub, session_id: str) -> bool:
    """Delete one session and announce it ended; True if it existed."""
    existed = sessions.delete(session_id)
    announce_sessions_ended(pubsub, [session_id])
    return existed


def end_sessions(sessions: SessionStore, pubsub: PubSub, user_id: int,
                 keep: str | None = None) -> int:
    """Delete every session of a user but ``keep`` (a session id) and announce them ended
    to every instance; returns how many were deleted."""
    ending = [s["id"] for s in sessions.list_for_user(user_id) if s["id"] != keep]
    count = sessions.delete_for_user(user_id, keep=keep)
    announce_sessions_ended(pubsub, ending)
    return count


def session_to_json(session: dict, current_id: str | None) -> dict:
    """A session as Settings → Security lists it; its id is never shown, only a handle.
    ``current`` says whether it is ``current_id``, the session of the caller."""
    return {
        "id": session_handle(session["id"]),
        "device": describe_user_agent(session.get("user_agent", "")),
        "userAgent": session.get("user_agent", ""),
        "ip": session.get("ip", ""),
        "kind": session.get("kind", "web"),
        "remember": bool(session.get("remember")),
        "createdAt": iso_time(session.get("created_at")),
        "lastActive": iso_time(session.get("last_active")),
        "current": session["id"] == current_id,
    }


def list_sessions(sessions: SessionStore, user_id: int,
                  current_id: str | None = None) -> list[dict]:
    """The user's live sessions as JSON, most recently active first."""
    return [session_to_json(s, current_id) for s in sessions.list_for_user(user_id)]


def revoke_session(sessions: SessionStore, pubsub: PubSub, user: User, handle: str) -> bool:
    """Delete the user's session with this handle and announce it ended; False if the user
    has none such (another user's handle is not found either)."""
    # compare_digest takes str only when it is ASCII: compare the UTF-8 bytes, so a handle
    # such as "é" is simply not found.
    wanted = str(handle).encode("utf-8", "surrogatepass")
    for session in sessions.list_for_user(user.id):
        if hmac.compare_digest(session_handle(session["id"]).encode(), wanted):
            end_session(sessions, pubsub, session["id"])
            log.info("user %s revoked a session", user.username)
            return True
    return False

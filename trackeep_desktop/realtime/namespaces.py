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
``read`` scope); anonymous clients are refused, on ``/`` too. Each client joins the room
``user:{id}``. Every instance keeps its sockets' credentials (:class:`Admissions`) and closes
a socket when they end: a session ended (logout, revocation, password change, a disabled or
deleted account) or an API key revoked, expired, or its user disabled, announced on the
``sessions:ended`` channel to every instance; an expiring key's sockets close at the
expiry, and every ``SOCKET_RECHECK_INTERVAL`` seconds each instance checks its key sockets
against the database, for what no announcement reached.
The app subscribes once to ``events:*`` on the pub/sub capability (see
:mod:`trackeep_desktop.events`) and emits each message as a ``change`` event to that room
*on this instance only* (``ignore_queue=True``): with Redis, the pub/sub capability has
already carried the message to every instance, and relaying it through Socket.IO's queue
too would deliver it once per instance.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

from flask import Flask, current_app, request
from flask_socketio import Namespace, SocketIO, emit, join_room, leave_room

from trackeep_desktop import accounts, challenges, messaging
from trackeep_desktop.capabilities.base import PubSub, Subscription
from trackeep_desktop.clock import SystemClock
from trackeep_desktop.realtime import events
from trackeep_desktop.realtime.queue import PubSubQueueManager
from trackeep_desktop.storage.db import connection
from trackeep_desktop.storage.models import ApiKey, User

log = logging.getLogger(__name__)

EVENTS_NAMESPACE = "/events"
MESSAGES_NAMESPACE = "/messages"
CHALLENGES_NAMESPACE = "/challenges"
CHALLENGE_CHANNEL_PREFIX = "challenges:"


def user_room(user_id: int) -> str:
    """The Socket.IO room of one user's connections."""
    return f"user:{int(user_id)}"


class Admitted(NamedTuple):
    """What a live socket was admitted with: its user, and its session or API key."""

    user_id: int
    session_handle: str | None
    key_id: int | None
    key_expires_at: float | None


class Admissions:
    """This instance's live sockets, by ``(namespace, sid)``, and the credentials each was
    admitted with: what closes them when those credentials end (see :func:`close_ended`)."""

    def __init__(self) -> None:
        self._sockets: dict[tuple[str, str], Admitted] = {}
        self._lock = threading.Lock()

    def add(self, namespace: str, sid: str, admitted: Admitted) -> None:
        with self._lock:
            self._sockets[(namespace, sid)] = admitted

    def remove(self, namespace: str, sid: str) -> None:
        with self._lock:
            self._sockets.pop((namespace, sid), None)

    def get(self, namespace: str, sid: str) -> Admitted | None:
        with self._lock:
            return self._sockets.get((namespace, sid))

    def users_in(self, namespace: str) -> set[int]:
        """The users with a socket on this instance in ``namespace``."""
        with self._lock:
            return {a.user_id for (ns, _), a in self._sockets.items() if ns == namespace}

    def items(self) -> list[tuple[tuple[str, str], Admitted]]:
        with self._lock:
            return list(self._sockets.items())

    def __len__(self) -> int:
        with self._lock:
            return len(self._sockets)


def connected_credentials(scope: str | None = None):
    """The credentials behind this Socket.IO handshake (its cookie or ``Authorization``
    header), or None. With ``scope``, an API key needs it (``read`` for the change events,
    which carry the items)."""
    from trackeep_desktop.web.auth import current_credentials

    with connection(current_app.extensions["trackeep"].db):
        credentials = current_credentials()
    if credentials is None:
        return None
    if scope is not None and not credentials.allows(scope, "GET"):
        return None
    return credentials


class AdmittingNamespace(Namespace):
    """A namespace that refuses anonymous clients and records who each socket is, so the
    socket closes on every instance when its session ends, its key is revoked or expires, or
    its account is disabled or deleted."""

    #: The scope an API key needs here (None: any valid credentials).
    scope: str | None = None

    def __init__(self, namespace: str, admissions: Admissions):
        super().__init__(namespace)
        self.admissions = admissions

    def on_connect(self, auth=None):
        credentials = connected_credentials(self.scope)
        if credentials is None:
            raise ConnectionRefusedError("authentication required")
        key = credentials.api_key
        admitted = Admitted(
            user_id=credentials.user.id,
            session_handle=(accounts.session_handle(credentials.session["id"])
                            if credentials.session is not None else None),
            key_id=key.id if key is not None else None,
            key_expires_at=key.expires_at if key is not None else None)
        self.admissions.add(self.namespace, request.sid, admitted)
        join_room(user_room(admitted.user_id))
        if admitted.key_expires_at is not None:
            self.socketio.start_background_task(self._close_at_expiry, request.sid,
                                                admitted.key_expires_at)
        self.admitted(admitted)

    def admitted(self, admitted: Admitted) -> None:
        """What a subclass does once a socket is admitted."""

    def on_disconnect(self, *args):
        self.admissions.remove(self.namespace, request.sid)

    def _close_at_expiry(self, sid: str, expires_at: float) -> None:
        self.socketio.sleep(max(0.0, expires_at - time.time()))
        if (self.namespace, sid) in dict(self.admissions.items()):
            log.info("closing a socket: its API key expired")
            self.socketio.server.disconnect(sid, namespace=self.namespace, ignore_queue=True)


class SystemNamespace(AdmittingNamespace):
    """The default namespace: liveness and round-trip checks for signed-in clients and
    benchmarks. Anonymous clients are refused; a health probe needs no namespace (the
    Engine.IO handshake, ``GET /socket.io/?EIO=4&transport=polling``, or ``/health``)."""

    def on_ping(self, data=None):
        """Acknowledge with the data sent and the server time (``emit('ping', x, callback)``)."""
        return {"pong": data, "server_time": time.time()}

    def on_echo(self, data=None):
        """Emit the data back as an ``echo`` event to the sender alone (measures a full event
        round trip)."""
        emit("echo", data, to=request.sid)


class EventsNamespace(AdmittingNamespace):
    """``/events``: the signed-in user's live ``change`` events (server to client only)."""

    scope = "read"


class TypingThrottle:
    """At most one typing event relayed per user and conversation every :attr:`INTERVAL`
    seconds (a client typing, or a broken one emitting 1,000 a second, costs the others one
    event); a client shows "typing" for :attr:`EXPIRES` seconds after the last one, so a
    lost ``stopped`` never leaves it on. Per instance: a socket stays on one instance."""

    INTERVAL = 2.0
    EXPIRES = 5.0
    #: Entries older than this are forgotten (bounds the memory of a long-running instance).
    FORGET_AFTER = 60.0

    def __init__(self, clock=None):
        self.clock = clock or SystemClock()
        self._last: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()

    def allow(self, user_id: int, conversation_id: int, started: bool) -> bool:
        """Whether to relay this typing event (a ``stopped`` after a relayed start always
        is, and resets the throttle)."""
        now = self.clock.now()
        key = (user_id, conversation_id)
        with self._lock:
            if len(self._last) > 10_000:
                self._last = {k: t for k, t in self._last.items()
                              if now - t < self.FORGET_AFTER}
            last = self._last.get(key)
            if not started:
                return self._last.pop(key, None) is not None
            if last is not None and now - last < self.INTERVAL:
                return False
            self._last[key] = now
            return True


def _conversation_id(data) -> int | None:
    value = data.get("conversation_id") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, str):
        if not value.isdigit():
            return None
        value = int(value)
    return value if 1 <= value <= 2**63 - 1 else None


class MessagesNamespace(AdmittingNamespace):
    """``/messages``: the live events of the user's conversations (``event``, in the
    original's envelope with its ``seq``) and their notifications (``notification``).

    A client emits ``sync`` ``{"conversations": {id: last_seq}}`` after (re)connecting and
    gets, as the acknowledgement, every event it missed, in order (``{"events": {id: [...]},
    "more": {id: bool}}``; ask again from the last seq while ``more``); it emits ``typing``
    ``{conversation_id, typing: true|false}``. Every other event reaches it without asking:
    see :func:`bridge_conversation_events`.
    """

    scope = "read"
    #: Events returned per conversation by one ``sync``.
    SYNC_LIMIT = 5000

    def __init__(self, namespace: str, admissions: Admissions, db, pubsub: PubSub,
                 typing: TypingThrottle):
        super().__init__(namespace, admissions)
        self.db = db
        self.pubsub = pubsub
        self.typing = typing

    def _user(self) -> int | None:
        admitted = self.admissions.get(self.namespace, request.sid)
        return admitted.user_id if admitted is not None else None

    def on_sync(self, data=None):
        """The events after each conversation's last seen ``seq`` (the member's own
        conversations only; others are left out, as if they did not exist)."""
        user_id = self._user()
        wanted = (data or {}).get("conversations") if isinstance(data, dict) else None
        if user_id is None or not isinstance(wanted, dict):
            return {"error": "send {conversations: {id: last_seq}}"}
        events_out: dict[str, list] = {}
        more: dict[str, bool] = {}
        with connection(self.db):
            for key, since in list(wanted.items())[:1000]:
                conversation_id = _conversation_id({"conversation_id": key})
                if conversation_id is None or isinstance(since, bool) or not isinstance(
                        since, int) or since < 0:
                    continue
                try:
                    found, has_more = messaging.events_since(user_id, conversation_id, since,
                                                             self.SYNC_LIMIT)
                except messaging.NotFound:
                    continue
                events_out[str(conversation_id)] = found
                more[str(conversation_id)] = has_more
        return {"events": events_out, "more": more}

    def on_typing(self, data=None):
        """Relay ``typing.started``/``typing.stopped`` to the conversation's members, throttled
        (see :class:`TypingThrottle`); a non-member's typing goes nowhere."""
        user_id = self._user()
        conversation_id = _conversation_id(data)
        if user_id is None or conversation_id is None:
            return
        started = data.get("typing", True) is not False
        if not self.typing.allow(user_id, conversation_id, started):
            return
        with connection(self.db):
            if not messaging.is_member(user_id, conversation_id):
                return
            user = User.get_or_none(User.id == user_id)
        kind = "typing.started" if started else "typing.stopped"
        self.pubsub.publish(messaging.conversation_channel(conversation_id), messaging.envelope(
            kind, conversation_id, {"user_id": user_id,
                                    "username": user.username if user else None,
                                    "expires_in": self.typing.EXPIRES}))


def bridge_conversation_events(socketio: SocketIO, pubsub: PubSub, admissions: Admissions,
                               db) -> list[Subscription]:
    """Relay every ``messages:{id}`` event to the members of that conversation connected to
    this instance, and every ``notifications:{user_id}`` to that user's sockets.

    Membership is read from the database for each event (one query, and none when this
    instance has no ``/messages`` socket), so a member removed on any instance stops
    receiving at once on every instance, and one added starts, with no room to keep in step.
    The removed member still hears of their own removal."""

    def relay(channel: str, message) -> None:
        conversation_id = messaging.id_of_channel(channel, messaging.CONVERSATION_PREFIX)
        if conversation_id is None or not isinstance(message, dict):
            return
        local = admissions.users_in(MESSAGES_NAMESPACE)
        if not local:
            return
        with connection(db):
            members = set(messaging.member_ids(conversation_id))
        data = message.get("data")
        if (message.get("type") == "conversation.updated" and isinstance(data, dict)
                and data.get("action") == "member_removed"
                and isinstance(data.get("user_id"), int)):
            members.add(data["user_id"])
        for user_id in sorted(local & members):
            socketio.emit("event", message, namespace=MESSAGES_NAMESPACE,
                          to=user_room(user_id), ignore_queue=True)

    def relay_notification(channel: str, message) -> None:
        user_id = messaging.id_of_channel(channel, messaging.NOTIFICATION_PREFIX)
        if user_id is None:
            return
        socketio.emit("notification", message, namespace=MESSAGES_NAMESPACE,
                      to=user_room(user_id), ignore_queue=True)

    return [pubsub.subscribe(messaging.CONVERSATION_PATTERN, relay),
            pubsub.subscribe(messaging.NOTIFICATION_PATTERN, relay_notification)]


def challenge_room(challenge_id: int) -> str:
    return f"challenge:{challenge_id}"


class ChallengesNamespace(AdmittingNamespace):
    """``/challenges``: live leaderboards. A client emits ``watch`` ``{challenge_id, token?}``
    (acknowledged with ``{"ok": true}``, or ``{"error": ...}`` for a challenge it may not see,
    exactly as the API would answer 404) and from then on receives a ``score`` event
    ``{challenge_id, user_id, score, reached_at}`` each time a member's score changes or a
    member joins or leaves, on whichever instance it happened; ``unwatch`` stops them. A
    score event says who changed, not the standings: the page reads the board again (one
    request), so what it shows is always the board's own order."""

    def __init__(self, namespace: str, admissions: Admissions, db):
        super().__init__(namespace, admissions)
        self.db = db

    def _watched(self, data) -> int | None:
        value = data.get("challenge_id") if isinstance(data, dict) else None
        return _conversation_id({"conversation_id": value})

    def on_watch(self, data=None):
        admitted = self.admissions.get(self.namespace, request.sid)
        challenge_id = self._watched(data)
        if admitted is None or challenge_id is None:
            return {"error": "send {challenge_id}"}
        token = data.get("token") if isinstance(data.get("token"), str) else None
        with connection(self.db):
            try:
                challenges.visible_challenge(admitted.user_id, challenge_id, token)
            except challenges.ChallengeNotFound:
                return {"error": "no such challenge"}
        join_room(challenge_room(challenge_id))
        return {"ok": True}

    def on_unwatch(self, data=None):
        challenge_id = self._watched(data)
        if challenge_id is not None:
            leave_room(challenge_room(challenge_id))
        return {"ok": True}


def bridge_challenge_events(socketio: SocketIO, pubsub: PubSub) -> Subscription:
    """Relay every ``challenges:{id}`` message to this instance's watchers of that
    challenge (``ignore_queue``: the pub/sub capability already reached every instance)."""

    def relay(channel: str, message) -> None:
        challenge_id = messaging.id_of_channel(channel, CHALLENGE_CHANNEL_PREFIX)
        if challenge_id is None or not isinstance(message, dict):
            return
        socketio.emit("score", message, namespace=CHALLENGES_NAMESPACE,
                      to=challenge_room(challenge_id), ignore_queue=True)

    return pubsub.subscribe(CHALLENGE_CHANNEL_PREFIX + "*", relay)


def bridge_change_events(socketio: SocketIO, pubsub: PubSub) -> Subscription:
    """Relay every ``events:{user_id}`` message to that user's clients on this instance."""

    def relay(channel: str, message) -> None:
        user_id = events.user_of_channel(channel)
        if user_id is None:
            return
        socketio.emit("change", message, namespace=EVENTS_NAMESPACE, to=user_room(user_id),
                      ignore_queue=True)

    return pubsub.subscribe(events.CHANNEL_PATTERN, relay)


def still_valid(db, admitted: list[Admitted], now: float) -> set[tuple[int, int | None]]:
    """Which ``(user_id, key_id)`` of these admissions still hold: the user is active and
    the key (if any) exists and has not expired."""
    users = {a.user_id for a in admitted}
    if not users:
        return set()
    with connection(db):
        active = {u for (u,) in User.select(User.id)
                  .where(User.id.in_(users), User.is_active).tuples()}
        keys = {(u, k) for k, u in ApiKey.select(ApiKey.id, ApiKey.user)
                .where(ApiKey.user.in_(active),
                       ApiKey.expires_at.is_null() | (ApiKey.expires_at > now)).tuples()}
    return {(u, None) for u in active} | keys


def _close(socketio: SocketIO, admissions: Admissions, sockets: list[tuple[str, str]],
           why: str) -> int:
    for namespace, sid in sockets:
        admissions.remove(namespace, sid)
        socketio.server.disconnect(sid, namespace=namespace, ignore_queue=True)
    if sockets:
        log.info("closed %d socket(s): %s", len(sockets), why)
    return len(sockets)


def close_sessions(socketio: SocketIO, admissions: Admissions, handles: set[str]) -> int:
    """Close this instance's sockets signed in by one of these (ended) sessions."""
    ended = [where for where, admitted in admissions.items()
             if admitted.session_handle in handles]
    return _close(socketio, admissions, ended, "their session ended")


def recheck(socketio: SocketIO, admissions: Admissions, db,
            users: set[int] | None = None) -> int:
    """Close this instance's sockets of ``users`` (of everyone when None) whose account is
    no longer active or whose API key was revoked or has expired; returns how many."""
    sockets = [(where, admitted) for where, admitted in admissions.items()
               if users is None or admitted.user_id in users]
    if not sockets:
        return 0
    valid = still_valid(db, [admitted for _, admitted in sockets], time.time())
    ended = [where for where, admitted in sockets
             if (admitted.user_id, admitted.key_id) not in valid]
    return _close(socketio, admissions, ended, "their key or account no longer holds")


def disconnect_ended_credentials(socketio: SocketIO, pubsub: PubSub, admissions: Admissions,
                                 db) -> Subscription:
    """Close this instance's sockets of every session announced as ended, and recheck those
    of every user whose keys or account were announced as changed."""
    from trackeep_desktop.accounts.sessions import SESSIONS_ENDED_CHANNEL

    def close(channel: str, message) -> None:
        handles = {str(h) for h in message.get("handles", [])}
        users = {int(u) for u in message.get("users", []) if str(u).isdigit()}
        if handles:
            close_sessions(socketio, admissions, handles)
        if users:
            recheck(socketio, admissions, db, users)

    return pubsub.subscribe(SESSIONS_ENDED_CHANNEL, close)


def create_socketio(app: Flask, config: dict) -> SocketIO:
    """Build and bind the Socket.IO server for ``app`` from its settings, and bridge the
    pub/sub change events to it."""
    options = dict(async_mode=config["ASYNC_MODE"], manage_session=False, logger=False,
                   engineio_logger=False)
    if config.get("SERVER") == "waitress":
        # waitress cannot hand a request's socket to a WebSocket: offer long-polling only,
        # so clients neither try an upgrade that fails nor wait for it.
        options.update(transports=["polling"], allow_upgrades=False)
    state = app.extensions.get("trackeep")
    queue = None
    if state is not None and state.capabilities.redis is not None:
        queue = PubSubQueueManager(state.capabilities.pubsub,
                                   target=state.capabilities.redis_target)
        options.update(client_manager=queue)
    socketio = SocketIO(app, **options)
    admissions = Admissions()
    socketio.admissions = admissions  # type: ignore[attr-defined]
    socketio.on_namespace(SystemNamespace("/", admissions))
    socketio.on_namespace(EventsNamespace(EVENTS_NAMESPACE, admissions))
    if state is not None:
        socketio.on_namespace(MessagesNamespace(
            MESSAGES_NAMESPACE, admissions, state.db, state.capabilities.pubsub,
            TypingThrottle(config.get("CLOCK"))))
        socketio.on_namespace(ChallengesNamespace(CHALLENGES_NAMESPACE, admissions, state.db))
        if queue is not None:
            state.on_close.append(queue.close)
        pubsub = state.capabilities.pubsub
        for subscription in (bridge_change_events(socketio, pubsub),
                             bridge_challenge_events(socketio, pubsub),
                             disconnect_ended_credentials(socketio, pubsub, admissions,
                                                          state.db),
                             *bridge_conversation_events(socketio, pubsub, admissions,
                                                         state.db)):
            state.on_close.append(subscription.unsubscribe)
        # The safety net under the announcements: a key revoked by a process that shares
        # only the database (the CLI without Redis), or an announcement lost while Redis
        # was down, still closes its sockets within one interval.
        interval = config.get("SOCKET_RECHECK_INTERVAL", 0)
        if interval > 0:
            state.periodic.every(interval, "socket credentials recheck",
                                 lambda: recheck(socketio, admissions, state.db))
    return socketio


def init_app(app: Flask, state) -> None:
    """Socket.IO on this app, with the change events bridged to it."""
    state.socketio = create_socketio(app, app.config)

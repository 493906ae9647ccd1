"""Change events: a write by one client reaches the same user's Socket.IO clients (on any
instance, exactly once) and never another user's."""

from __future__ import annotations

import threading
import time

import pytest
import socketio
from auth_actions import GENEROUS_LIMITS, OWNER, PASSWORD, AuthActions, bearer

from trackeep_desktop.capabilities.pubsub import MemoryPubSub
from trackeep_desktop.realtime import events
from trackeep_desktop.realtime.namespaces import EVENTS_NAMESPACE

from clocks import wait_until
from processes import ThreadServer


def changes(socket_client) -> list[dict]:
    """The ``change`` events a Flask-SocketIO test client has received (and clears them)."""
    return [event["args"][0] for event in socket_client.get_received(EVENTS_NAMESPACE)
            if event["name"] == "change"]


def test_publish_change_sends_one_message_on_the_users_channel():
    pubsub = MemoryPubSub()
    got = []
    pubsub.subscribe(events.CHANNEL_PATTERN, lambda channel, message: got.append((channel,
                                                                                  message)))
    events.publish_change(pubsub, 7, "note", "updated", {"id": 3, "title": "t"})
    events.publish_change(pubsub, 7, "note", "purged", None, item_id=3)
    assert [channel for channel, _ in got] == ["events:7", "events:7"]
    first, second = got[0][1], got[1][1]
    assert first["type"] == "note"
    assert first["action"] == "updated"
    assert first["id"] == 3
    assert first["item"] == {"id": 3, "title": "t"}
    assert first["at"].endswith("Z")
    assert second["item"] is None
    assert second["id"] == 3
    assert events.user_of_channel("events:12") == 12
    assert events.user_of_channel("events:x") is None
    assert events.user_of_channel("messages:1") is None
    with pytest.raises(ValueError, match="unknown change action 'exploded'"):
        events.publish_change(pubsub, 7, "note", "exploded", None)


@pytest.fixture
def people(app):
    """The owner and ann, each with an API token and a browser signed in to the UI.

    Flask-SocketIO's test client cannot run with a message queue, so these tests run on the
    embedded capabilities; the Redis path is tested over real WebSockets below."""
    app.config.update(GENEROUS_LIMITS, FETCH_METADATA=False)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    browsers = {}
    for login, password in (("owner", OWNER["password"]), ("ann", PASSWORD)):
        browsers[login] = actions.browser()
        assert AuthActions.web_login(browsers[login], login, password).status_code == 302
    return actions, {"owner": owner, "ann": actions.token("ann")}, browsers


def test_an_edit_reaches_the_same_users_socket_and_no_one_else(app, people):
    actions, tokens, browsers = people
    sio = app.extensions["trackeep"].socketio
    owner_socket = sio.test_client(app, namespace=EVENTS_NAMESPACE,
                                   flask_test_client=browsers["owner"])
    ann_socket = sio.test_client(app, namespace=EVENTS_NAMESPACE,
                                 flask_test_client=browsers["ann"])
    assert owner_socket.is_connected(EVENTS_NAMESPACE)
    assert ann_socket.is_connected(
        EVENTS_NAMESPACE)

    created = actions.api("POST", "/notes", tokens["owner"],
                          json={"title": "Private plans", "content": "secret"}).get_json()
    received = []
    assert wait_until(lambda: received.extend(changes(owner_socket)) or received)
    assert received == [{"type": "note", "action": "created", "id": created["id"],
                         "item": created, "at": received[0]["at"]}]

    actions.api("PATCH", f"/notes/{created['id']}", tokens["owner"], json={"is_pinned": True})
    actions.api("DELETE", f"/notes/{created['id']}", tokens["owner"])
    actions.api("POST", f"/trash/note/{created['id']}/restore", tokens["owner"])
    more = []
    assert wait_until(lambda: more.extend(changes(owner_socket)) or len(more) >= 3)
    assert [(m["action"], m["item"]["is_pinned"]) for m in more] == [
        ("updated", True), ("deleted", True), ("restored", True)]

    ann_note = actions.api("POST", "/notes", tokens["ann"], json={"title": "Ann's"}).get_json()
    ann_seen = []
    assert wait_until(lambda: ann_seen.extend(changes(ann_socket)) or ann_seen)
    assert [m["id"] for m in ann_seen] == [ann_note["id"]]  # only her own change
    time.sleep(0.2)
    assert changes(owner_socket) == []
    owner_socket.disconnect(EVENTS_NAMESPACE)
    ann_socket.disconnect(EVENTS_NAMESPACE)


def test_ending_a_session_closes_its_live_socket(app, people):
    actions, tokens, browsers = people
    sio = app.extensions["trackeep"].socketio
    revoked = sio.test_client(app, namespace=EVENTS_NAMESPACE, headers=bearer(tokens["ann"]))
    kept = sio.test_client(app, namespace=EVENTS_NAMESPACE, flask_test_client=browsers["ann"])
    assert revoked.is_connected(EVENTS_NAMESPACE)
    assert kept.is_connected(EVENTS_NAMESPACE)
    actions.api("POST", "/auth/logout", tokens["ann"])  # ends the token's session only
    assert wait_until(lambda: not revoked.is_connected(EVENTS_NAMESPACE))
    assert kept.is_connected(EVENTS_NAMESPACE)
    admin = sio.test_client(app, namespace=EVENTS_NAMESPACE, flask_test_client=browsers["owner"])
    owner_key, _ = actions.create_key(tokens["owner"], ["read"])
    by_key = sio.test_client(app, namespace=EVENTS_NAMESPACE, headers=bearer(owner_key))
    actions.api("DELETE", "/sessions", tokens["owner"])  # ends the browser's session
    assert wait_until(lambda: not admin.is_connected(EVENTS_NAMESPACE))
    assert by_key.is_connected(EVENTS_NAMESPACE)  # keys are not sessions
    kept.disconnect(EVENTS_NAMESPACE)
    by_key.disconnect(EVENTS_NAMESPACE)


def test_sockets_need_a_user(app, people):
    actions, tokens, _ = people
    sio = app.extensions["trackeep"].socketio
    anonymous = sio.test_client(app, namespace=EVENTS_NAMESPACE)
    assert not anonymous.is_connected(EVENTS_NAMESPACE)
    revoked = actions.token("ann")
    actions.api("POST", "/auth/logout", revoked)
    stale = sio.test_client(app, namespace=EVENTS_NAMESPACE, headers=bearer(revoked))
    assert not stale.is_connected(EVENTS_NAMESPACE)
    writer, _ = actions.create_key(tokens["owner"], ["bookmarks:write"])
    assert not sio.test_client(app, namespace=EVENTS_NAMESPACE,
                               headers=bearer(writer)).is_connected(EVENTS_NAMESPACE)
    reader, _ = actions.create_key(tokens["owner"], ["read"])
    by_key = sio.test_client(app, namespace=EVENTS_NAMESPACE, headers=bearer(reader))
    assert by_key.is_connected(EVENTS_NAMESPACE)
    by_token = sio.test_client(app, namespace=EVENTS_NAMESPACE,
                               headers=bearer(tokens["ann"]))
    assert by_token.is_connected(EVENTS_NAMESPACE)
    by_key.disconnect(EVENTS_NAMESPACE)
    by_token.disconnect(EVENTS_NAMESPACE)


@pytest.mark.slow
def test_two_instances_on_one_redis_deliver_each_change_exactly_once(make_app, redis_url,
                                                                     key_prefix):
    config = dict(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, FETCH_METADATA=False,
                  **GENEROUS_LIMITS)
    first, second = make_app(**config), make_app(**config)
    actions = AuthActions(first)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    ann = actions.token("ann")
    served = [ThreadServer(first), ThreadServer(second)]
    received: dict[str, list] = {}
    clients = []
    try:
        for name, token, instance in (("owner@1", owner, served[0]),
                                      ("owner@2", owner, served[1]),
                                      ("ann@2", ann, served[1])):
            client = socketio.Client(reconnection=False)
            received[name] = []
            client.on("change", lambda data, name=name: received[name].append(data),
                      namespace=EVENTS_NAMESPACE)
            client.connect(instance.url, headers=bearer(token), transports=["websocket"],
                           namespaces=[EVENTS_NAMESPACE], wait_timeout=10)
            assert client.transport() == "websocket"
            clients.append(client)

        bookmark = actions.api("POST", "/bookmarks", owner,
                               json={"url": "https://example.com/live"}).get_json()
        assert wait_until(lambda: received["owner@1"] and received["owner@2"], timeout=10)
        time.sleep(0.5)  # a duplicate would arrive by now
        for name in ("owner@1", "owner@2"):
            assert [(m["action"], m["id"]) for m in received[name]] == [
                ("created", bookmark["id"])], name
        assert received["ann@2"] == []

        anonymous = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            anonymous.connect(served[1].url, transports=["websocket"],
                              namespaces=[EVENTS_NAMESPACE], wait_timeout=5)
    finally:
        # In parallel: under Werkzeug each client waits ~3 s for the close handshake.
        closing = [threading.Thread(target=client.disconnect) for client in clients]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(10)
        for instance in served:
            instance.stop()

"""Live sockets end with their credentials: a revoked or expired API key, a disabled or
deleted account; and the default namespace admits only signed-in clients and answers the
sender alone. On one instance (Flask-SocketIO's test client) and across two on one Redis
(real WebSockets)."""

from __future__ import annotations

import threading
import time

import pytest
import socketio
from auth_actions import GENEROUS_LIMITS, AuthActions, bearer

from trackeep_desktop.realtime.namespaces import EVENTS_NAMESPACE
from trackeep_desktop.storage.db import connection
from trackeep_desktop.storage.models import ApiKey

from clocks import wait_until
from processes import ThreadServer

BOTH = ["/", EVENTS_NAMESPACE]


@pytest.fixture
def people(app):
    app.config.update(GENEROUS_LIMITS, FETCH_METADATA=False)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    ann = actions.create_user(owner, "ann")
    return actions, owner, actions.token("ann"), ann


def key_socket(app, key: str, namespace: str):
    sio = app.extensions["trackeep"].socketio
    return sio.test_client(app, namespace=namespace, headers=bearer(key))


def test_revoking_a_key_closes_its_sockets_on_every_namespace_and_no_other(app, people):
    actions, owner, _, _ = people
    revoked_key, revoked = actions.create_key(owner, ["read"], name="laptop")
    kept_key, _ = actions.create_key(owner, ["read"], name="phone")
    doomed = [key_socket(app, revoked_key, ns) for ns in BOTH]
    kept = [key_socket(app, kept_key, ns) for ns in BOTH]
    for client, ns in zip(doomed + kept, BOTH * 2, strict=True):
        assert client.is_connected(ns)

    assert actions.api("DELETE", f"/api-keys/{revoked['id']}", owner).status_code == 204
    assert wait_until(lambda: not any(c.is_connected(ns) for c, ns in zip(doomed, BOTH,
                                                                          strict=True)))
    # The other key's sockets stay, and still hear the owner's changes.
    assert all(c.is_connected(ns) for c, ns in zip(kept, BOTH, strict=True))
    actions.api("POST", "/notes", owner, json={"title": "after the revocation"})
    assert wait_until(lambda: any(e["name"] == "change"
                                  for e in kept[1].get_received(EVENTS_NAMESPACE)))
    for client, ns in zip(kept, BOTH, strict=True):
        client.disconnect(ns)


def test_disabling_an_account_closes_its_key_sockets(app, people):
    actions, owner, ann_token, ann = people
    ann_key, _ = actions.create_key(ann_token, ["read"])
    owner_key, _ = actions.create_key(owner, ["read"])
    ann_socket = key_socket(app, ann_key, EVENTS_NAMESPACE)
    owner_socket = key_socket(app, owner_key, EVENTS_NAMESPACE)
    assert ann_socket.is_connected(EVENTS_NAMESPACE)

    answer = actions.api("PATCH", f"/admin/users/{ann['id']}", owner, json={"isActive": False})
    assert answer.status_code == 200, answer.get_json()
    assert wait_until(lambda: not ann_socket.is_connected(EVENTS_NAMESPACE))
    assert owner_socket.is_connected(EVENTS_NAMESPACE)
    # Enabled again, the key works again (it was not deleted), and a new socket is admitted.
    actions.api("PATCH", f"/admin/users/{ann['id']}", owner, json={"isActive": True})
    again = key_socket(app, ann_key, EVENTS_NAMESPACE)
    assert again.is_connected(EVENTS_NAMESPACE)
    again.disconnect(EVENTS_NAMESPACE)
    owner_socket.disconnect(EVENTS_NAMESPACE)


def test_deleting_an_account_closes_its_key_sockets(app, people):
    actions, owner, ann_token, ann = people
    ann_key, _ = actions.create_key(ann_token, ["read"])
    sockets = [key_socket(app, ann_key, ns) for ns in BOTH]
    assert actions.api("DELETE", f"/admin/users/{ann['id']}", owner).status_code in (200, 204)
    assert wait_until(lambda: not any(c.is_connected(ns) for c, ns in zip(sockets, BOTH,
                                                                          strict=True)))


def test_a_password_change_that_revokes_keys_closes_their_sockets(app, people):
    actions, _, ann_token, _ = people
    ann_key, _ = actions.create_key(ann_token, ["read"])
    socket = key_socket(app, ann_key, EVENTS_NAMESPACE)
    assert socket.is_connected(EVENTS_NAMESPACE)
    answer = actions.api("POST", "/auth/password", ann_token,
                         json={"currentPassword": "user-pass-456",
                               "newPassword": "a-new-pass-789", "revokeApiKeys": True})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["apiKeysRevoked"] == 1
    assert wait_until(lambda: not socket.is_connected(EVENTS_NAMESPACE))


def test_an_expiring_key_closes_its_socket_at_the_expiry(app, people):
    app.config["SOCKET_RECHECK_INTERVAL"] = 0  # the expiry timer alone
    actions, owner, _, _ = people
    key, listing = actions.create_key(owner, ["read"])
    with connection(app.extensions["trackeep"].db):
        ApiKey.update(expires_at=time.time() + 1.0).where(ApiKey.id == listing["id"]).execute()
    socket = key_socket(app, key, EVENTS_NAMESPACE)
    assert socket.is_connected(EVENTS_NAMESPACE)
    time.sleep(0.5)
    assert socket.is_connected(EVENTS_NAMESPACE)  # not before its time
    assert wait_until(lambda: not socket.is_connected(EVENTS_NAMESPACE), timeout=5)


def test_a_key_deleted_behind_the_servers_back_closes_within_the_recheck(make_app):
    """What no announcement reaches (the CLI on the same database without Redis) is found
    by the periodic recheck."""
    app = make_app(SOCKET_RECHECK_INTERVAL=0.3, FETCH_METADATA=False, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    key, listing = actions.create_key(owner, ["read"])
    socket = key_socket(app, key, EVENTS_NAMESPACE)
    assert socket.is_connected(EVENTS_NAMESPACE)
    with connection(app.extensions["trackeep"].db):
        ApiKey.delete().where(ApiKey.id == listing["id"]).execute()  # no announcement
    assert wait_until(lambda: not socket.is_connected(EVENTS_NAMESPACE), timeout=5)


def test_the_default_namespace_refuses_anonymous_clients_and_echoes_to_the_sender(app,
                                                                                   people):
    _, owner, ann_token, _ = people
    sio = app.extensions["trackeep"].socketio
    assert not sio.test_client(app, namespace="/").is_connected("/")
    sender = sio.test_client(app, namespace="/", headers=bearer(owner))
    listener = sio.test_client(app, namespace="/", headers=bearer(ann_token))
    assert sender.is_connected("/")
    assert listener.is_connected("/")
    sender.emit("echo", {"n": 1})
    assert wait_until(lambda: [e for e in sender.get_received("/") if e["name"] == "echo"])
    time.sleep(0.2)
    assert [e for e in listener.get_received("/") if e["name"] == "echo"] == []
    assert sender.emit("ping", {"n": 2}, callback=True)["pong"] == {"n": 2}
    sender.disconnect("/")
    listener.disconnect("/")


def connect(url: str, token: str | None, namespaces=tuple(BOTH)) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, headers=bearer(token) if token else {}, transports=["websocket"],
                   namespaces=list(namespaces), wait_timeout=10)
    return client


def close_all(clients) -> None:
    closing = [threading.Thread(target=c.disconnect) for c in clients]
    for thread in closing:
        thread.start()
    for thread in closing:
        thread.join(10)


@pytest.mark.slow
def test_across_two_instances_revocation_and_disabling_close_sockets_everywhere(
        make_app, redis_url, key_prefix):
    config = dict(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, FETCH_METADATA=False,
                  SOCKET_RECHECK_INTERVAL=0, **GENEROUS_LIMITS)
    first, second = make_app(**config), make_app(**config)
    actions = AuthActions(second)  # every write below goes to the second instance
    owner, _ = actions.register_owner()
    ann = actions.create_user(owner, "ann")
    ann_key, _ = actions.create_key(actions.token("ann"), ["read"])
    owner_key, owner_listing = actions.create_key(owner, ["read"])
    served = ThreadServer(first)
    clients = []
    try:
        by_owner_key = connect(served.url, owner_key)
        by_ann_key = connect(served.url, ann_key)
        clients += [by_owner_key, by_ann_key]
        anonymous = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            anonymous.connect(served.url, transports=["websocket"], namespaces=["/"],
                              wait_timeout=5)

        assert actions.api("DELETE", f"/api-keys/{owner_listing['id']}",
                           owner).status_code == 204
        assert wait_until(lambda: not by_owner_key.connected, timeout=10), \
            "a key revoked on the second instance kept its socket on the first"
        assert by_ann_key.connected
        actions.api("PATCH", f"/admin/users/{ann['id']}", owner, json={"isActive": False})
        assert wait_until(lambda: not by_ann_key.connected, timeout=10), \
            "a disabled account kept its key socket on the other instance"
    finally:
        close_all(clients)
        served.stop()


@pytest.mark.slow
def test_across_two_instances_an_echo_reaches_its_sender_only(make_app, redis_url,
                                                              key_prefix):
    config = dict(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, FETCH_METADATA=False,
                  **GENEROUS_LIMITS)
    first, second = make_app(**config), make_app(**config)
    actions = AuthActions(first)
    owner, _ = actions.register_owner()
    served = [ThreadServer(first), ThreadServer(second)]
    echoes: dict[str, list] = {"sender": [], "other": []}
    clients = []
    try:
        sender = connect(served[0].url, owner, ["/"])
        other = connect(served[1].url, owner, ["/"])
        clients += [sender, other]
        sender.on("echo", echoes["sender"].append)
        other.on("echo", echoes["other"].append)
        sender.emit("echo", {"n": 1})
        assert wait_until(lambda: echoes["sender"], timeout=10)
        time.sleep(0.5)
        assert echoes == {"sender": [{"n": 1}], "other": []}
    finally:
        close_all(clients)
        for instance in served:
            instance.stop()

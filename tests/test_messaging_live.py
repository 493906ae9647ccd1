"""Messaging live (issue 10, step 2): the ``/messages`` namespace on one instance (Flask-
SocketIO's test client, embedded capabilities) and on two instances sharing one Redis (real
python-socketio clients over WebSockets): members hear each event once, strangers and
removed members hear nothing, typing is throttled, notifications arrive, and a client that
reconnects gets exactly what it missed, in order."""

from __future__ import annotations

import threading
import time

import pytest
import socketio
from auth_actions import GENEROUS_LIMITS, AuthActions, bearer

from trackeep_desktop.clock import ManualClock
from trackeep_desktop.messaging import Outbox, envelope
from trackeep_desktop.realtime.namespaces import MESSAGES_NAMESPACE, TypingThrottle

from clocks import wait_until
from processes import ThreadServer


def people(app) -> tuple[AuthActions, dict[str, str], dict[str, int]]:
    """The owner, ann, bob and cyd: their tokens and ids."""
    app.config.update(GENEROUS_LIMITS, FETCH_METADATA=False)
    actions = AuthActions(app)
    owner, user = actions.register_owner()
    tokens, ids = {"owner": owner}, {"owner": user["id"]}
    for name in ("ann", "bob", "cyd"):
        ids[name] = actions.create_user(owner, name)["id"]
        tokens[name] = actions.token(name)
    return actions, tokens, ids


def api(actions, token, method, path, json=None, status=None):
    answer = actions.api(method, path, token, json=json)
    if status is not None:
        assert answer.status_code == status, answer.get_json()
    return answer.get_json() if answer.data else None


def events_of(socket_client, name: str = "event") -> list[dict]:
    """The ``name`` events a Flask-SocketIO test client received on /messages since last
    asked (its other events are kept for the next call)."""
    if not hasattr(socket_client, "kept"):
        socket_client.kept = []
    kept = socket_client.kept
    kept += socket_client.get_received(MESSAGES_NAMESPACE)
    wanted = [e["args"][0] for e in kept if e["name"] == name]
    kept[:] = [e for e in kept if e["name"] != name]
    return wanted


def test_outbox_publishes_only_after_the_commit_and_nothing_for_a_rollback(app):
    from trackeep_desktop.storage.db import connection, database

    outbox = Outbox(None)
    with connection(app.extensions["trackeep"].db):
        with database.atomic():
            outbox.publish("messages:1", envelope("message.created", 1, {}, 1))
            assert outbox.sent == []
        assert [channel for channel, _ in outbox.sent] == ["messages:1"]
        try:
            with database.atomic():
                outbox.publish("messages:1", envelope("message.created", 1, {}, 2))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert len(outbox.sent) == 1


def test_typing_throttle_relays_one_start_per_interval_and_a_stop_after_it():
    clock = ManualClock(start=1000.0)
    throttle = TypingThrottle(clock)
    assert [throttle.allow(1, 2, True) for _ in range(1000)].count(True) == 1
    assert throttle.allow(3, 2, True)  # someone else
    assert throttle.allow(1, 2, False)
    assert not throttle.allow(1, 2, False)  # nothing to stop
    assert throttle.allow(1, 2, True)
    clock.advance(TypingThrottle.INTERVAL)
    assert throttle.allow(1, 2, True)


def test_members_hear_each_event_and_strangers_and_removed_members_nothing(make_app):
    app = make_app(CLOCK=ManualClock(start=float(int(time.time()))))
    actions, tokens, ids = people(app)
    sio = app.extensions["trackeep"].socketio
    sockets = {name: sio.test_client(app, namespace=MESSAGES_NAMESPACE,
                                     headers=bearer(tokens[name]))
               for name in ("ann", "bob", "cyd")}
    assert all(s.is_connected(MESSAGES_NAMESPACE) for s in sockets.values())
    anonymous = sio.test_client(app, namespace=MESSAGES_NAMESPACE)
    assert not anonymous.is_connected(MESSAGES_NAMESPACE)

    group = api(actions, tokens["ann"], "POST", "/messages/conversations",
                {"type": "group", "name": "Pair", "user_ids": [ids["bob"]]},
                status=201)["conversation"]
    gid = group["id"]
    for name in sockets:
        events_of(sockets[name])
        events_of(sockets[name], "notification")
    sent = api(actions, tokens["ann"], "POST", f"/messages/conversations/{gid}/messages",
               {"body": "hello @bob"}, status=201)["message"]
    for name in ("ann", "bob"):
        got = events_of(sockets[name])
        assert [(e["type"], e["conversation_id"], e["data"]["id"]) for e in got] == [
            ("message.created", gid, sent["id"])], name
        assert got[0]["seq"] == sent["seq"]
        assert got[0]["timestamp"].endswith("Z")
    assert events_of(sockets["cyd"]) == []
    mention = events_of(sockets["bob"], "notification")
    assert [(n["type"], n["data"]["kind"]) for n in mention] == [
        ("notification.created", "mention")]
    assert events_of(sockets["ann"], "notification") == []

    # typing: a member's is relayed once however fast it comes; a stranger's goes nowhere
    for _ in range(1000):
        sockets["ann"].emit("typing", {"conversation_id": gid}, namespace=MESSAGES_NAMESPACE)
    sockets["cyd"].emit("typing", {"conversation_id": gid}, namespace=MESSAGES_NAMESPACE)
    typing = events_of(sockets["bob"])
    assert [(e["type"], e["data"]["user_id"], e["seq"]) for e in typing] == [
        ("typing.started", ids["ann"], None)]
    sockets["ann"].emit("typing", {"conversation_id": gid, "typing": False},
                        namespace=MESSAGES_NAMESPACE)
    assert [e["type"] for e in events_of(sockets["bob"])] == ["typing.stopped"]
    assert events_of(sockets["cyd"]) == []

    # a removed member hears of the removal, then nothing more
    api(actions, tokens["ann"], "DELETE", f"/messages/conversations/{gid}/members/{ids['bob']}",
        status=204)
    removed = events_of(sockets["bob"])
    assert [(e["type"], e["data"]["action"]) for e in removed] == [
        ("conversation.updated", "member_removed")]
    api(actions, tokens["ann"], "POST", f"/messages/conversations/{gid}/messages",
        {"body": "after"}, status=201)
    assert [e["data"]["body"] for e in events_of(sockets["ann"])
            if e["type"] == "message.created"] == ["after"]
    assert events_of(sockets["bob"]) == []
    assert sockets["bob"].emit("sync", {"conversations": {str(gid): 0}},
                               namespace=MESSAGES_NAMESPACE, callback=True) == {
        "events": {}, "more": {}}
    for s in sockets.values():
        s.disconnect(MESSAGES_NAMESPACE)


def _client(instance, token: str, received: list) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.on("event", received.append, namespace=MESSAGES_NAMESPACE)
    client.connect(instance.url, headers=bearer(token), transports=["websocket"],
                   namespaces=[MESSAGES_NAMESPACE], wait_timeout=10)
    return client


def _close(clients) -> None:
    closing = [threading.Thread(target=c.disconnect) for c in clients]
    for thread in closing:
        thread.start()
    for thread in closing:
        thread.join(10)


@pytest.mark.slow
def test_two_instances_on_one_redis_converse_and_catch_up_after_a_reconnect(
        make_app, redis_url, key_prefix):
    config = dict(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, FETCH_METADATA=False,
                  **GENEROUS_LIMITS)
    first, second = make_app(**config), make_app(**config)
    actions, tokens, ids = people(first)
    on_second = AuthActions(second)
    served = [ThreadServer(first), ThreadServer(second)]
    received: dict[str, list] = {"ann@1": [], "bob@2": [], "owner@2": [], "cyd@2": []}
    clients: list[socketio.Client] = []
    try:
        clients.append(_client(served[0], tokens["ann"], received["ann@1"]))
        bob = _client(served[1], tokens["bob"], received["bob@2"])
        clients.append(bob)
        clients.append(_client(served[1], tokens["owner"], received["owner@2"]))
        clients.append(_client(served[1], tokens["cyd"], received["cyd@2"]))

        gid = api(actions, tokens["ann"], "POST", "/messages/conversations",
                  {"type": "group", "name": "Across", "user_ids": [ids["bob"], ids["owner"]]},
                  status=201)["conversation"]["id"]
        path = f"/messages/conversations/{gid}/messages"
        hello = api(actions, tokens["ann"], "POST", path, {"body": "hello"}, status=201)
        reply = api(on_second, tokens["bob"], "POST", path, {"body": "hi ann"}, status=201)

        def created(name):
            return [e["data"]["id"] for e in received[name] if e["type"] == "message.created"]

        wanted = [hello["message"]["id"], reply["message"]["id"]]
        # every member hears both, whichever instance each is on (the relays to the members of
        # one instance run one after another, in no promised order)
        assert wait_until(lambda: all(created(name) == wanted
                                      for name in ("ann@1", "bob@2", "owner@2")))
        seqs = [e["seq"] for e in received["bob@2"]]
        assert seqs == sorted(set(seqs))  # each event once, in order
        assert received["cyd@2"] == []
        assert on_second.api("GET", path, tokens["cyd"]).status_code == 404

        # bob goes away; 1,000 messages later he comes back and syncs from his last seq
        last_seen = received["bob@2"][-1]["seq"]
        bob.disconnect()
        clients.remove(bob)
        missed = [api(actions, tokens["ann"], "POST", path, {"body": f"m{i}"},
                      status=201)["message"] for i in range(1000)]
        back: list = []
        bob = _client(served[1], tokens["bob"], back)
        clients.append(bob)
        answer = bob.call("sync", {"conversations": {str(gid): last_seen}},
                          namespace=MESSAGES_NAMESPACE, timeout=60)
        caught_up = answer["events"][str(gid)]
        assert answer["more"][str(gid)] is False
        assert [e["data"]["id"] for e in caught_up] == [m["id"] for m in missed]
        assert [e["seq"] for e in caught_up] == list(range(last_seen + 1, last_seen + 1001))
        assert back == []  # nothing live was missed or doubled meanwhile

        # removed on the first instance, bob stops hearing on the second at once
        api(actions, tokens["ann"], "DELETE", f"/messages/conversations/{gid}/members/"
            f"{ids['bob']}", status=204)
        last = api(actions, tokens["ann"], "POST", path, {"body": "without bob"},
                   status=201)["message"]
        assert wait_until(lambda: last["id"] in created("owner@2"))
        assert [e["type"] for e in back] == ["conversation.updated"]
        assert received["cyd@2"] == []
    finally:
        _close(clients)
        for instance in served:
            instance.stop()


def test_ending_a_session_closes_its_messages_socket_and_keys_need_read(app):
    actions, tokens, _ = people(app)
    sio = app.extensions["trackeep"].socketio
    socket = sio.test_client(app, namespace=MESSAGES_NAMESPACE, headers=bearer(tokens["ann"]))
    assert socket.is_connected(MESSAGES_NAMESPACE)
    actions.api("POST", "/auth/logout", tokens["ann"])
    assert wait_until(lambda: not socket.is_connected(MESSAGES_NAMESPACE))
    writer, _ = actions.create_key(tokens["bob"], ["messages:write"])
    assert not sio.test_client(app, namespace=MESSAGES_NAMESPACE,
                               headers=bearer(writer)).is_connected(MESSAGES_NAMESPACE)
    reader, _ = actions.create_key(tokens["bob"], ["read"])
    by_key = sio.test_client(app, namespace=MESSAGES_NAMESPACE, headers=bearer(reader))
    assert by_key.is_connected(MESSAGES_NAMESPACE)
    bad = by_key.emit("sync", {"conversations": "all"}, namespace=MESSAGES_NAMESPACE,
                      callback=True)
    assert "error" in bad
    by_key.emit("typing", {"conversation_id": "x"}, namespace=MESSAGES_NAMESPACE)
    by_key.emit("typing", None, namespace=MESSAGES_NAMESPACE)
    assert events_of(by_key) == []
    by_key.disconnect(MESSAGES_NAMESPACE)

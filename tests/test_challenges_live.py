"""Challenges live: scores made on either of two instances sharing one Redis reach the one
board and are published on ``challenges:{id}`` to every instance; the ``/challenges``
Socket.IO namespace hands them to the watchers of that challenge only (and to no one who may
not see it), on one instance and across two over real WebSockets; the pages render."""

from __future__ import annotations

import datetime
import threading

import socketio
from auth_actions import GENEROUS_LIMITS, OWNER, PASSWORD, AuthActions, bearer

from trackeep_desktop.realtime.namespaces import CHALLENGES_NAMESPACE

from clocks import wait_until
from processes import ThreadServer

TODAY = datetime.date.today()
PERIOD = {"start_date": (TODAY - datetime.timedelta(days=1)).isoformat(),
          "end_date": (TODAY + datetime.timedelta(days=6)).isoformat()}


def _challenge(actions, token, rule, **extra) -> dict:
    response = actions.api("POST", "/community/challenges", token, json={
        "title": "Tasks week", "rule": rule, **PERIOD, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _scores(socket_client) -> list[dict]:
    return [e["args"][0] for e in socket_client.get_received(CHALLENGES_NAMESPACE)
            if e["name"] == "score"]


def test_scores_from_two_instances_reach_one_board_and_are_published(make_app, redis_url,
                                                                      key_prefix):
    config = {"REDIS_URL": redis_url, "KEY_PREFIX": key_prefix, "FETCH_METADATA": False,
              **GENEROUS_LIMITS}
    app_a, app_b = make_app(**config), make_app(**config)
    a, b = AuthActions(app_a), AuthActions(app_b)
    owner, _ = a.register_owner()
    a.create_user(owner, "ann")
    ann = b.token("ann")
    today = datetime.date.today()
    created = a.api("POST", "/community/challenges", owner, json={
        "title": "Notes week", "start_date": (today - datetime.timedelta(days=1)).isoformat(),
        "end_date": (today + datetime.timedelta(days=6)).isoformat(),
        "rule": {"type": "write_notes", "target": 3}}).get_json()
    cid = created["id"]
    heard: list[dict] = []
    got = threading.Event()

    def hear(channel, message):
        heard.append(message)
        if message.get("score") == 1 and message.get("user_id") != created["creator_id"]:
            got.set()

    subscription = app_b.extensions["trackeep"].capabilities.pubsub.subscribe(
        f"challenges:{cid}", hear)
    try:
        assert a.api("POST", f"/community/challenges/{cid}/join", owner).status_code == 200
        assert b.api("POST", f"/community/challenges/{cid}/join", ann).status_code == 200
        for _ in range(2):
            assert a.api("POST", "/notes", owner, json={"title": "a"}).status_code == 201
        # ann writes on instance A; instance B hears it on pub/sub
        assert a.api("POST", "/notes", ann, json={"title": "b"}).status_code == 201
        assert wait_until(got.is_set)
    finally:
        subscription.unsubscribe()
    boards = [x.api("GET", f"/community/challenges/{cid}/leaderboard?around=me", token)
              .get_json() for x, token in ((a, owner), (b, ann))]
    for answer in boards:
        assert [(e["username"], e["score"]) for e in answer["entries"]] == [
            ("owner", 2), ("ann", 1)]
    assert boards[1]["me"] == {"rank": 2, "score": 1}
    # the board is one sorted set in Redis, so instance B's own capability reads it
    lb = app_b.extensions["trackeep"].capabilities.leaderboard
    assert len(lb.top(f"challenge:{cid}:leaderboard", 10)) == 2


def test_watchers_hear_score_changes_of_the_challenges_they_may_see(make_app):
    app = make_app(FETCH_METADATA=False, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, owner_user = actions.register_owner()
    ann_id = actions.create_user(owner, "ann")["id"]
    actions.create_user(owner, "cyd")
    ann, cyd = actions.token("ann"), actions.token("cyd")
    public = _challenge(actions, owner, {"type": "complete_tasks", "target": 2})
    private = _challenge(actions, owner, {"type": "write_notes", "target": 2},
                         visibility="invite")
    sio = app.extensions["trackeep"].socketio

    anonymous = sio.test_client(app, namespace=CHALLENGES_NAMESPACE)
    assert not anonymous.is_connected(CHALLENGES_NAMESPACE)
    watcher = sio.test_client(app, namespace=CHALLENGES_NAMESPACE, headers=bearer(owner))
    stranger = sio.test_client(app, namespace=CHALLENGES_NAMESPACE, headers=bearer(cyd))
    assert watcher.emit("watch", {"challenge_id": public["id"]}, namespace=CHALLENGES_NAMESPACE,
                        callback=True) == {"ok": True}
    # an invitation-only challenge: not without its token, as the API's 404
    assert stranger.emit("watch", {"challenge_id": private["id"]},
                         namespace=CHALLENGES_NAMESPACE, callback=True) == {
        "error": "no such challenge"}
    assert stranger.emit("watch", {"challenge_id": "x"}, namespace=CHALLENGES_NAMESPACE,
                         callback=True) == {"error": "send {challenge_id}"}

    assert actions.api("POST", f"/community/challenges/{public['id']}/join", ann).status_code \
        == 200
    task = actions.api("POST", "/tasks", ann, json={"title": "t"}).get_json()["id"]
    assert actions.api("POST", f"/tasks/{task}/complete", ann).status_code == 200
    heard: list[dict] = []
    assert wait_until(lambda: heard.extend(_scores(watcher)) or any(
        e["user_id"] == ann_id and e["score"] == 1 for e in heard))
    assert {e["challenge_id"] for e in heard} == {public["id"]}
    assert _scores(stranger) == []

    # with the invitation token cyd may watch; a note by the owner scores there
    assert stranger.emit("watch", {"challenge_id": private["id"],
                                   "token": private["invite_token"]},
                         namespace=CHALLENGES_NAMESPACE, callback=True) == {"ok": True}
    assert actions.api("POST", f"/community/challenges/{private['id']}/join", owner) \
        .status_code == 200
    assert actions.api("POST", "/notes", owner, json={"title": "n"}).status_code == 201
    got: list[dict] = []
    assert wait_until(lambda: got.extend(_scores(stranger)) or any(
        e["user_id"] == owner_user["id"] and e["score"] == 1 for e in got))
    assert {e["challenge_id"] for e in got} == {private["id"]}

    # unwatch: nothing more arrives
    watcher.emit("unwatch", {"challenge_id": public["id"]}, namespace=CHALLENGES_NAMESPACE,
                 callback=True)
    _scores(watcher)
    second = actions.api("POST", "/tasks", ann, json={"title": "u"}).get_json()["id"]
    assert actions.api("POST", f"/tasks/{second}/complete", ann).status_code == 200
    assert wait_until(lambda: actions.api(
        "GET", f"/community/challenges/{public['id']}", ann).get_json()["my_score"] == 2)
    assert _scores(watcher) == []


def test_a_watcher_on_one_instance_hears_a_score_made_on_the_other(make_app, redis_url,
                                                                   key_prefix):
    config = {"REDIS_URL": redis_url, "KEY_PREFIX": key_prefix, "FETCH_METADATA": False,
              **GENEROUS_LIMITS}
    app_a, app_b = make_app(**config), make_app(**config)
    a = AuthActions(app_a)
    owner, _ = a.register_owner()
    ann_id = a.create_user(owner, "ann")["id"]
    ann = a.token("ann")
    challenge = _challenge(a, owner, {"type": "save_items", "target": 5})
    served = ThreadServer(app_b)
    heard: list[dict] = []
    client = socketio.Client(reconnection=False)
    client.on("score", heard.append, namespace=CHALLENGES_NAMESPACE)
    try:
        client.connect(served.url, headers=bearer(owner), transports=["websocket"],
                       namespaces=[CHALLENGES_NAMESPACE], wait_timeout=10)
        assert client.call("watch", {"challenge_id": challenge["id"]},
                           namespace=CHALLENGES_NAMESPACE, timeout=10) == {"ok": True}
        assert a.api("POST", f"/community/challenges/{challenge['id']}/join", ann) \
            .status_code == 200
        assert a.api("POST", "/bookmarks", ann, json={"url": "https://example.com/x"}) \
            .status_code == 201
        assert wait_until(lambda: any(e["user_id"] == ann_id and e["score"] == 1
                                      for e in heard))
        assert all(e["challenge_id"] == challenge["id"] for e in heard)
        # each change once: the join (score 0) and the save (score 1), nothing doubled
        assert [e["score"] for e in heard if e["user_id"] == ann_id] == [0, 1]
    finally:
        client.disconnect()
        served.stop()


def test_the_challenge_pages_render_and_hide_what_the_user_may_not_see(make_app):
    app = make_app(FETCH_METADATA=False, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    private = _challenge(actions, owner, {"type": "write_notes", "target": 2},
                         visibility="invite", title="Secret plan")
    client = actions.browser()
    assert AuthActions.web_login(client, "owner", OWNER["password"]).status_code == 302
    page = client.get("/challenges")
    assert page.status_code == 200
    assert b'id="challenge-form"' in page.data
    assert b"Challenges" in page.data
    mine = client.get(f"/challenges/{private['id']}")
    assert mine.status_code == 200
    assert b"Secret plan" in mine.data
    client = actions.browser()
    assert AuthActions.web_login(client, "ann", PASSWORD).status_code == 302
    hidden = client.get(f"/challenges/{private['id']}", headers={"Accept": "text/html"})
    assert hidden.status_code == 404
    assert b"Secret plan" not in hidden.data
    assert hidden.content_type.startswith("text/html")
    shown = client.get(f"/challenges/{private['id']}?token={private['invite_token']}")
    assert shown.status_code == 200
    assert b"Secret plan" in shown.data

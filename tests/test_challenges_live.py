"""Challenges on two instances sharing one Redis: scores made on either reach the one board,
and each score change is published on ``challenges:{id}`` to every instance."""

from __future__ import annotations

import datetime
import threading

from auth_actions import GENEROUS_LIMITS, AuthActions

from clocks import wait_until


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

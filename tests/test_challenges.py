"""Challenges (issue 11): scores computed from each member's own activity inside the write's
transaction, points taken back on undo, the period in the creator's timezone, ties broken by
time, the database answering while Redis is down, and boards rebuilt from the table."""

from __future__ import annotations

import datetime
import time
import zoneinfo

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackeep_desktop import challenges
from trackeep_desktop.capabilities.fallback import CapabilityUnavailable
from trackeep_desktop.clock import ManualClock
from trackeep_desktop.storage.models import Challenge, ChallengeParticipant

TODAY = datetime.date.today()
START = (TODAY - datetime.timedelta(days=2)).isoformat()
END = (TODAY + datetime.timedelta(days=5)).isoformat()


@pytest.fixture
def world(make_app):
    """An app on a manual clock with the owner and ann; returns (actions, tokens, clock)."""
    clock = ManualClock(start=float(int(time.time())))
    app = make_app(CLOCK=clock, FETCH_METADATA=False, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    return actions, {"owner": owner, "ann": actions.token("ann")}, clock


def create(actions, token, rule, **extra):
    body = {"title": "Reading month", "description": "", "start_date": START,
            "end_date": END, "rule": rule, **extra}
    response = actions.api("POST", "/community/challenges", token, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def board(actions, token, challenge_id, **query):
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    response = actions.api("GET", f"/community/challenges/{challenge_id}/leaderboard?{suffix}",
                           token)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def score_of(actions, token, challenge_id):
    return actions.api("GET", f"/community/challenges/{challenge_id}", token).get_json()[
        "my_score"]


def join(actions, token, challenge_id, invite=None):
    suffix = f"?token={invite}" if invite else ""
    return actions.api("POST", f"/community/challenges/{challenge_id}/join{suffix}", token)


def new(actions, token, kind, **fields):
    body = {"bookmark": {"url": f"https://example.com/{time.time_ns()}"},
            "task": {"title": "t"}, "note": {"title": "n"}}[kind]
    response = actions.api("POST", f"/{kind}s", token, json={**body, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def later(actions, tokens, clock, seconds):
    """Move the clock on in steps of six hours, using each session on the way (sessions
    slide: a day without a request would sign everyone out)."""
    while seconds > 0:
        step = min(seconds, 6 * 3600)
        clock.advance(step)
        seconds -= step
        for token in tokens.values():
            assert actions.api("GET", "/community/my-challenges", token).status_code == 200


def test_read_bookmarks_scores_and_takes_points_back_on_unread_trash_and_restore(world):
    actions, tokens, _ = world
    challenge = create(actions, tokens["owner"], {"type": "read_bookmarks", "target": 3})
    assert join(actions, tokens["ann"], challenge["id"]).status_code == 200
    first = new(actions, tokens["ann"], "bookmark")
    new(actions, tokens["owner"], "bookmark", is_read=True)  # not a member: no score
    assert score_of(actions, tokens["ann"], challenge["id"]) == 0
    actions.api("PATCH", f"/bookmarks/{first}", tokens["ann"], json={"is_read": True})
    assert score_of(actions, tokens["ann"], challenge["id"]) == 1
    actions.api("PATCH", f"/bookmarks/{first}", tokens["ann"], json={"is_read": False})
    assert score_of(actions, tokens["ann"], challenge["id"]) == 0
    actions.api("PATCH", f"/bookmarks/{first}", tokens["ann"], json={"is_read": True})
    assert actions.api("DELETE", f"/bookmarks/{first}", tokens["ann"]).status_code == 200
    assert score_of(actions, tokens["ann"], challenge["id"]) == 0
    restored = actions.api("POST", f"/trash/bookmark/{first}/restore", tokens["ann"])
    assert restored.status_code == 200, restored.get_json()
    assert score_of(actions, tokens["ann"], challenge["id"]) == 1
    answer = board(actions, tokens["ann"], challenge["id"])
    assert [(e["username"], e["score"]) for e in answer["entries"]] == [("ann", 1)]
    assert answer["me"] == {"rank": 1, "score": 1}


def test_complete_tasks_with_a_tag_and_uncompleting(world):
    actions, tokens, _ = world
    challenge = create(actions, tokens["ann"],
                       {"type": "complete_tasks", "target": 2, "tag": "Work"})
    join(actions, tokens["ann"], challenge["id"])
    tagged = new(actions, tokens["ann"], "task", tags=["work"])
    plain = new(actions, tokens["ann"], "task")
    actions.api("POST", f"/tasks/{plain}/complete", tokens["ann"])
    assert score_of(actions, tokens["ann"], challenge["id"]) == 0
    actions.api("POST", f"/tasks/{tagged}/complete", tokens["ann"])
    assert score_of(actions, tokens["ann"], challenge["id"]) == 1
    actions.api("PATCH", f"/tasks/{tagged}", tokens["ann"], json={"status": "pending"})
    assert score_of(actions, tokens["ann"], challenge["id"]) == 0


def test_write_notes_save_items_and_streak_days(world):
    actions, tokens, clock = world
    notes = create(actions, tokens["ann"], {"type": "write_notes", "target": 5})
    saved = create(actions, tokens["ann"], {"type": "save_items", "target": 5})
    streak = create(actions, tokens["ann"], {"type": "streak_days", "target": 3})
    for c in (notes, saved, streak):
        join(actions, tokens["ann"], c["id"])
    note = new(actions, tokens["ann"], "note")
    new(actions, tokens["ann"], "task")
    new(actions, tokens["ann"], "bookmark")
    assert score_of(actions, tokens["ann"], notes["id"]) == 1
    assert score_of(actions, tokens["ann"], saved["id"]) == 3
    assert score_of(actions, tokens["ann"], streak["id"]) == 1
    later(actions, tokens, clock, 86400)
    new(actions, tokens["ann"], "note")
    assert score_of(actions, tokens["ann"], streak["id"]) == 2
    actions.api("DELETE", f"/notes/{note}", tokens["ann"])
    assert score_of(actions, tokens["ann"], notes["id"]) == 1
    assert score_of(actions, tokens["ann"], saved["id"]) == 3


def test_track_hours_is_refused_until_time_tracking_exists(world):
    actions, tokens, _ = world
    response = actions.api("POST", "/community/challenges", tokens["ann"], json={
        "title": "Hours", "start_date": START, "end_date": END,
        "rule": {"type": "track_hours", "target": 10}})
    assert response.status_code == 400
    assert "time tracking is not available yet" in response.get_json()["error"]


def test_the_period_is_in_the_creators_timezone(world):
    actions, tokens, clock = world
    zone = "Pacific/Auckland"
    assert actions.api("PATCH", "/auth/profile", tokens["ann"],
                       json={"timezone": zone}).status_code == 200
    local_now = datetime.datetime.fromtimestamp(clock.now(), zoneinfo.ZoneInfo(zone))
    day = (local_now.date() + datetime.timedelta(days=1)).isoformat()
    challenge = create(actions, tokens["ann"], {"type": "write_notes", "target": 1},
                       start_date=day, end_date=day)
    join(actions, tokens["ann"], challenge["id"])
    start = datetime.datetime.combine(datetime.date.fromisoformat(day), datetime.time(),
                                      zoneinfo.ZoneInfo(zone)).timestamp()
    later(actions, tokens, clock, start - clock.now() - 1)  # one second before local midnight
    new(actions, tokens["ann"], "note")
    assert score_of(actions, tokens["ann"], challenge["id"]) == 0
    clock.advance(1)  # local midnight: in the period (UTC is still the day before)
    new(actions, tokens["ann"], "note")
    assert score_of(actions, tokens["ann"], challenge["id"]) == 1
    later(actions, tokens, clock, 86400 - 1)  # the last second of the day
    new(actions, tokens["ann"], "note")
    assert score_of(actions, tokens["ann"], challenge["id"]) == 2
    clock.advance(1)  # the next local midnight: over, and the standings are frozen
    new(actions, tokens["ann"], "note")
    answer = actions.api("GET", f"/community/challenges/{challenge['id']}",
                         tokens["ann"]).get_json()
    assert answer["status"] == "finished"
    assert answer["my_score"] == 2


def test_ties_are_broken_by_who_reached_the_score_first(world):
    actions, tokens, clock = world
    challenge = create(actions, tokens["owner"], {"type": "write_notes", "target": 5})
    join(actions, tokens["owner"], challenge["id"])
    join(actions, tokens["ann"], challenge["id"])
    clock.advance(10)
    new(actions, tokens["ann"], "note")
    clock.advance(10)
    new(actions, tokens["owner"], "note")
    names = [e["username"] for e in board(actions, tokens["ann"], challenge["id"])["entries"]]
    assert names == ["ann", "owner"]
    clock.advance(10)
    new(actions, tokens["owner"], "note")
    answer = board(actions, tokens["ann"], challenge["id"], around="me")
    assert [e["username"] for e in answer["entries"]] == ["owner", "ann"]
    assert answer["me"] == {"rank": 2, "score": 1}
    assert [e["username"] for e in answer["around"]] == ["owner", "ann"]


def test_a_participant_who_leaves_is_off_the_board(world):
    actions, tokens, _ = world
    challenge = create(actions, tokens["owner"], {"type": "write_notes", "target": 5})
    join(actions, tokens["ann"], challenge["id"])
    new(actions, tokens["ann"], "note")
    assert board(actions, tokens["ann"], challenge["id"])["participants"] == 1
    assert actions.api("POST", f"/community/challenges/{challenge['id']}/leave",
                       tokens["ann"]).status_code == 200
    answer = board(actions, tokens["ann"], challenge["id"])
    assert answer == {"entries": [], "me": None, "participants": 0}
    mine = actions.api("GET", "/community/my-challenges", tokens["ann"]).get_json()
    assert mine == {"challenges": []}


def test_an_invitation_only_challenge_is_404_without_its_token(world):
    actions, tokens, _ = world
    challenge = create(actions, tokens["owner"], {"type": "write_notes", "target": 5},
                       visibility="invite")
    path = f"/community/challenges/{challenge['id']}"
    assert actions.api("GET", path, tokens["ann"]).status_code == 404
    assert join(actions, tokens["ann"], challenge["id"]).status_code == 404
    listed = actions.api("GET", "/community/challenges", tokens["ann"]).get_json()
    assert listed["challenges"] == []
    assert listed["pagination"]["total"] == 0
    assert actions.api("GET", "/community/challenges", tokens["owner"]).get_json()[
        "challenges"][0]["invite_token"] == challenge["invite_token"]
    invite = challenge["invite_token"]
    assert join(actions, tokens["ann"], challenge["id"], "wrong").status_code == 404
    assert join(actions, tokens["ann"], challenge["id"], invite).status_code == 200
    seen = actions.api("GET", path, tokens["ann"]).get_json()
    assert seen["joined"]
    assert "invite_token" not in seen


def test_redis_down_the_leaderboard_is_answered_from_the_database(world, monkeypatch):
    actions, tokens, clock = world
    challenge = create(actions, tokens["owner"], {"type": "write_notes", "target": 5})
    join(actions, tokens["owner"], challenge["id"])
    join(actions, tokens["ann"], challenge["id"])
    new(actions, tokens["ann"], "note")
    live = board(actions, tokens["ann"], challenge["id"], around="me")
    leaderboard = actions.app.extensions["trackeep"].capabilities.leaderboard

    def down(*args, **kwargs):
        raise CapabilityUnavailable("leaderboard")

    for name in ("top", "rank", "score", "set_score", "remove"):
        monkeypatch.setattr(leaderboard, name, down)
    assert board(actions, tokens["ann"], challenge["id"], around="me") == live
    clock.advance(5)
    new(actions, tokens["owner"], "note")  # the write still commits and scores
    new(actions, tokens["owner"], "note")
    answer = board(actions, tokens["ann"], challenge["id"], around="me")
    assert [e["username"] for e in answer["entries"]] == ["owner", "ann"]


ACTIONS = st.lists(st.tuples(st.sampled_from(["owner", "ann"]),
                             st.sampled_from(["note", "trash", "restore", "read", "unread"]),
                             st.integers(0, 5)), min_size=1, max_size=60)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ACTIONS)
def test_the_rebuilt_board_equals_the_live_one(world, steps):
    actions, tokens, clock = world
    challenge = create(actions, tokens["owner"], {"type": "save_items", "target": 5})
    reads = create(actions, tokens["owner"], {"type": "read_bookmarks", "target": 5})
    for token in tokens.values():
        join(actions, token, challenge["id"])
        join(actions, token, reads["id"])
    owned: dict[str, list[tuple[str, int]]] = {"owner": [], "ann": []}
    for who, what, pick in steps:
        clock.advance(pick % 2)
        token = tokens[who]
        mine = owned[who]
        if what == "note" or not mine:
            kind = "note" if pick % 2 else "bookmark"
            mine.append((kind, new(actions, token, kind)))
            continue
        kind, item = mine[pick % len(mine)]
        if what == "trash":
            actions.api("DELETE", f"/{kind}s/{item}", token)
        elif what == "restore":
            actions.api("POST", f"/trash/{kind}/{item}/restore", token)
        elif kind == "bookmark":
            actions.api("PATCH", f"/bookmarks/{item}", token, json={"is_read": what == "read"})
    state = actions.app.extensions["trackeep"]
    lb = state.capabilities.leaderboard
    names = [challenges.board_name(c["id"]) for c in (challenge, reads)]
    live = {name: lb.top(name, 100) for name in names}
    for name in names:  # and the table agrees with a fresh count
        for row in ChallengeParticipant.select().where(
                ChallengeParticipant.challenge == int(name.split(":")[1])):
            assert row.score == challenges.compute_score(row.challenge, row.user_id)
    report = state.capabilities.rebuild_leaderboards()
    assert report is not None
    assert {name: lb.top(name, 100) for name in names} == live


def test_the_standings_freeze_at_the_end_without_any_read_and_the_task_marks_it(world):
    actions, tokens, clock = world
    challenge = create(actions, tokens["ann"], {"type": "write_notes", "target": 5},
                       end_date=TODAY.isoformat())  # ends at midnight, within a session's day
    join(actions, tokens["ann"], challenge["id"])
    first = new(actions, tokens["ann"], "note")
    new(actions, tokens["ann"], "note")
    state = actions.app.extensions["trackeep"]
    task = next(d for d in state.periodic._due if d.name == "challenges finished")
    state.periodic.run_now(task.name, task.run)  # before the end: nothing to mark
    assert Challenge.get_by_id(challenge["id"]).finished_at is None
    ends_at = Challenge.get_by_id(challenge["id"]).ends_at
    clock.advance(ends_at - clock.now() + 1)
    # A write after the end, before any read marked it: the points stay as they were.
    assert actions.api("DELETE", f"/notes/{first}", tokens["ann"]).status_code == 200
    assert ChallengeParticipant.get(ChallengeParticipant.challenge == challenge["id"]).score == 2
    state.periodic.run_now(task.name, task.run)  # what the thread does every minute
    assert Challenge.get_by_id(challenge["id"]).finished_at == pytest.approx(clock.now())

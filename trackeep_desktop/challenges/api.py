"""The challenges API under ``/api/v1/community`` (the original Trackeep's paths).

Every write of a member's score happens inside the write that earned it (the change
pipeline's in-transaction subscriber); joining and leaving write the member's row here and
mirror it on the board after the commit. An invitation-only challenge is 404 to whoever is
not its creator, a member or the holder of its token (``?token=``).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, jsonify, request

from trackeep_desktop import challenges
from trackeep_desktop.clock import SystemClock
from trackeep_desktop.storage.db import database
from trackeep_desktop.web import openapi
from trackeep_desktop.web.auth import current_user, now, require_scope, state
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.openapi import api_doc, query_param
from trackeep_desktop.web.requests import json_body

log = logging.getLogger(__name__)
bp = Blueprint("challenges_api", __name__)

RULE = openapi.schema("ChallengeRule", {"type": "object", "properties": {
    "type": {"type": "string", "enum": list(challenges.RULE_TYPES)},
    "target": {"type": "integer", "minimum": 1},
    "tag": {"type": "string", "nullable": True},
}, "required": ["type", "target"]})
CHALLENGE = openapi.schema("Challenge", {"type": "object", "properties": {
    "id": {"type": "integer"}, "title": {"type": "string"}, "description": {"type": "string"},
    "creator_id": {"type": "integer"}, "start_date": {"type": "string", "format": "date"},
    "end_date": {"type": "string", "format": "date"}, "timezone": {"type": "string"},
    "visibility": {"type": "string", "enum": ["public", "invite"]}, "rule": RULE,
    "status": {"type": "string", "enum": ["upcoming", "active", "finished"]},
    "participants": {"type": "integer"}, "joined": {"type": "boolean"},
    "my_score": {"type": "integer", "nullable": True},
    "invite_token": {"type": "string", "description": "the creator's only"},
}})
CHALLENGE_INPUT = openapi.schema("ChallengeInput", {"type": "object", "properties": {
    "title": {"type": "string", "maxLength": 200}, "description": {"type": "string"},
    "start_date": {"type": "string", "format": "date"},
    "end_date": {"type": "string", "format": "date"},
    "visibility": {"type": "string", "enum": ["public", "invite"]}, "rule": RULE,
}, "required": ["title", "start_date", "end_date", "rule"]})
CHALLENGE_PAGE = openapi.schema("ChallengePage", {"type": "object", "properties": {
    "challenges": {"type": "array", "items": CHALLENGE},
    "pagination": {"type": "object", "properties": {
        "page": {"type": "integer"}, "limit": {"type": "integer"},
        "total": {"type": "integer"}}},
}})
CHALLENGE_LIST = openapi.schema("ChallengeList", {"type": "object", "properties": {
    "challenges": {"type": "array", "items": CHALLENGE}}})
ENTRY = openapi.schema("LeaderboardEntry", {"type": "object", "properties": {
    "rank": {"type": "integer"}, "user_id": {"type": "integer"},
    "username": {"type": "string"}, "score": {"type": "integer"},
    "reached_at": {"type": "integer", "description": "UTC seconds"}}})
LEADERBOARD = openapi.schema("Leaderboard", {"type": "object", "properties": {
    "entries": {"type": "array", "items": ENTRY},
    "me": {"type": "object", "nullable": True, "properties": {
        "rank": {"type": "integer"}, "score": {"type": "integer"}}},
    "around": {"type": "array", "items": ENTRY,
               "description": "with around=me: the user and the neighbours above and below"},
    "participants": {"type": "integer"},
}})
TOKEN = query_param("token", "the invitation token of an invitation-only challenge")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def _finish_due() -> None:
    """Freeze the challenges whose period is over (cheap: one indexed query)."""
    with database.atomic():
        challenges.finish_due(now())


def _visible(challenge_id: int):
    _finish_due()
    return challenges.visible_challenge(current_user().id, challenge_id,
                                        request.args.get("token"))


@bp.get("/community/challenges")
@api_doc(response=CHALLENGE_PAGE, params=[
    query_param("page", "page number, from 1", {"type": "integer", "minimum": 1}),
    query_param("limit", "per page, at most 100", {"type": "integer", "minimum": 1,
                                                   "maximum": 100})])
@require_scope(None)
def list_challenges():
    """Public challenges and the user's own, newest first."""
    page = _int_arg("page", 1, 1, 1_000_000)
    limit = _int_arg("limit", 20, 1, 100)
    _finish_due()
    user_id = current_user().id
    rows, total = challenges.list_public(user_id, page, limit)
    return jsonify({"challenges": [challenges.challenge_to_json(c, user_id, now=now())
                                   for c in rows],
                    "pagination": {"page": page, "limit": limit, "total": total}})


@bp.post("/community/challenges")
@api_doc(body=CHALLENGE_INPUT, response=CHALLENGE, status=201)
@require_scope(None)
def create_challenge():
    """Create a challenge; the period is in the creator's timezone.

    ``track_hours`` is refused (400): time tracking is not available yet."""
    data = json_body()
    user = current_user()
    with database.atomic():
        challenge = challenges.create_challenge(user, data, now=now())
    return jsonify(challenges.challenge_to_json(challenge, user.id, now=now())), 201


@bp.get("/community/challenges/<id:challenge_id>")
@api_doc(response=CHALLENGE, params=[TOKEN])
@require_scope(None)
def get_challenge(challenge_id: int):
    """One challenge."""
    challenge = _visible(challenge_id)
    return jsonify(challenges.challenge_to_json(challenge, current_user().id, now=now()))


@bp.post("/community/challenges/<id:challenge_id>/join")
@api_doc(response=CHALLENGE, params=[TOKEN], body_required=False)
@require_scope(None)
def join_challenge(challenge_id: int):
    """Join a challenge (an invitation-only one with its token)."""
    user_id = current_user().id
    challenge = _visible(challenge_id)
    with database.atomic():
        challenges.join(challenge, user_id, now=now())
    challenges.sync_member(state().capabilities.leaderboard, state().capabilities.pubsub,
                           challenge.id, user_id)
    return jsonify(challenges.challenge_to_json(challenge, user_id, now=now()))


@bp.post("/community/challenges/<id:challenge_id>/leave")
@api_doc(response=CHALLENGE, body_required=False)
@require_scope(None)
def leave_challenge(challenge_id: int):
    """Leave a challenge: the user's row and points leave its board."""
    user_id = current_user().id
    challenge = _visible(challenge_id)
    with database.atomic():
        challenges.leave(challenge, user_id)
    challenges.sync_member(state().capabilities.leaderboard, state().capabilities.pubsub,
                           challenge.id, user_id)
    return jsonify(challenges.challenge_to_json(challenge, user_id, now=now()))


@bp.get("/community/my-challenges")
@api_doc(response=CHALLENGE_LIST)
@require_scope(None)
def my_challenges():
    """The challenges the user takes part in."""
    _finish_due()
    user_id = current_user().id
    return jsonify({"challenges": [challenges.challenge_to_json(c, user_id, now=now())
                                   for c in challenges.my_challenges(user_id)]})


@bp.get("/community/challenges/<id:challenge_id>/leaderboard")
@api_doc(response=LEADERBOARD, params=[
    TOKEN, query_param("limit", "top N, at most 100", {"type": "integer", "minimum": 1,
                                                        "maximum": 100}),
    query_param("around", "me: add the user's neighbours", {"type": "string",
                                                            "enum": ["me"]})])
@require_scope(None)
def leaderboard(challenge_id: int):
    """The top N, the user's rank and score, and with around=me the neighbours.

    Answered from the database while the leaderboard capability is unavailable (Redis down)
    and for finished challenges: the participant table is the truth."""
    limit = _int_arg("limit", 100, 1, 100)
    around = request.args.get("around")
    if around not in (None, "", "me"):
        raise ApiError(400, "around is me")
    challenge = _visible(challenge_id)
    return jsonify(challenges.leaderboard_answer(state().capabilities.leaderboard, challenge,
                                                 current_user().id, limit, around == "me"))


#: Seconds between the periodic task's marks of the challenges whose period is over.
FINISH_INTERVAL = 60


def init_app(app: Flask, state_) -> None:
    """The challenges API, the rebuilder of their boards, and the periodic task that marks
    the challenges whose period is over as finished (reads do it too, at once)."""
    app.register_blueprint(bp, url_prefix="/api/v1")
    state_.capabilities.leaderboard_rebuilders.add("challenges", challenges.rebuild_boards)
    clock = app.config.get("CLOCK") or SystemClock()

    def finish() -> None:
        with database.atomic():
            finished = challenges.finish_due(clock.now())
        if finished:
            log.info("challenges finished: %s", ", ".join(map(str, finished)))

    state_.periodic.every(FINISH_INTERVAL, "challenges finished", finish)

"""Challenges (issue 11): periods, rules scored from each member's own activity, and
leaderboards mirrored from the ``challenge_participant`` table. Views in ``challenges.api``."""

from trackeep_desktop.challenges.service import (
    RULE_LABELS,
    RULE_TYPES,
    ChallengeInvalid,
    ChallengeNotFound,
    board_name,
    board_score,
    board_subscriber,
    challenge_to_json,
    compute_score,
    create_challenge,
    finish_due,
    join,
    leaderboard_answer,
    leave,
    list_public,
    my_challenges,
    rebuild_boards,
    score_subscriber,
    sync_member,
    visible_challenge,
)

__all__ = [
    "RULE_LABELS", "RULE_TYPES", "ChallengeInvalid", "ChallengeNotFound", "board_name",
    "board_score", "board_subscriber", "challenge_to_json", "compute_score", "create_challenge",
    "finish_due", "join", "leaderboard_answer", "leave", "list_public", "my_challenges",
    "rebuild_boards", "score_subscriber", "sync_member", "visible_challenge",
]

"""Challenges: creating and joining them, scoring members from their own activity, and the
leaderboards that mirror the scores.

Scores are computed by the application, from the database, inside the transaction of the
write that changed them (:func:`score_subscriber`, an in-transaction subscriber of the change
pipeline): each score is a count over the member's items *as they are now*, limited to the
challenge's period, so trashing an item, un-completing a task or un-reading a bookmark takes
its point back and restoring gives it back, with no bookkeeping of deltas that could drift.
The ``challenge_participant`` table is the truth; the leaderboard capability mirrors it after
the commit (:func:`board_subscriber`) and is rebuilt from it (:func:`rebuild_boards`).
"""

from __future__ import annotations

import datetime
import logging
import secrets
import time
import zoneinfo
from collections.abc import Callable, Iterable

import peewee

from trackeep_desktop.capabilities.base import Leaderboard, PubSub
from trackeep_desktop.capabilities.fallback import CapabilityUnavailable
from trackeep_desktop.errors import Invalid, NotFound
from trackeep_desktop.storage.changes import Change, ChangeSet
from trackeep_desktop.storage.models import (
    Bookmark,
    Challenge,
    ChallengeParticipant,
    File,
    ItemTag,
    Note,
    Tag,
    Task,
    User,
)

log = logging.getLogger(__name__)

RULE_TYPES = ("read_bookmarks", "complete_tasks", "write_notes", "save_items", "streak_days",
              "track_hours")
#: What the pages call each rule: (its name, the unit of its target).
RULE_LABELS = {
    "read_bookmarks": ("Read bookmarks", "bookmarks read"),
    "complete_tasks": ("Complete tasks", "tasks completed"),
    "write_notes": ("Write notes", "notes written"),
    "save_items": ("Save items", "items saved"),
    "streak_days": ("Keep a streak", "days in a row"),
    "track_hours": ("Track hours", "hours tracked"),
}
VISIBILITIES = ("public", "invite")
SCORED_TYPES = ("bookmark", "task", "note", "file")
#: Larger than any reached_at in seconds (year 2286), so MAX_TS - reached_at is positive.
MAX_TS = 10_000_000_000
TITLE_MAX = 200
TARGET_MAX = 1_000_000


class ChallengeInvalid(Invalid):
    """A challenge's input is not acceptable."""


class ChallengeNotFound(NotFound):
    """No such challenge, or one this user may not see."""


def board_name(challenge_id: int) -> str:
    """The leaderboard of a challenge (``tk:challenge:{id}:leaderboard`` in Redis)."""
    return f"challenge:{challenge_id}:leaderboard"


def board_member(user_id: int) -> str:
    """A member's name on the board, zero-padded so that the board's order among equal
    sorted-set scores (member descending) is the user id's numeric order."""
    return f"{user_id:012d}"


def board_score(score: int, reached_at: int) -> float:
    """The sorted-set score: ``score * 1e10 + (MAX_TS - reached_at)``.

    A higher score ranks first; between equal scores, the earlier ``reached_at`` gives the
    larger remainder and ranks first, which is the tie rule. ``reached_at`` is whole seconds
    so the sum stays exact in a double (exact up to 2**53, a score of about 900,000); within
    the same second the higher user id ranks first, as the database's fallback orders too.
    """
    return float(score) * 1e10 + float(MAX_TS - int(reached_at))


def _period(start_date: str, end_date: str, timezone: str) -> tuple[float, float]:
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    try:
        start = datetime.date.fromisoformat(start_date)
        end = datetime.date.fromisoformat(end_date)
    except (TypeError, ValueError):
        raise ChallengeInvalid("start_date and end_date are dates: YYYY-MM-DD",
                               field="start_date", reason="invalid") from None
    if end < start:
        raise ChallengeInvalid("end_date is before start_date", field="end_date",
                               reason="invalid")
    begin = datetime.datetime.combine(start, datetime.time(), zone).timestamp()
    after = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time(),
                                      zone).timestamp()
    return begin, after


def create_challenge(user: User, data: dict, *, now: float) -> Challenge:
    """Create a challenge from the API's body (see ``challenges.api``)."""
    title = data.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > TITLE_MAX:
        raise ChallengeInvalid(f"title is required, at most {TITLE_MAX} characters",
                               field="title", reason="invalid")
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 10_000:
        raise ChallengeInvalid("description is text", field="description", reason="invalid")
    visibility = data.get("visibility", "public")
    if visibility not in VISIBILITIES:
        raise ChallengeInvalid("visibility is public or invite", field="visibility",
                               reason="invalid")
    rule = data.get("rule")
    if not isinstance(rule, dict) or rule.get("type") not in RULE_TYPES:
        raise ChallengeInvalid(f"rule.type is one of {', '.join(RULE_TYPES)}", field="rule",
                               reason="invalid")
    if rule["type"] == "track_hours":
        raise ChallengeInvalid("track_hours cannot be scored: time tracking is not available "
                               "yet", field="rule", reason="unavailable")
    target = rule.get("target")
    if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= TARGET_MAX:
        raise ChallengeInvalid(f"rule.target is a whole number from 1 to {TARGET_MAX}",
                               field="rule", reason="invalid")
    tag = rule.get("tag")
    if tag is not None and (rule["type"] != "complete_tasks" or not isinstance(tag, str)
                            or not tag.strip() or len(tag) > 64):
        raise ChallengeInvalid("rule.tag is a tag name, for complete_tasks only", field="rule",
                               reason="invalid")
    start_date, end_date = data.get("start_date"), data.get("end_date")
    if not isinstance(start_date, str) or not isinstance(end_date, str):
        raise ChallengeInvalid("start_date and end_date are dates: YYYY-MM-DD",
                               field="start_date", reason="invalid")
    starts_at, ends_at = _period(start_date, end_date, user.timezone)
    return Challenge.create(
        creator=user.id, title=title.strip(), description=description,
        start_date=start_date, end_date=end_date, timezone=user.timezone,
        starts_at=starts_at, ends_at=ends_at, visibility=visibility,
        invite_token=secrets.token_urlsafe(24), rule_type=rule["type"], rule_target=target,
        rule_tag=tag.strip() if tag else None, created_at=now)


def is_member(challenge: Challenge, user_id: int) -> bool:
    return ChallengeParticipant.select().where(
        (ChallengeParticipant.challenge == challenge.id)
        & (ChallengeParticipant.user == user_id)).exists()


def visible_challenge(user_id: int, challenge_id: int, token: str | None = None) -> Challenge:
    """The challenge if this user may see it: public ones to everyone signed in, an
    invitation-only one to its creator, its members and holders of its token; otherwise
    :class:`ChallengeNotFound` (404, so its existence is not disclosed)."""
    challenge = Challenge.get_or_none(Challenge.id == challenge_id)
    if challenge is None:
        raise ChallengeNotFound("no such challenge")
    if (challenge.visibility == "public" or challenge.creator_id == user_id
            or (token and secrets.compare_digest(token, challenge.invite_token))
            or is_member(challenge, user_id)):
        return challenge
    raise ChallengeNotFound("no such challenge")


def finish_due(now: float) -> list[int]:
    """Mark the challenges whose period is over as finished: their standings are frozen
    (scoring skips them). Returns their ids."""
    due = [c.id for c in Challenge.select(Challenge.id).where(
        Challenge.finished_at.is_null() & (Challenge.ends_at <= now))]
    if due:
        Challenge.update(finished_at=now).where(Challenge.id.in_(due)).execute()
    return due


def list_public(user_id: int, page: int, limit: int) -> tuple[list[Challenge], int]:
    """Challenges this user may see in the list: public ones and their own, newest first."""
    mine = ChallengeParticipant.select(ChallengeParticipant.challenge).where(
        ChallengeParticipant.user == user_id)
    query = Challenge.select().where((Challenge.visibility == "public")
                                     | (Challenge.creator == user_id) | Challenge.id.in_(mine))
    total = query.count()
    rows = list(query.order_by(Challenge.created_at.desc(), Challenge.id.desc())
                .paginate(page, limit))
    return rows, total


def my_challenges(user_id: int) -> list[Challenge]:
    """The challenges this user takes part in."""
    return list(Challenge.select().join(ChallengeParticipant).where(
        ChallengeParticipant.user == user_id).order_by(Challenge.ends_at.desc()))


def join(challenge: Challenge, user_id: int, *, now: float) -> ChallengeParticipant:
    """Join (idempotent); the score starts from the activity already in the period."""
    existing = ChallengeParticipant.get_or_none(
        (ChallengeParticipant.challenge == challenge.id) & (ChallengeParticipant.user == user_id))
    if existing is not None:
        return existing
    if challenge.finished_at is not None or challenge.ends_at <= now:
        raise ChallengeInvalid("the challenge is finished", reason="finished")
    return ChallengeParticipant.create(challenge=challenge.id, user=user_id,
                                       score=compute_score(challenge, user_id),
                                       reached_at=int(now), joined_at=now)


def leave(challenge: Challenge, user_id: int) -> bool:
    """Leave: the member's row and points are gone from the board."""
    return bool(ChallengeParticipant.delete().where(
        (ChallengeParticipant.challenge == challenge.id)
        & (ChallengeParticipant.user == user_id)).execute())


def _in_period(field, challenge: Challenge):
    return (field >= challenge.starts_at) & (field < challenge.ends_at)


def compute_score(challenge: Challenge, user_id: int) -> int:
    """The member's score from the database: a count over their live items in the period."""
    rule = challenge.rule_type
    if rule == "read_bookmarks":
        return Bookmark.select().where(
            (Bookmark.user == user_id) & Bookmark.deleted_at.is_null() & Bookmark.is_read
            & _in_period(Bookmark.read_at, challenge)).count()
    if rule == "complete_tasks":
        query = Task.select().where(
            (Task.user == user_id) & Task.deleted_at.is_null() & (Task.status == "completed")
            & _in_period(Task.completed_at, challenge))
        if challenge.rule_tag:
            tagged = (ItemTag.select(ItemTag.item_id).join(Tag)
                      .where((Tag.user == user_id) & (ItemTag.item_type == "task")
                             & (peewee.fn.LOWER(Tag.name) == challenge.rule_tag.lower())))
            query = query.where(Task.id.in_(tagged))
        return query.count()
    if rule == "write_notes":
        return Note.select().where((Note.user == user_id) & Note.deleted_at.is_null()
                                   & _in_period(Note.created_at, challenge)).count()
    if rule == "save_items":
        return sum(model.select().where((model.user == user_id) & model.deleted_at.is_null()
                                        & _in_period(model.created_at, challenge)).count()
                   for model in (Bookmark, Note, Task, File))
    if rule == "streak_days":
        return _longest_streak(challenge, user_id)
    return 0


def _longest_streak(challenge: Challenge, user_id: int) -> int:
    """The longest run of consecutive days (in the challenge's timezone) inside the period
    with any activity: an item saved, a bookmark read or a task completed."""
    zone = zoneinfo.ZoneInfo(challenge.timezone)
    stamps: list[float] = []
    for model in (Bookmark, Note, Task, File):
        stamps += [row.created_at for row in model.select(model.created_at).where(
            (model.user == user_id) & model.deleted_at.is_null()
            & _in_period(model.created_at, challenge))]
    stamps += [row.read_at for row in Bookmark.select(Bookmark.read_at).where(
        (Bookmark.user == user_id) & Bookmark.deleted_at.is_null()
        & _in_period(Bookmark.read_at, challenge))]
    stamps += [row.completed_at for row in Task.select(Task.completed_at).where(
        (Task.user == user_id) & Task.deleted_at.is_null()
        & _in_period(Task.completed_at, challenge))]
    days = sorted({datetime.datetime.fromtimestamp(s, zone).date() for s in stamps})
    best = run = 0
    previous = None
    for day in days:
        run = run + 1 if previous is not None and (day - previous).days == 1 else 1
        best = max(best, run)
        previous = day
    return best


def _change_time(change: Change) -> int:
    item = change.item
    stamps = [getattr(item, name, None) for name in
              ("updated_at", "deleted_at", "read_at", "completed_at", "created_at")]
    known = [s for s in stamps if isinstance(s, int | float)]
    return int(max(known)) if known else int(time.time())


def rescore_user(user_id: int, when: int) -> list[ChallengeParticipant]:
    """Recompute this user's score in each unfinished challenge they take part in; a changed
    score gets ``reached_at = when``. A challenge whose period ended by ``when`` is frozen
    even before :func:`finish_due` marks it. Returns the rows that changed."""
    rows = list(ChallengeParticipant.select(ChallengeParticipant, Challenge).join(Challenge)
                .where((ChallengeParticipant.user == user_id)
                       & Challenge.finished_at.is_null() & (Challenge.ends_at > when)))
    changed = []
    for row in rows:
        score = compute_score(row.challenge, user_id)
        if score != row.score:
            row.score, row.reached_at = score, when
            ChallengeParticipant.update(score=score, reached_at=when).where(
                ChallengeParticipant.id == row.id).execute()
            changed.append(row)
    return changed


def score_subscriber() -> Callable[[Change], None]:
    """The in-transaction subscriber: a change to a bookmark, task, note or file rescores its
    owner's challenges in the same transaction, so the scores commit (or roll back) with the
    write that earned them."""

    def hook(change: Change) -> None:
        if change.item_type in SCORED_TYPES:
            rescore_user(change.user_id, _change_time(change))

    return hook


def sync_member(leaderboard: Leaderboard, pubsub: PubSub | None, challenge_id: int,
                user_id: int) -> None:
    """Mirror one member's row on the board (or remove them when they left) and announce it
    on ``challenges:{id}``. Skipped with a log line while the leaderboard is unavailable: the
    rebuilders run when Redis is back."""
    row = ChallengeParticipant.get_or_none((ChallengeParticipant.challenge == challenge_id)
                                           & (ChallengeParticipant.user == user_id))
    try:
        if row is None:
            leaderboard.remove(board_name(challenge_id), board_member(user_id))
        else:
            leaderboard.set_score(board_name(challenge_id), board_member(user_id),
                                  board_score(row.score, row.reached_at))
    except CapabilityUnavailable:
        log.info("leaderboard unavailable; challenge %s is rebuilt on recovery", challenge_id)
    if pubsub is not None:
        pubsub.publish(f"challenges:{challenge_id}", {
            "type": "score", "challenge_id": challenge_id, "user_id": user_id,
            "score": None if row is None else row.score,
            "reached_at": None if row is None else row.reached_at})


def board_subscriber(leaderboard: Leaderboard,
                     pubsub: PubSub | None) -> Callable[[ChangeSet], None]:
    """The after-commit subscriber: each changed user's rows are read back from the database
    and written to the boards (ZADD), so the boards mirror what committed."""

    def hook(change_set: ChangeSet) -> None:
        users = {c.user_id for c in change_set.changes if c.item_type in SCORED_TYPES}
        if not users:
            return
        rows = list(ChallengeParticipant.select(ChallengeParticipant.challenge,
                                                ChallengeParticipant.user)
                    .join(Challenge).where(ChallengeParticipant.user.in_(sorted(users))
                                           & Challenge.finished_at.is_null()))
        for row in rows:
            sync_member(leaderboard, pubsub, row.challenge_id, row.user_id)

    return hook


def rebuild_boards(leaderboard: Leaderboard) -> Iterable[str]:
    """The rebuilder: every unfinished challenge's board rewritten from the table."""
    names = []
    for challenge in Challenge.select(Challenge.id).where(Challenge.finished_at.is_null()):
        name = board_name(challenge.id)
        leaderboard.clear(name)
        for row in ChallengeParticipant.select().where(
                ChallengeParticipant.challenge == challenge.id):
            leaderboard.set_score(name, board_member(row.user_id),
                                  board_score(row.score, row.reached_at))
        names.append(name)
    return names


def _ordered(challenge_id: int):
    return (ChallengeParticipant.select(ChallengeParticipant, User.username).join(User)
            .where(ChallengeParticipant.challenge == challenge_id)
            .order_by(ChallengeParticipant.score.desc(), ChallengeParticipant.reached_at.asc(),
                      ChallengeParticipant.user.desc())
            .objects())  # flat rows: user_id stays the column, username beside it


def _entry(rank: int, row: ChallengeParticipant) -> dict:
    return {"rank": rank, "user_id": row.user_id, "username": row.username,
            "score": row.score, "reached_at": row.reached_at}


def leaderboard_answer(leaderboard: Leaderboard, challenge: Challenge, user_id: int,
                       limit: int, around_me: bool) -> dict:
    """The top ``limit``, the user's rank and score, and (``around_me``) the neighbours just
    above and below them.

    Unfinished challenges are read from the leaderboard capability (ZREVRANGE, ZREVRANK); a
    finished one, and any while the capability raises :class:`CapabilityUnavailable` (Redis
    down), are read from the database with ``ORDER BY score DESC, reached_at ASC`` (then
    user id descending, the board's own order): the table holds the truth, so an outage
    costs speed, not an answer.
    """
    participants = ChallengeParticipant.select().where(
        ChallengeParticipant.challenge == challenge.id).count()
    if challenge.finished_at is None:
        try:
            return _from_board(leaderboard, challenge, user_id, limit, around_me, participants)
        except CapabilityUnavailable:
            pass
    return _from_database(challenge, user_id, limit, around_me, participants)


def _rows_of(challenge_id: int, user_ids: list[int]) -> dict[int, ChallengeParticipant]:
    if not user_ids:
        return {}
    return {row.user_id: row for row in _ordered(challenge_id).where(
        ChallengeParticipant.user.in_(user_ids))}


def _from_board(leaderboard, challenge, user_id, limit, around_me, participants) -> dict:
    name = board_name(challenge.id)
    top = leaderboard.top(name, limit)
    ranked = [(index + 1, int(member)) for index, (member, _) in enumerate(top)]
    rank = leaderboard.rank(name, board_member(user_id))
    neighbours: list[tuple[int, int]] = []
    if rank is not None and around_me:
        start = max(1, rank - 1)
        near = leaderboard.top(name, 3 if rank > 1 else 2, offset=start - 1)
        neighbours = [(start + i, int(member)) for i, (member, _) in enumerate(near)]
    rows = _rows_of(challenge.id, [uid for _, uid in ranked + neighbours])
    entries = [_entry(r, rows[uid]) for r, uid in ranked if uid in rows]
    me = None
    if rank is not None:
        mine = rows.get(user_id) or _rows_of(challenge.id, [user_id]).get(user_id)
        me = {"rank": rank, "score": mine.score if mine else 0}
    answer = {"entries": entries, "me": me, "participants": participants}
    if around_me:
        answer["around"] = [_entry(r, rows[uid]) for r, uid in neighbours if uid in rows]
    return answer


def _from_database(challenge, user_id, limit, around_me, participants) -> dict:
    ordered = list(_ordered(challenge.id))
    entries = [_entry(i + 1, row) for i, row in enumerate(ordered[:limit])]
    me = None
    around: list[dict] = []
    for index, row in enumerate(ordered):
        if row.user_id == user_id:
            me = {"rank": index + 1, "score": row.score}
            around = [_entry(i + 1, ordered[i])
                      for i in range(max(0, index - 1), min(len(ordered), index + 2))]
            break
    answer = {"entries": entries, "me": me, "participants": participants}
    if around_me:
        answer["around"] = around
    return answer


def challenge_to_json(challenge: Challenge, user_id: int, *, now: float) -> dict:
    """A challenge as the API answers it; the invitation token only to its creator."""
    mine = ChallengeParticipant.get_or_none((ChallengeParticipant.challenge == challenge.id)
                                            & (ChallengeParticipant.user == user_id))
    out = {
        "id": challenge.id, "title": challenge.title, "description": challenge.description,
        "creator_id": challenge.creator_id, "start_date": challenge.start_date,
        "end_date": challenge.end_date, "timezone": challenge.timezone,
        "visibility": challenge.visibility,
        "rule": {"type": challenge.rule_type, "target": challenge.rule_target,
                 "tag": challenge.rule_tag},
        "status": ("finished" if challenge.finished_at is not None or challenge.ends_at <= now
                   else "upcoming" if now < challenge.starts_at else "active"),
        "participants": ChallengeParticipant.select().where(
            ChallengeParticipant.challenge == challenge.id).count(),
        "joined": mine is not None, "my_score": mine.score if mine else None,
    }
    if challenge.creator_id == user_id:
        out["invite_token"] = challenge.invite_token
    return out

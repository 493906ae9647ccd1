"""Time entries: the one running timer per user, manual entries with any past start and end,
edits, deletes (restorable) and the entries as the API answers them.

Every write runs in :func:`~trackeep_desktop.items.write_transaction` and records its change
(``time_entry``) with :func:`~trackeep_desktop.storage.changes.record_change`, so the user's
windows hear of it, the content version moves and challenges scored by ``track_hours`` are
rescored in the same transaction. Times are UTC epoch seconds inside, ISO 8601 in JSON.

**One running timer.** Starting a timer stops the user's running one at the same moment,
in the same transaction (the answer names it in ``stopped``). On PostgreSQL the user's row is
locked first, so two starts at once are serialized; SQLite serializes writers itself; the
partial unique index ``time_entry_one_running`` is the last word either way.

**Overlaps** are allowed: an entry whose time intersects another of the user's entries is
answered with ``overlaps: true`` (computed when read, over the entries around it).
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any

import peewee

from trackeep_desktop import errors, items
from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.items.types import write_transaction
from trackeep_desktop.storage.changes import record_change
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import MAX_ID, Bookmark, ItemTag, Note, Task, TimeEntry, User

#: The item type of time entries in ``item_tag`` and in change events.
ITEM_TYPE = "time_entry"
DESCRIPTION_MAX = 2000
SOURCE_MAX = 32
RATE_MAX = 1_000_000.0
#: How far in the future a start or end may be (clock skew between a client and the server).
FUTURE_SLACK = 300.0
#: The links an entry may have, at most one of them: field -> (model, item type).
LINKS: dict[str, tuple[Any, str]] = {"task_id": (Task, "task"),
                                     "bookmark_id": (Bookmark, "bookmark"),
                                     "note_id": (Note, "note")}
FIELDS = ("description", "start_time", "end_time", "billable", "hourly_rate", "tags",
          "source", *LINKS)


class TimeEntryInvalid(errors.Invalid):
    """A time entry's input is not acceptable."""

    reason = "invalid"


class TimeEntryNotFound(errors.NotFound):
    """No such time entry for this user (other users' entries are not found either)."""


class TimeEntryConflict(errors.Conflict):
    """The change clashes with the entry's state (stopping an entry that is not running)."""


# ------------------------------------------------------------------------------- parsing


def user_zone(user: User) -> zoneinfo.ZoneInfo:
    """The user's timezone (UTC when the stored name is unknown here)."""
    try:
        return zoneinfo.ZoneInfo(user.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def parse_moment(value: Any, field: str) -> float:
    """An ISO 8601 date-time (``2026-03-29T01:30:00+01:00``; naive means UTC) as epoch
    seconds, from 1970 to 9999."""
    if not isinstance(value, str) or not value.strip():
        raise TimeEntryInvalid(f"{field} must be an ISO 8601 date-time, like "
                               "2026-05-01T10:00:00Z.", field)
    try:
        moment = items.parse_time(value, field)
    except items.InvalidInput:
        raise TimeEntryInvalid(f"{field} must be an ISO 8601 date-time, like "
                               "2026-05-01T10:00:00Z.", field) from None
    except (OverflowError, ValueError):
        raise TimeEntryInvalid(f"{field} is out of range.", field, "out_of_range") from None
    if moment is None or not math.isfinite(moment) or not 0 <= moment < 253402300800:
        raise TimeEntryInvalid(f"{field} is out of range.", field, "out_of_range")
    return moment


def day_start(day: dt.date, zone: zoneinfo.ZoneInfo) -> float:
    """The epoch seconds of ``day``'s midnight in ``zone``."""
    return dt.datetime.combine(day, dt.time(), zone).timestamp()


def parse_range_bound(value: str | None, field: str, zone: zoneinfo.ZoneInfo, *,
                      end: bool) -> float | None:
    """A list or report bound: a date (``2026-03-29``, a whole day in the user's timezone: an
    ``end`` bound is the midnight after it) or a date-time; None when not given."""
    if value is None or value == "":
        return None
    text = value.strip()
    if len(text) == 10:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise TimeEntryInvalid(f"{field} must be a date (YYYY-MM-DD) or an ISO 8601 "
                                   "date-time.", field) from None
        if end:
            if day == dt.date.max:
                raise TimeEntryInvalid(f"{field} is out of range.", field, "out_of_range")
            day += dt.timedelta(days=1)
        return day_start(day, zone)
    return parse_moment(text, field)


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TimeEntryInvalid("description must be a string.", "description")
    value = value.strip()
    if len(value) > DESCRIPTION_MAX:
        raise TimeEntryInvalid(f"description may have at most {DESCRIPTION_MAX} characters.",
                               "description", "too_long")
    return value


def _source(value: Any) -> str:
    if value is None or value == "":
        return "api"
    if not isinstance(value, str) or len(value.strip()) > SOURCE_MAX:
        raise TimeEntryInvalid(f"source is a short name (at most {SOURCE_MAX} characters).",
                               "source")
    return value.strip() or "api"


def _billable(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise TimeEntryInvalid("billable must be true or false.", "billable")
    return value


def _rate(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TimeEntryInvalid("hourly_rate must be a number.", "hourly_rate")
    rate = float(value)
    if not math.isfinite(rate) or not 0 <= rate <= RATE_MAX:
        raise TimeEntryInvalid(f"hourly_rate must be from 0 to {RATE_MAX:.0f}.", "hourly_rate",
                               "out_of_range")
    return rate


def _link(user_id: int, field: str, value: Any) -> int | None:
    """The id of one of the user's own live items, or None; another user's item, an item in
    the trash and an unknown id are all the same 400 (their existence is not disclosed)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TimeEntryInvalid(f"{field} must be the id of one of your items.", field)
    model, kind = LINKS[field]
    if not 0 < value <= MAX_ID or not model.select().where(
            (model.id == value) & (model.user == user_id) & model.deleted_at.is_null()).exists():
        raise TimeEntryInvalid(f"{field} must be the id of one of your {kind}s.", field,
                               "not_found")
    return value


def _check_fields(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TimeEntryInvalid("The request body must be a JSON object.")
    linked = [field for field in LINKS if data.get(field) is not None]
    if len(linked) > 1:
        raise TimeEntryInvalid("An entry links to one item at most: give one of task_id, "
                               "bookmark_id and note_id.", linked[1], "not_allowed")
    return data


def _check_times(start: float, end: float | None, now: float) -> None:
    if start > now + FUTURE_SLACK:
        raise TimeEntryInvalid("start_time is in the future.", "start_time", "in_future")
    if end is not None:
        if end <= start:
            raise TimeEntryInvalid("end_time must be after start_time.", "end_time",
                                   "before_start")
        if end > now + FUTURE_SLACK:
            raise TimeEntryInvalid("end_time is in the future.", "end_time", "in_future")


# --------------------------------------------------------------------------------- reads


def get_entry(user_id: int, entry_id: Any) -> TimeEntry:
    """One of the user's live entries, or :class:`TimeEntryNotFound`."""
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or not 0 < entry_id <= MAX_ID:
        raise TimeEntryNotFound("time entry not found")
    entry = TimeEntry.get_or_none((TimeEntry.id == entry_id) & (TimeEntry.user == user_id)
                                  & TimeEntry.deleted_at.is_null())
    if entry is None:
        raise TimeEntryNotFound("time entry not found")
    return entry


def running_entry(user_id: int) -> TimeEntry | None:
    """The user's running entry, if any."""
    return TimeEntry.get_or_none((TimeEntry.user == user_id) & TimeEntry.end_time.is_null()
                                 & TimeEntry.deleted_at.is_null())


def in_range(user_id: int, start: float | None, end: float | None):
    """The user's live entries that intersect ``[start, end)`` (either bound may be None),
    running ones reaching to now; newest start first."""
    query = TimeEntry.select().where((TimeEntry.user == user_id)
                                     & TimeEntry.deleted_at.is_null())
    if end is not None:
        query = query.where(TimeEntry.start_time < end)
    if start is not None:
        query = query.where(TimeEntry.end_time.is_null() | (TimeEntry.end_time > start))
    return query.order_by(TimeEntry.start_time.desc(), TimeEntry.id.desc())


def list_entries(user_id: int, *, start: float | None = None, end: float | None = None,
                 is_running: bool | None = None, task_id: int | None = None,
                 limit: int = 200, offset: int = 0) -> tuple[list[TimeEntry], int]:
    """A page of the user's entries in a range (see :func:`in_range`) and how many match."""
    query = in_range(user_id, start, end)
    if is_running is not None:
        query = query.where(TimeEntry.end_time.is_null() if is_running
                            else TimeEntry.end_time.is_null(False))
    if task_id is not None:
        query = query.where(TimeEntry.task == task_id)
    return list(query.limit(limit).offset(offset)), query.count()


def duration_of(entry: TimeEntry, now: float) -> float:
    """Seconds tracked: to the end, or to now for a running entry."""
    end = entry.end_time if entry.end_time is not None else max(now, entry.start_time)
    return max(0.0, end - entry.start_time)


def amount_of(entry: TimeEntry, now: float) -> float:
    """What a billable entry earns at its hourly rate (0 otherwise), in hundredths."""
    if not entry.billable or not entry.hourly_rate:
        return 0.0
    return round(duration_of(entry, now) / 3600 * entry.hourly_rate, 2)


def overlapping_ids(user_id: int, entries: list[TimeEntry], now: float) -> set[int]:
    """The ids among ``entries`` whose time intersects another live entry of the user's: one
    query for the entries around them, then one sweep in start order."""
    if not entries:
        return set()
    low = min(e.start_time for e in entries)
    high = max(e.end_time if e.end_time is not None else now for e in entries)
    around = list(in_range(user_id, low, high))
    spans = sorted((e.start_time, e.end_time if e.end_time is not None
                    else max(now, e.start_time), e.id) for e in around)
    found: set[int] = set()
    active: list[tuple[float, int]] = []  # (end, id) of the spans begun and not yet ended
    for start, end, entry_id in spans:
        while active and active[0][0] <= start:
            heapq.heappop(active)
        if active:
            found.add(entry_id)
            found.update(other for _, other in active)
        if end > start:
            heapq.heappush(active, (end, entry_id))
    return found


def _titles(user_id: int, entries: list[TimeEntry]) -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], str] = {}
    for field, (model, kind) in LINKS.items():
        ids = {getattr(e, field) for e in entries if getattr(e, field) is not None}
        if not ids:
            continue
        fallback = model.url if model is Bookmark else model.title  # an untitled bookmark
        for row in model.select(model.id, model.title, fallback.alias("fallback")).where(
                (model.user == user_id) & model.id.in_(sorted(ids))).dicts():
            out[(kind, row["id"])] = row["title"] or row["fallback"] or ""
    return out


def entries_json(user_id: int, entries: list[TimeEntry], now: float) -> list[dict]:
    """Entries as the API answers them (one query for the tags, one per link type for the
    titles, one for the overlaps)."""
    entries = list(entries)
    tags = items.tags_for(user_id, ITEM_TYPE, [e.id for e in entries])
    titles = _titles(user_id, entries)
    overlaps = overlapping_ids(user_id, [e for e in entries if e.deleted_at is None], now)
    out = []
    for entry in entries:
        linked = next(((kind, getattr(entry, field)) for field, (_, kind) in LINKS.items()
                       if getattr(entry, field) is not None), None)
        out.append({
            "id": entry.id,
            "user_id": entry.user_id,
            "description": entry.description,
            "start_time": iso_time(entry.start_time),
            "end_time": iso_time(entry.end_time),
            "duration": round(duration_of(entry, now)),
            "is_running": entry.end_time is None,
            "billable": entry.billable,
            "hourly_rate": entry.hourly_rate,
            "amount": amount_of(entry, now),
            "tags": [tag.name for tag in tags[entry.id]],
            "task_id": entry.task_id,
            "bookmark_id": entry.bookmark_id,
            "note_id": entry.note_id,
            "linked": None if linked is None else {
                "type": linked[0], "id": linked[1], "title": titles.get(linked, "")},
            "source": entry.source,
            "overlaps": entry.id in overlaps,
            "created_at": iso_time(entry.created_at),
            "updated_at": iso_time(entry.updated_at),
        })
    return out


def entry_json(user_id: int, entry: TimeEntry, now: float) -> dict:
    """One entry as the API answers it."""
    return entries_json(user_id, [entry], now)[0]


# -------------------------------------------------------------------------------- writes


def _lock_user(user_id: int) -> None:
    """Serialize this user's timer writes on PostgreSQL (SQLite's writers are serialized by
    its ``BEGIN IMMEDIATE``)."""
    if getattr(database.obj, "for_update", False):
        list(User.select(User.id).where(User.id == user_id).for_update())


def _stop(entry: TimeEntry, at: float, now: float) -> TimeEntry:
    entry.end_time = max(at, entry.start_time + 1)  # an entry lasts a second at least
    entry.updated_at = now
    entry.save()
    record_change(entry.user_id, ITEM_TYPE, "updated", entry)
    return entry


def create_entry(user: User, data: Any, *, now: float) -> tuple[TimeEntry, TimeEntry | None]:
    """Create an entry from the API's body; returns ``(entry, stopped)``.

    With ``start_time`` and ``end_time`` it is a finished entry (any past time; the running
    timer is left alone). Without ``end_time`` it is the running timer, from ``start_time`` or
    now, and the user's running timer, if any, is stopped at that moment (``stopped``)."""
    data = _check_fields(data)
    if data.get("end_time") is not None and data.get("start_time") is None:
        raise TimeEntryInvalid("end_time needs a start_time.", "start_time", "required")
    start = now if data.get("start_time") is None else parse_moment(data["start_time"],
                                                                     "start_time")
    end = None if data.get("end_time") is None else parse_moment(data["end_time"], "end_time")
    _check_times(start, end, now)
    fields = {
        "description": _description(data.get("description")),
        "billable": _billable(data.get("billable")),
        "hourly_rate": _rate(data.get("hourly_rate")),
        "source": _source(data.get("source")),
    }
    tags = items.parse_tag_names(data.get("tags") or [])
    stopped = None
    with write_transaction():
        links = {field[:-3]: _link(user.id, field, data.get(field)) for field in LINKS}
        if end is None:
            _lock_user(user.id)
            current = running_entry(user.id)
            if current is not None:
                stopped = _stop(current, start, now)
        try:
            with database.atomic():  # a savepoint: a start racing this one (the index)
                entry = TimeEntry.create(user=user.id, start_time=start, end_time=end,
                                         created_at=now, updated_at=now, **fields, **links)
        except peewee.IntegrityError:
            raise TimeEntryConflict("Another timer was started at the same moment; try "
                                    "again.", reason="running") from None
        if tags:
            items.set_tags(user.id, ITEM_TYPE, entry.id, tags, now, new_item=True)
        record_change(user.id, ITEM_TYPE, "created", entry)
    return entry, stopped


def update_entry(user_id: int, entry_id: int, data: Any, *, now: float) -> TimeEntry:
    """Change the fields sent (``null`` clears a link, a rate or the description). A running
    entry may get an ``end_time`` (then it is stopped); a finished one cannot lose its own."""
    data = _check_fields(data)
    if "tags" in data:
        items.parse_tag_names(data["tags"])  # refused before anything is written
    with write_transaction():
        entry = get_entry(user_id, entry_id)
        if "start_time" in data:
            entry.start_time = parse_moment(data["start_time"], "start_time")
        if "end_time" in data:
            if data["end_time"] is None:
                if entry.end_time is not None:
                    raise TimeEntryInvalid("A finished entry keeps an end_time: start a new "
                                           "timer instead.", "end_time", "required")
            else:
                entry.end_time = parse_moment(data["end_time"], "end_time")
        _check_times(entry.start_time, entry.end_time, now)
        if "description" in data:
            entry.description = _description(data["description"])
        if "billable" in data:
            entry.billable = _billable(data["billable"])
        if "hourly_rate" in data:
            entry.hourly_rate = _rate(data["hourly_rate"])
        if "source" in data:
            entry.source = _source(data["source"])
        if any(field in data for field in LINKS):
            for field in LINKS:
                value = data.get(field)
                if value is None or value != getattr(entry, field):  # kept: not checked again
                    setattr(entry, field[:-3], _link(user_id, field, value))
        entry.updated_at = now
        entry.save()
        if "tags" in data:
            items.set_tags(user_id, ITEM_TYPE, entry.id, items.parse_tag_names(data["tags"]),
                           now)
        record_change(user_id, ITEM_TYPE, "updated", entry)
    return entry


def stop_entry(user_id: int, entry_id: int, *, now: float) -> TimeEntry:
    """Stop a running entry now; one that is not running is a :class:`TimeEntryConflict`."""
    with write_transaction():
        entry = get_entry(user_id, entry_id)
        if entry.end_time is not None:
            raise TimeEntryConflict("This entry is not running.", reason="not_running")
        return _stop(entry, now, now)


def stop_running(user_id: int, *, now: float) -> TimeEntry | None:
    """Stop the user's running entry, if any; returns it."""
    with write_transaction():
        _lock_user(user_id)
        entry = running_entry(user_id)
        return None if entry is None else _stop(entry, now, now)


def delete_entry(user_id: int, entry_id: int, *, now: float) -> TimeEntry:
    """Delete an entry (a running one is stopped first); :func:`restore_entry` brings it
    back until it is purged."""
    with write_transaction():
        entry = get_entry(user_id, entry_id)
        if entry.end_time is None:
            entry.end_time = max(now, entry.start_time + 1)
        entry.deleted_at = now
        entry.updated_at = now
        entry.save()
        record_change(user_id, ITEM_TYPE, "deleted", entry)
    return entry


def _deleted(user_id: int, entry_id: Any) -> TimeEntry:
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or not 0 < entry_id <= MAX_ID:
        raise TimeEntryNotFound("time entry not found among the deleted ones")
    entry = TimeEntry.get_or_none((TimeEntry.id == entry_id) & (TimeEntry.user == user_id)
                                  & TimeEntry.deleted_at.is_null(False))
    if entry is None:
        raise TimeEntryNotFound("time entry not found among the deleted ones")
    return entry


def restore_entry(user_id: int, entry_id: Any, *, now: float) -> TimeEntry:
    """Bring a deleted entry back."""
    with write_transaction():
        entry = _deleted(user_id, entry_id)
        entry.deleted_at = None
        entry.updated_at = now
        entry.save()
        record_change(user_id, ITEM_TYPE, "restored", entry)
    return entry


def deleted_entries(user_id: int) -> list[TimeEntry]:
    """The user's deleted entries, last deleted first."""
    return list(TimeEntry.select().where((TimeEntry.user == user_id)
                                         & TimeEntry.deleted_at.is_null(False))
                .order_by(TimeEntry.deleted_at.desc(), TimeEntry.id.desc()))


def purge_entries(entries: Iterable[TimeEntry]) -> int:
    """Delete entries for good, with their tag links (inside the caller's transaction)."""
    purged = 0
    for entry in entries:
        record_change(entry.user_id, ITEM_TYPE, "purged", entry, event=False)
        ItemTag.delete().where((ItemTag.item_type == ITEM_TYPE)
                               & (ItemTag.item_id == entry.id)).execute()
        entry.delete_instance()
        purged += 1
    return purged


def purge_entry(user_id: int, entry_id: Any) -> int:
    """Delete one of the user's deleted entries for good."""
    with write_transaction():
        return purge_entries([_deleted(user_id, entry_id)])


def purge_expired(now: float, max_age: float) -> int:
    """Purge the entries deleted ``max_age`` seconds ago or more (the trash's retention)."""
    if not max_age or max_age <= 0:
        return 0
    with write_transaction():
        return purge_entries(list(TimeEntry.select().where(
            TimeEntry.deleted_at.is_null(False) & (TimeEntry.deleted_at <= now - max_age))))

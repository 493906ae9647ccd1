"""What the tracked time adds up to: totals per day (in the user's timezone), per tag and per
linked task for a range, the week view's grid, the original client's stats, and CSV.

A day is the user's local calendar day: an entry across midnight counts on both sides of
it, and a day with a daylight-saving change has its real length (23 or 25 hours), because
each piece is cut at the local midnights :mod:`zoneinfo` gives. An entry with several tags
counts in full under each of them; one without tags counts under ``null``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections.abc import Iterator

from trackeep_desktop import items
from trackeep_desktop.storage.models import Task, TimeEntry, User

from .entries import (
    ITEM_TYPE,
    TimeEntryInvalid,
    amount_of,
    day_start,
    duration_of,
    entries_json,
    in_range,
    user_zone,
)

#: The longest range a report covers, in days.
REPORT_MAX_DAYS = 400


def split_by_day(start: float, end: float, zone: zoneinfo.ZoneInfo) -> list[tuple[dt.date,
                                                                                   float]]:
    """``[(local date, seconds)]`` of ``[start, end)`` cut at each local midnight."""
    out: list[tuple[dt.date, float]] = []
    at = start
    while at < end:
        day = dt.datetime.fromtimestamp(at, zone).date()
        midnight = day_start(day + dt.timedelta(days=1), zone)
        piece_end = min(end, midnight)
        out.append((day, piece_end - at))
        at = piece_end
    return out


def parse_day(value: str | None, field: str, default: dt.date) -> dt.date:
    """A report's bound: a date ``YYYY-MM-DD``, or ``default`` when not given."""
    if value is None or value == "":
        return default
    try:
        return dt.date.fromisoformat(value.strip()) if len(value.strip()) == 10 else _bad(field)
    except ValueError:
        return _bad(field)


def _bad(field: str) -> dt.date:
    raise TimeEntryInvalid(f"{field} must be a date: YYYY-MM-DD.", field)


def week_of(moment: float, zone: zoneinfo.ZoneInfo) -> tuple[dt.date, dt.date]:
    """Monday and Sunday of the local week holding ``moment``."""
    today = dt.datetime.fromtimestamp(moment, zone).date()
    monday = today - dt.timedelta(days=today.weekday())
    return monday, monday + dt.timedelta(days=6)


def check_days(first: dt.date, last: dt.date) -> None:
    """A report's range: ``last`` not before ``first``, at most :data:`REPORT_MAX_DAYS`."""
    if last < first:
        raise TimeEntryInvalid("end_date is before start_date.", "end_date", "before_start")
    if (last - first).days + 1 > REPORT_MAX_DAYS:
        raise TimeEntryInvalid(f"A report covers at most {REPORT_MAX_DAYS} days.", "end_date",
                               "out_of_range")
    if last >= dt.date.max - dt.timedelta(days=1) or first <= dt.date.min:
        raise TimeEntryInvalid("The range is out of range.", "end_date", "out_of_range")


def report(user: User, first: dt.date, last: dt.date, *, now: float) -> dict:
    """The totals of ``first`` to ``last`` (local dates, inclusive): per day, per tag and per
    linked task, each tag and task with its seconds per day (the week view's grid)."""
    check_days(first, last)
    zone = user_zone(user)
    low, high = day_start(first, zone), day_start(last + dt.timedelta(days=1), zone)
    entries = list(in_range(user.id, low, high))
    tags = items.tags_for(user.id, ITEM_TYPE, [e.id for e in entries])
    dates = [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    per_day = dict.fromkeys(dates, 0.0)
    per_tag: dict[str | None, dict[str, float]] = {}
    per_task: dict[int | None, dict[str, float]] = {}
    billable = amount = 0.0
    for entry in entries:
        end = entry.end_time if entry.end_time is not None else max(now, entry.start_time)
        start, end = max(entry.start_time, low), min(end, high)
        if end <= start:
            continue
        pieces = split_by_day(start, end, zone)
        names: list[str | None] = [tag.name for tag in tags[entry.id]] or [None]
        for day, seconds in pieces:
            key = day.isoformat()
            per_day[key] = per_day.get(key, 0.0) + seconds
            for name in names:
                row = per_tag.setdefault(name, {})
                row[key] = row.get(key, 0.0) + seconds
            row = per_task.setdefault(entry.task_id, {})
            row[key] = row.get(key, 0.0) + seconds
        if entry.billable:
            billable += end - start
            whole = duration_of(entry, now)
            amount += amount_of(entry, now) * ((end - start) / whole if whole else 0)
    titles = {task.id: task.title for task in Task.select(Task.id, Task.title).where(
        (Task.user == user.id) & Task.id.in_([k for k in per_task if k is not None]))}

    def grid(row: dict[str, float]) -> dict:
        return {"seconds": round(sum(row.values())),
                "days": {day: round(row[day]) for day in dates if day in row}}

    return {
        "start_date": first.isoformat(), "end_date": last.isoformat(), "timezone": zone.key,
        "total_seconds": round(sum(per_day.values())),
        "billable_seconds": round(billable), "billable_amount": round(amount, 2),
        "days": [{"date": day, "seconds": round(per_day[day])} for day in dates],
        "tags": sorted(({"tag": name, **grid(row)} for name, row in per_tag.items()),
                       key=lambda r: (r["tag"] is None, -r["seconds"], r["tag"] or "")),
        "tasks": sorted(({"task_id": task_id, "title": titles.get(task_id, "") if task_id
                          else None, **grid(row)} for task_id, row in per_task.items()),
                        key=lambda r: (r["task_id"] is None, -r["seconds"], r["task_id"] or 0)),
    }


def stats(user: User, start: float | None, end: float | None, *, now: float) -> dict:
    """The original client's figures over the entries in a range (all when unbounded):
    ``total_time_seconds`` (running entries count to now), ``total_entries``,
    ``running_entries``, ``billable_time_seconds`` and ``total_billable_amount``."""
    entries = list(in_range(user.id, start, end))
    billable = [e for e in entries if e.billable]
    return {
        "total_time_seconds": round(sum(duration_of(e, now) for e in entries)),
        "total_entries": len(entries),
        "running_entries": sum(1 for e in entries if e.end_time is None),
        "billable_time_seconds": round(sum(duration_of(e, now) for e in billable)),
        "total_billable_amount": round(sum(amount_of(e, now) for e in billable), 2),
    }


CSV_COLUMNS = ("id", "date", "start_time", "end_time", "duration_seconds", "hours",
               "description", "tags", "linked_type", "linked_id", "linked_title", "billable",
               "hourly_rate", "amount", "overlaps")


def _safe_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (``=``, ``+``, ``-``, ``@`` first)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_csv(user: User, start: float | None, end: float | None, *,
               now: float) -> Iterator[str]:
    """The entries of a range as CSV, oldest first, a header line first; the date is the
    local date of the start, the times are ISO 8601 UTC."""
    zone = user_zone(user)
    entries = list(reversed(list(in_range(user.id, start, end))))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for offset in range(0, len(entries), 500):
        chunk = entries[offset:offset + 500]
        buffer.seek(0)
        buffer.truncate()
        by_id: dict[int, TimeEntry] = {e.id: e for e in chunk}
        for row in entries_json(user.id, chunk, now):
            linked = row["linked"] or {}
            source = by_id[row["id"]]
            writer.writerow([
                row["id"], dt.datetime.fromtimestamp(source.start_time, zone).date().isoformat(),
                row["start_time"], row["end_time"] or "", row["duration"],
                f"{row['duration'] / 3600:.2f}", _safe_cell(row["description"]),
                _safe_cell(";".join(row["tags"])), linked.get("type", ""),
                linked.get("id", ""), _safe_cell(linked.get("title", "")),
                "yes" if row["billable"] else "no",
                "" if row["hourly_rate"] is None else row["hourly_rate"],
                f"{row['amount']:.2f}", "yes" if row["overlaps"] else "no"])
        yield buffer.getvalue()

"""The time-entries API under ``/api/v1/time-entries``, on the original Trackeep's paths and
field names (its mobile app calls ``GET/POST /time-entries`` and ``/time-entries/{id}/stop``),
plus the reports, the CSV export, the running timer and restoring deleted entries.

API keys: ``read`` covers the GETs; writes need ``tasks:write`` (time is tracked on tasks).
"""

from __future__ import annotations

import datetime as dt
import logging

import peewee
from flask import Blueprint, Flask, Response, jsonify, request, stream_with_context

from trackeep_desktop import time_tracking
from trackeep_desktop.clock import SystemClock
from trackeep_desktop.web import openapi
from trackeep_desktop.web.auth import current_user, now, require_scope
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.openapi import api_doc, query_param
from trackeep_desktop.web.requests import json_body

log = logging.getLogger(__name__)

bp = Blueprint("time_api", __name__)
#: Seconds between purges of deleted entries past the retention (as the trash's sweep).
PURGE_INTERVAL = 3600

WRITE_SCOPE = "tasks:write"
LIST_MAX = 1000

TIME_ENTRY = openapi.schema("TimeEntry", {"type": "object", "properties": {
    "id": {"type": "integer"}, "user_id": {"type": "integer"},
    "description": {"type": "string"},
    "start_time": {"type": "string", "format": "date-time"},
    "end_time": {"type": "string", "format": "date-time", "nullable": True},
    "duration": {"type": "integer", "description": "seconds (a running entry: so far)"},
    "is_running": {"type": "boolean"}, "billable": {"type": "boolean"},
    "hourly_rate": {"type": "number", "nullable": True},
    "amount": {"type": "number", "description": "billable amount at the hourly rate"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "task_id": {"type": "integer", "nullable": True},
    "bookmark_id": {"type": "integer", "nullable": True},
    "note_id": {"type": "integer", "nullable": True},
    "linked": {"type": "object", "nullable": True, "properties": {
        "type": {"type": "string", "enum": ["task", "bookmark", "note"]},
        "id": {"type": "integer"}, "title": {"type": "string"}}},
    "source": {"type": "string"},
    "overlaps": {"type": "boolean", "description": "its time intersects another entry's"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
}})
_LINK_ID = {"type": "integer", "minimum": 1, "nullable": True}
TIME_ENTRY_INPUT = openapi.schema("TimeEntryInput", {"type": "object", "properties": {
    "description": {"type": "string", "maxLength": time_tracking.entries.DESCRIPTION_MAX},
    "start_time": {"type": "string", "format": "date-time", "nullable": True,
                   "description": "with end_time: a finished entry; alone: a timer running "
                                  "since then; neither: a timer started now"},
    "end_time": {"type": "string", "format": "date-time", "nullable": True},
    "billable": {"type": "boolean"},
    "hourly_rate": {"type": "number", "minimum": 0, "nullable": True},
    "tags": {"type": "array", "items": {"type": "string"}},
    "task_id": _LINK_ID, "bookmark_id": _LINK_ID, "note_id": _LINK_ID,
    "source": {"type": "string", "maxLength": time_tracking.entries.SOURCE_MAX},
}})
ENTRY_ANSWER = openapi.schema("TimeEntryAnswer", {"type": "object", "properties": {
    "time_entry": TIME_ENTRY,
    "stopped": {"type": "object", "nullable": True, "description": "the timer this one "
                "stopped (only when starting a timer stopped another)",
                "allOf": [TIME_ENTRY]},
}})
RUNNING = openapi.schema("RunningTimer", {"type": "object", "properties": {
    "time_entry": {"type": "object", "nullable": True, "allOf": [TIME_ENTRY],
                   "description": "null when no timer runs (or ran)"}}})
ENTRY_LIST = openapi.schema("TimeEntryList", {"type": "object", "properties": {
    "time_entries": {"type": "array", "items": TIME_ENTRY},
    "total": {"type": "integer"}}})
PURGED = openapi.schema("TimeEntryPurged", {"type": "object", "properties": {
    "purged": {"type": "integer"}}})
STATS = openapi.schema("TimeEntryStats", {"type": "object", "properties": {"stats": {
    "type": "object", "properties": {
        "total_time_seconds": {"type": "integer"}, "total_entries": {"type": "integer"},
        "running_entries": {"type": "integer"}, "billable_time_seconds": {"type": "integer"},
        "total_billable_amount": {"type": "number"}}}}})
_GRID = {"seconds": {"type": "integer"},
         "days": {"type": "object", "additionalProperties": {"type": "integer"},
                  "description": "seconds per local date (YYYY-MM-DD) with any"}}
REPORT = openapi.schema("TimeReport", {"type": "object", "properties": {
    "start_date": {"type": "string", "format": "date"},
    "end_date": {"type": "string", "format": "date"}, "timezone": {"type": "string"},
    "total_seconds": {"type": "integer"}, "billable_seconds": {"type": "integer"},
    "billable_amount": {"type": "number"},
    "days": {"type": "array", "items": {"type": "object", "properties": {
        "date": {"type": "string", "format": "date"}, "seconds": {"type": "integer"}}}},
    "tags": {"type": "array", "items": {"type": "object", "properties": {
        "tag": {"type": "string", "nullable": True}, **_GRID}}},
    "tasks": {"type": "array", "items": {"type": "object", "properties": {
        "task_id": {"type": "integer", "nullable": True},
        "title": {"type": "string", "nullable": True}, **_GRID}}},
}})
RANGE = [query_param("start_date", "from this date (YYYY-MM-DD, in your timezone) or "
                     "date-time", {"type": "string"}),
         query_param("end_date", "to this date (inclusive) or date-time", {"type": "string"})]
DAYS = [query_param("start_date", "first day, YYYY-MM-DD (default: this week's Monday)",
                    {"type": "string", "format": "date"}),
        query_param("end_date", "last day, inclusive (default: six days after start_date)",
                    {"type": "string", "format": "date"})]


def _range() -> tuple[float | None, float | None]:
    zone = time_tracking.user_zone(current_user())
    start = time_tracking.parse_range_bound(request.args.get("start_date"), "start_date", zone,
                                            end=False)
    end = time_tracking.parse_range_bound(request.args.get("end_date"), "end_date", zone,
                                          end=True)
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "end_date is before start_date", field="end_date",
                       reason="before_start")
    return start, end


def _flag(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"{name} is true or false", field=name)


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number", field=name) from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be from {low} to {high}", field=name,
                       reason="out_of_range")
    return value


def _answer(entry, stopped=None, status: int = 200):
    user_id = current_user().id
    body = {"time_entry": time_tracking.entry_json(user_id, entry, now())}
    if stopped is not None:
        body["stopped"] = time_tracking.entry_json(user_id, stopped, now())
    elif request.method == "POST" and status == 201:
        body["stopped"] = None
    return jsonify(body), status


@bp.get("/time-entries")
@api_doc(response=ENTRY_LIST, params=[
    *RANGE, query_param("is_running", "true: the running timer only; false: finished ones",
                        {"type": "boolean"}),
    query_param("task_id", "entries linked to this task", {"type": "integer", "minimum": 1}),
    query_param("limit", f"at most {LIST_MAX} (default 200)",
                {"type": "integer", "minimum": 1, "maximum": LIST_MAX}),
    query_param("offset", "skip this many", {"type": "integer", "minimum": 0})])
@require_scope(None)
def list_entries():
    """Your time entries that intersect a range, newest first."""
    start, end = _range()
    is_running = _flag("is_running")
    task_id = _int_arg("task_id", None, 1, 2**63 - 1)
    limit = _int_arg("limit", 200, 1, LIST_MAX) or 200
    offset = _int_arg("offset", 0, 0, 2**31) or 0
    user_id = current_user().id
    rows, total = time_tracking.list_entries(user_id, start=start, end=end,
                                             is_running=is_running, task_id=task_id,
                                             limit=limit, offset=offset)
    return jsonify({"time_entries": time_tracking.entries_json(user_id, rows, now()),
                    "total": total})


@bp.post("/time-entries")
@api_doc(body=TIME_ENTRY_INPUT, response=ENTRY_ANSWER, status=201, body_required=False,
         responses={409: "another timer was started at the same moment"})
@require_scope(WRITE_SCOPE)
def create_entry():
    """Start a timer now (no times), or add a finished entry (start_time and end_time).

    Starting a timer stops the running one: the answer's ``stopped`` is that entry. A
    finished entry may be any time in the past; overlapping entries are allowed and flagged
    with ``overlaps``. The original clients' body is accepted as it is."""
    data = json_body() if request.get_data(cache=True) else {}
    entry, stopped = time_tracking.create_entry(current_user(), data, now=now())
    return _answer(entry, stopped, 201)


@bp.get("/time-entries/running")
@api_doc(response=RUNNING)
@require_scope(None)
def running():
    """Your running timer (``time_entry`` is null when none runs)."""
    user_id = current_user().id
    entry = time_tracking.running_entry(user_id)
    return jsonify({"time_entry": None if entry is None
                    else time_tracking.entry_json(user_id, entry, now())})


@bp.post("/time-entries/stop")
@api_doc(response=RUNNING, body_required=False)
@require_scope(WRITE_SCOPE)
def stop_running():
    """Stop your running timer, whichever it is (``time_entry`` is null when none ran)."""
    user_id = current_user().id
    entry = time_tracking.stop_running(user_id, now=now())
    return jsonify({"time_entry": None if entry is None
                    else time_tracking.entry_json(user_id, entry, now())})


@bp.get("/time-entries/deleted")
@api_doc(response=ENTRY_LIST)
@require_scope(None)
def deleted_entries():
    """Your deleted entries, last deleted first: each can be restored until the trash's
    retention purges it."""
    user_id = current_user().id
    rows = time_tracking.deleted_entries(user_id)
    return jsonify({"time_entries": time_tracking.entries_json(user_id, rows, now()),
                    "total": len(rows)})


@bp.delete("/time-entries/deleted/<id:entry_id>")
@api_doc(response=PURGED)
@require_scope(WRITE_SCOPE)
def purge_entry(entry_id: int):
    """Delete one of your deleted entries for good (a live entry is not found here)."""
    return jsonify({"purged": time_tracking.purge_entry(current_user().id, entry_id)})


@bp.get("/time-entries/stats")
@api_doc(response=STATS, params=RANGE)
@require_scope(None)
def stats():
    """Totals of your entries in a range (all of them without one), as the original
    answered them."""
    start, end = _range()
    return jsonify({"stats": time_tracking.stats(current_user(), start, end, now=now())})


def _days() -> tuple[dt.date, dt.date]:
    user = current_user()
    monday, _ = time_tracking.week_of(now(), time_tracking.user_zone(user))
    first = time_tracking.parse_day(request.args.get("start_date"), "start_date", monday)
    last = time_tracking.parse_day(request.args.get("end_date"), "end_date",
                                   first + dt.timedelta(days=6)
                                   if first < dt.date.max - dt.timedelta(days=7) else first)
    return first, last


@bp.get("/time-entries/report")
@api_doc(response=REPORT, params=DAYS)
@require_scope(None)
def report():
    """Totals per day (in your timezone), per tag and per linked task for a range of days,
    each with its seconds per day (the week view). At most 400 days.

    An entry across midnight counts on both days; a day with a daylight-saving change has
    its real length. An entry with several tags counts in full under each."""
    first, last = _days()
    return jsonify(time_tracking.report(current_user(), first, last, now=now()))


@bp.get("/time-entries/export.csv")
@api_doc(params=RANGE, responses={200: {"description": "the entries as CSV", "content": {
    "text/csv": {"schema": {"type": "string"}}}}})
@require_scope(None)
def export_csv():
    """Download your entries of a range as CSV (oldest first; times in UTC, the date in
    your timezone)."""
    start, end = _range()
    user = current_user()
    body = (piece.encode() for piece in time_tracking.export_csv(user, start, end, now=now()))
    day = dt.datetime.fromtimestamp(now(), dt.UTC).strftime("%Y-%m-%d")
    response = Response(stream_with_context(body), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="trackeep-time-{day}.csv"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/time-entries/<id:entry_id>")
@api_doc(response=ENTRY_ANSWER)
@require_scope(None)
def get_entry(entry_id: int):
    """One of your time entries."""
    return _answer(time_tracking.get_entry(current_user().id, entry_id))


@bp.route("/time-entries/<id:entry_id>", methods=["PUT", "PATCH"])
@api_doc(body=TIME_ENTRY_INPUT, response=ENTRY_ANSWER)
@require_scope(WRITE_SCOPE)
def update_entry(entry_id: int):
    """Change the fields sent (``null`` clears a link, the rate or the description).

    Giving a running entry an ``end_time`` stops it; a finished entry keeps one."""
    entry = time_tracking.update_entry(current_user().id, entry_id, json_body(), now=now())
    return _answer(entry)


@bp.delete("/time-entries/<id:entry_id>")
@api_doc(response=ENTRY_ANSWER)
@require_scope(WRITE_SCOPE)
def delete_entry(entry_id: int):
    """Delete an entry (a running one stops); ``POST .../restore`` brings it back until the
    trash's retention purges it."""
    return _answer(time_tracking.delete_entry(current_user().id, entry_id, now=now()))


@bp.post("/time-entries/<id:entry_id>/restore")
@api_doc(response=ENTRY_ANSWER, body_required=False)
@require_scope(WRITE_SCOPE)
def restore_entry(entry_id: int):
    """Bring back a deleted entry."""
    return _answer(time_tracking.restore_entry(current_user().id, entry_id, now=now()))


@bp.post("/time-entries/<id:entry_id>/stop")
@api_doc(response=ENTRY_ANSWER, body_required=False,
         responses={409: "the entry is not running"})
@require_scope(WRITE_SCOPE)
def stop_entry(entry_id: int):
    """Stop a running entry now."""
    return _answer(time_tracking.stop_entry(current_user().id, entry_id, now=now()))


def init_app(app: Flask, state) -> None:
    """The time-entries API, and the hourly purge of deleted entries past the trash's
    retention (``TRASH_RETENTION_DAYS``)."""
    app.register_blueprint(bp, url_prefix="/api/v1")
    clock = app.config.get("CLOCK") or SystemClock()
    max_age = float(app.config["TRASH_RETENTION_DAYS"]) * 86400
    if max_age:
        def purge() -> None:
            try:
                time_tracking.purge_expired(clock.now(), max_age)
            except (peewee.DatabaseError, peewee.InterfaceError) as exc:
                log.warning("could not purge deleted time entries (%s); will retry", exc)

        state.periodic.every(PURGE_INTERVAL, "time entry purge", purge)

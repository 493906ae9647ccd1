"""Time tracking (issue 12): the one running timer (start, stop, switch), backfilled entries,
overlaps flagged, days counted in the user's timezone across midnight and a DST change, the
original clients' shapes, reports, CSV, deletes and restores, user isolation, bad input as
4xx JSON, and challenges scored by ``track_hours``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import zoneinfo

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions

from trackeep_desktop.clock import ManualClock
from trackeep_desktop.storage.db import connection
from trackeep_desktop.storage.models import ItemTag, TimeEntry

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
ENTRY_KEYS = {"id", "user_id", "description", "start_time", "end_time", "duration",
              "is_running", "billable", "hourly_rate", "amount", "tags", "task_id",
              "bookmark_id", "note_id", "linked", "source", "overlaps", "created_at",
              "updated_at"}


@pytest.fixture
def world(make_app):
    """An app on a manual clock with the owner, ann and bob; (actions, tokens, clock)."""
    clock = ManualClock(start=float(int(time.time())))
    app = make_app(CLOCK=clock, FETCH_METADATA=False, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    actions.create_user(owner, "bob")
    return actions, {"owner": owner, "ann": actions.token("ann"),
                     "bob": actions.token("bob")}, clock


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def post(actions, token, body=None, status=201):
    response = actions.api("POST", "/time-entries", token, json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def backfill(actions, token, start: dt.datetime, end: dt.datetime, **fields):
    return post(actions, token, {"start_time": iso(start), "end_time": iso(end),
                                 **fields})["time_entry"]


def new_task(actions, token, title="Write the report"):
    response = actions.api("POST", "/tasks", token, json={"title": title})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def set_zone(actions, token, zone: str):
    response = actions.api("PATCH", "/auth/profile", token, json={"timezone": zone})
    assert response.status_code == 200, response.get_json()


def entry(actions, token, entry_id):
    response = actions.api("GET", f"/time-entries/{entry_id}", token)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["time_entry"]


def report(actions, token, start: str, end: str):
    response = actions.api("GET", f"/time-entries/report?start_date={start}&end_date={end}",
                           token)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# ------------------------------------------------------------------------------- the timer


def test_a_timer_runs_from_now_and_stops(world):
    actions, tokens, clock = world
    started = post(actions, tokens["ann"], {"description": "Focus"})
    timer = started["time_entry"]
    assert set(timer) == ENTRY_KEYS
    assert timer["is_running"] is True
    assert timer["end_time"] is None
    assert timer["duration"] == 0
    assert started["stopped"] is None
    clock.advance(90)
    running = actions.api("GET", "/time-entries/running", tokens["ann"]).get_json()
    assert running["time_entry"]["id"] == timer["id"]
    assert running["time_entry"]["duration"] == 90
    stopped = actions.api("POST", f"/time-entries/{timer['id']}/stop", tokens["ann"])
    assert stopped.status_code == 200
    done = stopped.get_json()["time_entry"]
    assert done["is_running"] is False
    assert done["duration"] == 90
    assert done["end_time"] is not None
    clock.advance(60)
    assert entry(actions, tokens["ann"], timer["id"])["duration"] == 90  # no longer runs
    again = actions.api("POST", f"/time-entries/{timer['id']}/stop", tokens["ann"])
    assert again.status_code == 409
    assert again.get_json()["reason"] == "not_running"
    assert actions.api("GET", "/time-entries/running",
                       tokens["ann"]).get_json()["time_entry"] is None


def test_starting_a_timer_stops_the_running_one_and_says_so(world):
    actions, tokens, clock = world
    first = post(actions, tokens["ann"])["time_entry"]
    clock.advance(120)
    task = new_task(actions, tokens["ann"])
    switched = post(actions, tokens["ann"], {"task_id": task})
    assert switched["stopped"]["id"] == first["id"]
    assert switched["stopped"]["is_running"] is False
    assert switched["stopped"]["duration"] == 120
    assert switched["stopped"]["end_time"] == switched["time_entry"]["start_time"]
    assert switched["time_entry"]["task_id"] == task
    assert switched["time_entry"]["linked"] == {"type": "task", "id": task,
                                                "title": "Write the report"}
    listed = actions.api("GET", "/time-entries?is_running=true", tokens["ann"]).get_json()
    assert [e["id"] for e in listed["time_entries"]] == [switched["time_entry"]["id"]]
    finished = actions.api("GET", "/time-entries?is_running=false", tokens["ann"]).get_json()
    assert [e["id"] for e in finished["time_entries"]] == [first["id"]]
    with connection(actions.app.extensions["trackeep"].db):
        running = TimeEntry.select().where(TimeEntry.end_time.is_null()).count()
    assert running == 1


def test_stop_without_an_id_stops_whatever_runs(world):
    actions, tokens, clock = world
    timer = post(actions, tokens["ann"])["time_entry"]
    clock.advance(30)
    answer = actions.api("POST", "/time-entries/stop", tokens["ann"]).get_json()
    assert answer["time_entry"]["id"] == timer["id"]
    assert answer["time_entry"]["duration"] == 30
    nothing = actions.api("POST", "/time-entries/stop", tokens["ann"]).get_json()
    assert nothing["time_entry"] is None


def test_one_users_timer_does_not_stop_anothers(world):
    actions, tokens, _ = world
    ann = post(actions, tokens["ann"])["time_entry"]
    bob = post(actions, tokens["bob"])
    assert bob["stopped"] is None
    assert entry(actions, tokens["ann"], ann["id"])["is_running"] is True


# ---------------------------------------------------------------------- manual entries


def test_a_backfilled_entry_may_be_any_time_in_the_past(world):
    actions, tokens, clock = world
    running = post(actions, tokens["ann"])["time_entry"]
    start = dt.datetime.fromtimestamp(clock.now(), dt.UTC) - dt.timedelta(days=400)
    made = post(actions, tokens["ann"], {"start_time": iso(start),
                                         "end_time": iso(start + dt.timedelta(hours=2)),
                                         "description": "Last year's audit"})
    assert made["stopped"] is None  # a finished entry leaves the timer alone
    done = made["time_entry"]
    assert done["is_running"] is False
    assert done["duration"] == 7200
    assert done["start_time"] == iso(start)
    assert entry(actions, tokens["ann"], running["id"])["is_running"] is True


def test_a_timer_may_start_in_the_past(world):
    actions, tokens, clock = world
    start = dt.datetime.fromtimestamp(clock.now(), dt.UTC) - dt.timedelta(minutes=25)
    timer = post(actions, tokens["ann"], {"start_time": iso(start)})["time_entry"]
    assert timer["is_running"] is True
    assert timer["duration"] == 25 * 60


@pytest.mark.parametrize(("body", "field"), [
    ({"start_time": "2026-01-01T10:00:00Z", "end_time": "2026-01-01T10:00:00Z"}, "end_time"),
    ({"start_time": "2026-01-01T10:00:00Z", "end_time": "2026-01-01T09:00:00Z"}, "end_time"),
    ({"end_time": "2026-01-01T09:00:00Z"}, "start_time"),
    ({"start_time": "yesterday"}, "start_time"),
    ({"start_time": 1767261600}, "start_time"),
    ({"start_time": "2026-01-01T10:00:00Z", "end_time": "9999-12-31T23:59:59+14:00"},
     "end_time"),
    ({"start_time": "3026-01-01T10:00:00Z"}, "start_time"),
    ({"description": 5}, "description"),
    ({"description": "x" * 2001}, "description"),
    ({"billable": "yes"}, "billable"),
    ({"hourly_rate": -1}, "hourly_rate"),
    ({"hourly_rate": "12"}, "hourly_rate"),
    ({"hourly_rate": True}, "hourly_rate"),
    ({"task_id": "1"}, "task_id"),
    ({"task_id": 2**63}, "task_id"),
    ({"task_id": 987654}, "task_id"),
    ({"note_id": 0}, "note_id"),
    ({"tags": 5}, "tags"),
    ({"tags": ["ok", ""]}, "tags"),
    ({"source": "x" * 40}, "source"),
])
def test_bad_input_is_a_400_naming_the_field(world, body, field):
    actions, tokens, _ = world
    response = actions.api("POST", "/time-entries", tokens["ann"], json=body)
    assert response.status_code == 400, response.get_json()
    answer = response.get_json()
    assert answer["error"]
    assert answer["field"] == field
    with connection(actions.app.extensions["trackeep"].db):
        assert TimeEntry.select().count() == 0


def test_a_body_that_is_not_an_object_is_refused(world):
    actions, tokens, _ = world
    for body in ([], "start", 3):
        response = actions.api("POST", "/time-entries", tokens["ann"], json=body)
        assert response.status_code == 400
        assert "error" in response.get_json()
    bad = actions.client.post("/api/v1/time-entries", data="{nope",
                              headers={"Authorization": f"Bearer {tokens['ann']}",
                                       "Content-Type": "application/json"})
    assert bad.status_code == 400
    assert "error" in bad.get_json()


def test_two_links_at_once_are_refused(world):
    actions, tokens, _ = world
    task = new_task(actions, tokens["ann"])
    note = actions.api("POST", "/notes", tokens["ann"], json={"title": "n"}).get_json()["id"]
    response = actions.api("POST", "/time-entries", tokens["ann"],
                           json={"task_id": task, "note_id": note})
    assert response.status_code == 400
    assert response.get_json()["reason"] == "not_allowed"


@pytest.mark.parametrize("query", [
    "start_date=soon", "end_date=2026-13-01", "is_running=maybe", "limit=0", "limit=x",
    "offset=-1", "task_id=0", "start_date=2026-05-02&end_date=2026-05-01",
    "start_date=0001-01-01T00:00:00Z",
])
def test_bad_query_parameters_are_400(world, query):
    actions, tokens, _ = world
    for path in ("/time-entries", "/time-entries/stats", "/time-entries/export.csv"):
        if path != "/time-entries" and query.split("=")[0] in ("is_running", "limit",
                                                               "offset", "task_id"):
            continue
        response = actions.api("GET", f"{path}?{query}", tokens["ann"])
        assert response.status_code == 400, (path, query, response.get_data(as_text=True))
        assert "error" in response.get_json()


@pytest.mark.parametrize("query", ["start_date=2026-05-xx", "end_date=2026-05-01",
                                   "start_date=2024-01-01&end_date=2026-01-01",
                                   "start_date=9999-12-31", "start_date=2026-05-01T10:00:00"])
def test_bad_report_ranges_are_400(world, query):
    actions, tokens, _ = world
    response = actions.api("GET", f"/time-entries/report?start_date=2026-05-05&{query}"
                           if query.startswith("end_date") else f"/time-entries/report?{query}",
                           tokens["ann"])
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "error" in response.get_json()


# ------------------------------------------------------------------------------ overlaps


def test_overlapping_entries_are_allowed_and_flagged(world):
    actions, tokens, _ = world
    base = dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)
    one = backfill(actions, tokens["ann"], base, base + dt.timedelta(hours=2))
    assert one["overlaps"] is False
    two = backfill(actions, tokens["ann"], base + dt.timedelta(hours=1),
                   base + dt.timedelta(hours=3))
    assert two["overlaps"] is True
    after = backfill(actions, tokens["ann"], base + dt.timedelta(hours=3),
                     base + dt.timedelta(hours=4))  # touches, does not overlap
    inside_other_day = backfill(actions, tokens["ann"], base + dt.timedelta(days=1),
                                base + dt.timedelta(days=1, hours=1))
    flags = {e["id"]: e["overlaps"] for e in actions.api(
        "GET", "/time-entries", tokens["ann"]).get_json()["time_entries"]}
    assert flags == {one["id"]: True, two["id"]: True, after["id"]: False,
                     inside_other_day["id"]: False}
    # bob's entry at the same time is not ann's overlap
    bob = backfill(actions, tokens["bob"], base, base + dt.timedelta(hours=1))
    assert bob["overlaps"] is False
    # moving the second entry away clears both flags
    moved = actions.api("PUT", f"/time-entries/{two['id']}", tokens["ann"], json={
        "start_time": iso(base + dt.timedelta(hours=5)),
        "end_time": iso(base + dt.timedelta(hours=6))})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["time_entry"]["overlaps"] is False
    assert entry(actions, tokens["ann"], one["id"])["overlaps"] is False


def test_a_running_timer_overlaps_what_it_runs_over(world):
    actions, tokens, clock = world
    now = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    timer = post(actions, tokens["ann"], {"start_time": iso(now - dt.timedelta(hours=1))})
    old = backfill(actions, tokens["ann"], now - dt.timedelta(minutes=30),
                   now - dt.timedelta(minutes=10))
    assert old["overlaps"] is True
    assert entry(actions, tokens["ann"], timer["time_entry"]["id"])["overlaps"] is True


# ------------------------------------------------------------------ days in the timezone


def test_an_entry_across_midnight_counts_on_both_days_in_the_users_timezone(world):
    actions, tokens, _ = world
    set_zone(actions, tokens["ann"], "Europe/Berlin")
    start = dt.datetime(2026, 11, 10, 23, 30, tzinfo=BERLIN)  # 22:30 UTC: the 10th in UTC too
    backfill(actions, tokens["ann"], start, start + dt.timedelta(minutes=75))
    days = {d["date"]: d["seconds"] for d in
            report(actions, tokens["ann"], "2026-11-09", "2026-11-12")["days"]}
    assert days == {"2026-11-09": 0, "2026-11-10": 1800, "2026-11-11": 2700,
                    "2026-11-12": 0}
    # In UTC the same entry is all on the 10th (22:30 to 23:45).
    set_zone(actions, tokens["ann"], "UTC")
    days = {d["date"]: d["seconds"] for d in
            report(actions, tokens["ann"], "2026-11-10", "2026-11-11")["days"]}
    assert days == {"2026-11-10": 4500, "2026-11-11": 0}


def test_a_dst_change_in_berlin_counts_real_hours(world):
    actions, tokens, _ = world
    set_zone(actions, tokens["ann"], "Europe/Berlin")
    # Sunday 2026-03-29: clocks go from 02:00 to 03:00, the day has 23 hours.
    night = backfill(actions, tokens["ann"], dt.datetime(2026, 3, 28, 22, tzinfo=BERLIN),
                     dt.datetime(2026, 3, 29, 4, tzinfo=BERLIN))
    assert night["duration"] == 5 * 3600  # 22:00 to 04:00 on a night an hour short
    whole_day = backfill(actions, tokens["ann"], dt.datetime(2026, 3, 29, tzinfo=BERLIN),
                         dt.datetime(2026, 3, 30, tzinfo=BERLIN), tags=["deep"])
    assert whole_day["duration"] == 23 * 3600
    answer = report(actions, tokens["ann"], "2026-03-28", "2026-03-30")
    days = {d["date"]: d["seconds"] for d in answer["days"]}
    assert days == {"2026-03-28": 2 * 3600, "2026-03-29": 3 * 3600 + 23 * 3600,
                    "2026-03-30": 0}
    assert answer["timezone"] == "Europe/Berlin"
    assert answer["total_seconds"] == 28 * 3600
    tags = {t["tag"]: t for t in answer["tags"]}
    assert tags["deep"]["days"] == {"2026-03-29": 23 * 3600}
    assert tags[None]["seconds"] == 5 * 3600
    # The listing by local date: the 29th holds both entries, the 30th neither.
    listed = actions.api("GET", "/time-entries?start_date=2026-03-30&end_date=2026-03-30",
                         tokens["ann"]).get_json()["time_entries"]
    assert listed == []
    listed = actions.api("GET", "/time-entries?start_date=2026-03-29&end_date=2026-03-29",
                         tokens["ann"]).get_json()["time_entries"]
    assert {e["id"] for e in listed} == {night["id"], whole_day["id"]}


def test_the_autumn_dst_change_makes_a_25_hour_day(world):
    actions, tokens, _ = world
    set_zone(actions, tokens["ann"], "Europe/Berlin")
    # Sunday 2026-10-25: clocks go back from 03:00 to 02:00.
    day = backfill(actions, tokens["ann"], dt.datetime(2026, 10, 25, tzinfo=BERLIN),
                   dt.datetime(2026, 10, 26, tzinfo=BERLIN))
    assert day["duration"] == 25 * 3600
    days = {d["date"]: d["seconds"] for d in
            report(actions, tokens["ann"], "2026-10-24", "2026-10-26")["days"]}
    assert days == {"2026-10-24": 0, "2026-10-25": 25 * 3600, "2026-10-26": 0}


def test_split_by_day_cuts_at_each_local_midnight():
    from trackeep_desktop.time_tracking import split_by_day

    york = zoneinfo.ZoneInfo("America/New_York")
    # From Saturday 20:00 to Monday 04:00 over the night clocks go forward (2026-03-08).
    start = dt.datetime(2026, 3, 7, 20, tzinfo=york).timestamp()
    end = dt.datetime(2026, 3, 9, 4, tzinfo=york).timestamp()
    assert [(day.isoformat(), seconds) for day, seconds in split_by_day(start, end, york)] == [
        ("2026-03-07", 4 * 3600), ("2026-03-08", 23 * 3600), ("2026-03-09", 4 * 3600)]
    assert split_by_day(start, start, york) == []


def test_the_report_groups_by_tag_and_task_with_a_grid(world):
    actions, tokens, _ = world
    task = new_task(actions, tokens["ann"], "Design")
    other = new_task(actions, tokens["ann"], "Review")
    monday = dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)
    backfill(actions, tokens["ann"], monday, monday + dt.timedelta(hours=2), task_id=task,
             tags=["client", "ux"], billable=True, hourly_rate=50)
    backfill(actions, tokens["ann"], monday + dt.timedelta(days=1),
             monday + dt.timedelta(days=1, hours=1), task_id=other, tags=["client"])
    backfill(actions, tokens["ann"], monday + dt.timedelta(days=2),
             monday + dt.timedelta(days=2, minutes=30))
    backfill(actions, tokens["ann"], monday + dt.timedelta(days=9),  # outside the week
             monday + dt.timedelta(days=9, hours=5), task_id=task)
    answer = report(actions, tokens["ann"], "2026-06-01", "2026-06-07")
    assert answer["total_seconds"] == 3 * 3600 + 1800
    assert answer["billable_seconds"] == 7200
    assert answer["billable_amount"] == 100.0
    assert [d["seconds"] for d in answer["days"]] == [7200, 3600, 1800, 0, 0, 0, 0]
    assert answer["tasks"] == [
        {"task_id": task, "title": "Design", "seconds": 7200, "days": {"2026-06-01": 7200}},
        {"task_id": other, "title": "Review", "seconds": 3600, "days": {"2026-06-02": 3600}},
        {"task_id": None, "title": None, "seconds": 1800, "days": {"2026-06-03": 1800}},
    ]
    assert answer["tags"] == [
        {"tag": "client", "seconds": 10800,
         "days": {"2026-06-01": 7200, "2026-06-02": 3600}},
        {"tag": "ux", "seconds": 7200, "days": {"2026-06-01": 7200}},
        {"tag": None, "seconds": 1800, "days": {"2026-06-03": 1800}},
    ]


def test_the_report_defaults_to_this_week(world):
    actions, tokens, clock = world
    answer = actions.api("GET", "/time-entries/report", tokens["ann"]).get_json()
    today = dt.datetime.fromtimestamp(clock.now(), dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    assert answer["start_date"] == monday.isoformat()
    assert answer["end_date"] == (monday + dt.timedelta(days=6)).isoformat()
    assert len(answer["days"]) == 7


# ------------------------------------------------------ the original clients and stats


def test_the_original_clients_calls(world):
    """The mobile app: start on a task with its fields, list, read, stop, stats."""
    actions, tokens, clock = world
    task = new_task(actions, tokens["ann"])
    created = actions.api("POST", "/time-entries", tokens["ann"], json={
        "task_id": task, "description": "Mobile", "tags": ["phone", "work"],
        "billable": True, "hourly_rate": 60, "source": "mobile"})
    assert created.status_code == 201
    timer = created.get_json()["time_entry"]
    assert timer["source"] == "mobile"
    assert timer["tags"] == ["phone", "work"]
    assert timer["billable"] is True
    assert timer["hourly_rate"] == 60
    clock.advance(1800)
    listed = actions.api("GET", "/time-entries", tokens["ann"]).get_json()
    assert list(listed) == ["time_entries", "total"]
    assert listed["time_entries"][0]["duration"] == 1800
    stopped = actions.api("POST", f"/time-entries/{timer['id']}/stop", tokens["ann"])
    assert list(stopped.get_json()) == ["time_entry"]
    assert stopped.get_json()["time_entry"]["amount"] == 30.0
    start = dt.datetime.fromtimestamp(clock.now(), dt.UTC) - dt.timedelta(days=2)
    backfill(actions, tokens["ann"], start, start + dt.timedelta(hours=1))
    timer_end = clock.now()
    post(actions, tokens["ann"])  # a running one, 0 s so far
    clock.advance(60)
    stats = actions.api("GET", "/time-entries/stats", tokens["ann"]).get_json()
    assert stats == {"stats": {"total_time_seconds": 1800 + 3600 + 60, "total_entries": 3,
                               "running_entries": 1, "billable_time_seconds": 1800,
                               "total_billable_amount": 30.0}}
    day = dt.datetime.fromtimestamp(clock.now(), dt.UTC).date()
    today = actions.api("GET", f"/time-entries/stats?start_date={day}&end_date={day}",
                        tokens["ann"]).get_json()["stats"]
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
    assert today["total_entries"] == (2 if timer_end > midnight else 1)  # not the backfill
    assert today["running_entries"] == 1
    updated = actions.api("PUT", f"/time-entries/{timer['id']}", tokens["ann"],
                          json={"description": "Mobile, edited", "billable": False,
                                "tags": "phone"})
    assert updated.status_code == 200
    body = updated.get_json()["time_entry"]
    assert body["description"] == "Mobile, edited"
    assert body["amount"] == 0
    assert body["tags"] == ["phone"]
    assert body["duration"] == 1800


def test_edits_keep_end_after_start_and_can_stop_a_timer(world):
    actions, tokens, clock = world
    timer = post(actions, tokens["ann"])["time_entry"]
    clock.advance(600)
    end = dt.datetime.fromtimestamp(clock.now(), dt.UTC) - dt.timedelta(minutes=5)
    stopped = actions.api("PUT", f"/time-entries/{timer['id']}", tokens["ann"],
                          json={"end_time": iso(end)})
    assert stopped.status_code == 200
    assert stopped.get_json()["time_entry"]["duration"] == 300
    reopen = actions.api("PUT", f"/time-entries/{timer['id']}", tokens["ann"],
                         json={"end_time": None})
    assert reopen.status_code == 400
    backwards = actions.api("PATCH", f"/time-entries/{timer['id']}", tokens["ann"],
                            json={"start_time": iso(end + dt.timedelta(seconds=1))})
    assert backwards.status_code == 400
    assert backwards.get_json()["field"] == "end_time"
    assert entry(actions, tokens["ann"], timer["id"])["duration"] == 300


def test_delete_and_restore(world):
    actions, tokens, clock = world
    timer = post(actions, tokens["ann"], {"tags": ["x"]})["time_entry"]
    clock.advance(100)
    deleted = actions.api("DELETE", f"/time-entries/{timer['id']}", tokens["ann"])
    assert deleted.status_code == 200
    assert deleted.get_json()["time_entry"]["is_running"] is False  # stopped as it went
    assert actions.api("GET", f"/time-entries/{timer['id']}", tokens["ann"]).status_code == 404
    assert actions.api("GET", "/time-entries", tokens["ann"]).get_json()["time_entries"] == []
    stats = actions.api("GET", "/time-entries/stats", tokens["ann"]).get_json()["stats"]
    assert stats["total_entries"] == 0
    assert post(actions, tokens["ann"])["stopped"] is None  # the deleted one no longer ran
    gone = actions.api("GET", "/time-entries/deleted", tokens["ann"]).get_json()
    assert [e["id"] for e in gone["time_entries"]] == [timer["id"]]
    assert actions.api("GET", "/time-entries/deleted",
                       tokens["bob"]).get_json()["time_entries"] == []
    restored = actions.api("POST", f"/time-entries/{timer['id']}/restore", tokens["ann"])
    assert restored.status_code == 200
    back = restored.get_json()["time_entry"]
    assert back["duration"] == 100
    assert back["tags"] == ["x"]
    again = actions.api("POST", f"/time-entries/{timer['id']}/restore", tokens["ann"])
    assert again.status_code == 404
    # a live entry cannot be purged; a deleted one can, by its owner only
    live = actions.api("DELETE", f"/time-entries/deleted/{timer['id']}", tokens["ann"])
    assert live.status_code == 404
    actions.api("DELETE", f"/time-entries/{timer['id']}", tokens["ann"])
    assert actions.api("DELETE", f"/time-entries/deleted/{timer['id']}",
                       tokens["bob"]).status_code == 404
    purged = actions.api("DELETE", f"/time-entries/deleted/{timer['id']}", tokens["ann"])
    assert purged.get_json() == {"purged": 1}
    assert actions.api("POST", f"/time-entries/{timer['id']}/restore",
                       tokens["ann"]).status_code == 404
    with connection(actions.app.extensions["trackeep"].db):
        assert ItemTag.select().where(ItemTag.item_type == "time_entry").count() == 0


def test_deleted_entries_are_purged_after_the_retention(world):
    from trackeep_desktop import time_tracking
    from trackeep_desktop.storage.changes import use_pipeline

    actions, tokens, clock = world
    timer = post(actions, tokens["ann"], {"tags": ["gone"]})["time_entry"]
    actions.api("DELETE", f"/time-entries/{timer['id']}", tokens["ann"])
    state = actions.app.extensions["trackeep"]
    with connection(state.db), use_pipeline(state.pipeline):
        assert time_tracking.purge_expired(clock.now() + 86400, 30 * 86400) == 0
        assert time_tracking.purge_expired(clock.now() + 31 * 86400, 30 * 86400) == 1
        assert TimeEntry.select().count() == 0
        assert ItemTag.select().where(ItemTag.item_type == "time_entry").count() == 0


def test_tags_are_the_users_item_tags(world):
    actions, tokens, _ = world
    timer = post(actions, tokens["ann"], {"tags": ["Client A"]})["time_entry"]
    tags = {t["name"]: t for t in actions.api("GET", "/tags", tokens["ann"]).get_json()}
    assert "Client A" in tags
    renamed = actions.api("PATCH", f"/tags/{tags['Client A']['id']}", tokens["ann"],
                          json={"name": "Client B"})
    assert renamed.status_code == 200
    assert entry(actions, tokens["ann"], timer["id"])["tags"] == ["Client B"]


def test_an_entry_keeps_its_link_to_a_task_in_the_trash_and_can_move_to_a_note(world):
    actions, tokens, _ = world
    task = new_task(actions, tokens["ann"])
    timer = post(actions, tokens["ann"], {"task_id": task})["time_entry"]
    assert actions.api("DELETE", f"/tasks/{task}", tokens["ann"]).status_code in (200, 204)
    # an edit that sends the link it has is fine; a new link to a trashed task is not
    kept = actions.api("PUT", f"/time-entries/{timer['id']}", tokens["ann"],
                       json={"task_id": task, "description": "still"})
    assert kept.status_code == 200, kept.get_json()
    assert kept.get_json()["time_entry"]["task_id"] == task
    refused = actions.api("POST", "/time-entries", tokens["ann"], json={"task_id": task})
    assert refused.status_code == 400
    note = actions.api("POST", "/notes", tokens["ann"], json={"title": "n"}).get_json()["id"]
    moved = actions.api("PATCH", f"/time-entries/{timer['id']}", tokens["ann"],
                        json={"note_id": note}).get_json()["time_entry"]
    assert moved["task_id"] is None
    assert moved["linked"] == {"type": "note", "id": note, "title": "n"}


def test_a_purged_task_leaves_its_entries_unlinked(world):
    actions, tokens, _ = world
    task = new_task(actions, tokens["ann"])
    timer = post(actions, tokens["ann"], {"task_id": task})["time_entry"]
    assert actions.api("DELETE", f"/tasks/{task}", tokens["ann"]).status_code in (200, 204)
    assert actions.api("DELETE", f"/trash/task/{task}", tokens["ann"]).status_code in (200, 204)
    kept = entry(actions, tokens["ann"], timer["id"])
    assert kept["task_id"] is None
    assert kept["linked"] is None


def test_a_read_only_key_reads_but_does_not_write(world):
    actions, tokens, _ = world
    key, _ = actions.create_key(tokens["ann"], ["read"])
    assert actions.api("GET", "/time-entries", key).status_code == 200
    refused = actions.api("POST", "/time-entries", key, json={})
    assert refused.status_code == 403
    assert "error" in refused.get_json()
    writer, _ = actions.create_key(tokens["ann"], ["tasks:write"])
    assert actions.api("POST", "/time-entries", writer, json={}).status_code == 201


# -------------------------------------------------------------------------- isolation


def test_users_never_see_or_touch_each_others_entries(world):
    actions, tokens, _ = world
    task = new_task(actions, tokens["ann"])
    ann = post(actions, tokens["ann"], {"task_id": task, "tags": ["secret"]})["time_entry"]
    base = f"/time-entries/{ann['id']}"
    for method, path, body in [("GET", base, None), ("PUT", base, {"description": "mine"}),
                               ("PATCH", base, {"description": "mine"}),
                               ("DELETE", base, None), ("POST", base + "/stop", None),
                               ("POST", base + "/restore", None),
                               ("DELETE", f"/time-entries/deleted/{ann['id']}", None)]:
        response = actions.api(method, path, tokens["bob"], json=body)
        assert response.status_code == 404, (method, path)
        assert "error" in response.get_json()
    linked = actions.api("POST", "/time-entries", tokens["bob"], json={"task_id": task})
    assert linked.status_code == 400
    assert linked.get_json()["field"] == "task_id"
    assert actions.api("GET", "/time-entries", tokens["bob"]).get_json()["time_entries"] == []
    bob_stats = actions.api("GET", "/time-entries/stats", tokens["bob"]).get_json()["stats"]
    assert bob_stats["total_entries"] == 0
    assert actions.api("GET", "/time-entries/running",
                       tokens["bob"]).get_json()["time_entry"] is None
    csv_text = actions.api("GET", "/time-entries/export.csv", tokens["bob"]).get_data(
        as_text=True)
    assert csv_text.count("\r\n") == 1  # the header alone
    assert report(actions, tokens["bob"], "2026-01-01", "2026-12-31")["total_seconds"] == 0
    mine = entry(actions, tokens["ann"], ann["id"])
    assert mine["is_running"] is True
    assert mine["description"] == ""


# --------------------------------------------------------------------------------- CSV


def test_the_csv_export_of_a_range(world):
    actions, tokens, _ = world
    set_zone(actions, tokens["ann"], "Europe/Berlin")
    task = new_task(actions, tokens["ann"], "Taxes")
    late = backfill(actions, tokens["ann"], dt.datetime(2026, 5, 4, 23, 30, tzinfo=BERLIN),
                    dt.datetime(2026, 5, 5, 0, 30, tzinfo=BERLIN), task_id=task,
                    tags=["home", "admin"], billable=True, hourly_rate=40,
                    description="=HYPERLINK(\"x\")")
    early = backfill(actions, tokens["ann"], dt.datetime(2026, 5, 1, 9, tzinfo=BERLIN),
                     dt.datetime(2026, 5, 1, 9, 45, tzinfo=BERLIN), description="Plain, text")
    backfill(actions, tokens["ann"], dt.datetime(2026, 4, 20, 9, tzinfo=BERLIN),
             dt.datetime(2026, 4, 20, 10, tzinfo=BERLIN))  # before the range
    response = actions.api("GET", "/time-entries/export.csv?start_date=2026-05-01"
                           "&end_date=2026-05-31", tokens["ann"])
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["id"]) for r in rows] == [early["id"], late["id"]]  # oldest first
    first, second = rows
    assert first["date"] == "2026-05-01"
    assert first["description"] == "Plain, text"
    assert first["duration_seconds"] == "2700"
    assert first["hours"] == "0.75"
    assert first["billable"] == "no"
    assert second["date"] == "2026-05-04"  # the local date of its start
    assert second["start_time"] == "2026-05-04T21:30:00Z"
    assert second["end_time"] == "2026-05-04T22:30:00Z"
    assert second["description"] == "'=HYPERLINK(\"x\")"  # never a formula
    assert second["tags"] == "admin;home"
    assert second["linked_type"] == "task"
    assert second["linked_id"] == str(task)
    assert second["linked_title"] == "Taxes"
    assert second["billable"] == "yes"
    assert second["amount"] == "40.00"
    assert list(rows[0]) == ["id", "date", "start_time", "end_time", "duration_seconds",
                             "hours", "description", "tags", "linked_type", "linked_id",
                             "linked_title", "billable", "hourly_rate", "amount", "overlaps"]


# -------------------------------------------------------------------------- challenges


def test_track_hours_scores_whole_hours_of_finished_entries_in_the_period(world):
    actions, tokens, clock = world
    today = dt.datetime.fromtimestamp(clock.now(), dt.UTC).date()
    start_day = today - dt.timedelta(days=2)
    challenge = actions.api("POST", "/community/challenges", tokens["ann"], json={
        "title": "Ten hours", "start_date": start_day.isoformat(),
        "end_date": (today + dt.timedelta(days=5)).isoformat(),
        "rule": {"type": "track_hours", "target": 10}})
    assert challenge.status_code == 201, challenge.get_json()
    challenge_id = challenge.get_json()["id"]
    assert actions.api("POST", f"/community/challenges/{challenge_id}/join",
                       tokens["ann"]).status_code == 200

    def score():
        return actions.api("GET", f"/community/challenges/{challenge_id}",
                           tokens["ann"]).get_json()["my_score"]

    period_start = dt.datetime.combine(start_day, dt.time(), dt.UTC)
    # 90 minutes before the period and 90 inside it: only the hour and a half inside counts
    across = backfill(actions, tokens["ann"], period_start - dt.timedelta(minutes=90),
                      period_start + dt.timedelta(minutes=90))
    assert score() == 1
    backfill(actions, tokens["ann"], period_start + dt.timedelta(hours=3),
             period_start + dt.timedelta(hours=4, minutes=30))
    assert score() == 3  # 1.5 h + 1.5 h
    backfill(actions, tokens["ann"], period_start - dt.timedelta(days=3),
             period_start - dt.timedelta(days=2))  # before the period
    assert score() == 3
    timer = post(actions, tokens["ann"])["time_entry"]
    clock.advance(2 * 3600)
    assert score() == 3  # a running timer counts once it stops
    actions.api("POST", f"/time-entries/{timer['id']}/stop", tokens["ann"])
    assert score() == 5
    actions.api("DELETE", f"/time-entries/{across['id']}", tokens["ann"])
    assert score() == 3  # 1.5 h + 2 h
    actions.api("POST", f"/time-entries/{across['id']}/restore", tokens["ann"])
    assert score() == 5
    board = actions.api("GET", f"/community/challenges/{challenge_id}/leaderboard",
                        tokens["ann"]).get_json()
    assert board["entries"][0]["score"] == 5


def test_timers_started_at_once_leave_one_running(world):
    """Six starts at the same moment, each from its own connection: each stops the one before
    it (the user's row is locked on PostgreSQL; SQLite serializes writers), so exactly one
    runs and every other was stopped exactly once."""
    import threading

    actions, tokens, _ = world
    barrier = threading.Barrier(6)
    answers: list = []

    def start():
        client = actions.app.test_client()
        barrier.wait()
        response = client.post("/api/v1/time-entries", json={},
                               headers={"Authorization": f"Bearer {tokens['ann']}"})
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [status for status, _ in answers] == [201] * 6
    made = {body["time_entry"]["id"] for _, body in answers}
    stopped = [body["stopped"]["id"] for _, body in answers if body["stopped"]]
    running = actions.api("GET", "/time-entries?is_running=true",
                          tokens["ann"]).get_json()["time_entries"]
    assert len(running) == 1
    assert len(stopped) == 5
    assert set(stopped) | {running[0]["id"]} == made


def test_each_write_is_a_change_event_on_the_owners_channel_only(world):
    from trackeep_desktop.realtime import events

    actions, tokens, clock = world
    pubsub = actions.app.extensions["trackeep"].capabilities.pubsub
    got: list[tuple[str, dict]] = []
    pubsub.subscribe(events.CHANNEL_PATTERN, lambda channel, message: got.append(
        (channel, message)))
    ann_id = actions.api("GET", "/auth/me", tokens["ann"]).get_json()["user"]["id"]
    first = post(actions, tokens["ann"])["time_entry"]
    clock.advance(10)
    second = post(actions, tokens["ann"], {"description": "next"})["time_entry"]
    mine = [(m["type"], m["action"], m["id"]) for channel, m in got
            if channel == f"events:{ann_id}" and m["type"] == "time_entry"]
    assert mine == [("time_entry", "created", first["id"]),
                    ("time_entry", "updated", first["id"]),  # stopped by the second start
                    ("time_entry", "created", second["id"])]
    stopped = next(m for _, m in got if m["type"] == "time_entry" and m["action"] == "updated")
    assert stopped["item"]["is_running"] is False
    assert stopped["item"]["duration"] == 10
    assert {channel for channel, _ in got} == {f"events:{ann_id}"}

"""Bookmarks, tasks, notes, tags, trash and the dashboard through /api/v1, on embedded
capabilities and on a real Redis (``any_app``)."""

from __future__ import annotations

import re
import threading

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions, bearer

from trackeep_desktop import items
from trackeep_desktop.storage import changes
from trackeep_desktop.storage.db import connection
from trackeep_desktop.storage.models import Bookmark, ItemTag, Note, Tag, Task

from clocks import make_clocked_app

DAY = 86400


class Api:
    """API calls as one user (``/api/v1`` prefix implied)."""

    def __init__(self, actions: AuthActions, token: str):
        self.actions = actions
        self.token = token

    def __call__(self, method, path, json=None, **kwargs):
        return self.actions.api(method, path, self.token, json=json, **kwargs)

    def get(self, path):
        return self("GET", path)

    def post(self, path, json=None):
        return self("POST", path, json)

    def patch(self, path, json):
        return self("PATCH", path, json)

    def put(self, path, json):
        return self("PUT", path, json)

    def delete(self, path):
        return self("DELETE", path)

    def create(self, collection, **body):
        response = self.post(f"/{collection}", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


def pipeline_of(app):
    """The app's change pipeline, to activate around domain calls made outside a request."""
    return app.extensions["trackeep"].pipeline


def prepare(app) -> tuple[AuthActions, Api]:
    app.config.update(GENEROUS_LIMITS, FETCH_METADATA=False)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    return actions, Api(actions, token)


@pytest.fixture
def api(any_app):
    return prepare(any_app)[1]


@pytest.fixture
def two_users(any_app):
    actions, owner = prepare(any_app)
    actions.create_user(owner.token, "ann")
    return owner, Api(actions, actions.token("ann"))


@pytest.fixture(params=["memory", "redis"])
def clocked(request, make_app, key_prefix):
    clocked = make_clocked_app(request, make_app, key_prefix, FETCH_METADATA=False,
                               SESSION_TTL=400 * DAY, **GENEROUS_LIMITS)
    clocked.api = prepare(clocked.app)[1]
    return clocked


# ------------------------------------------------------------------------------- bookmarks


def test_bookmark_round_trip_with_patch_false_and_put(api):
    created = api.create("bookmarks", url="HTTPS://Example.COM:443/Path?q=1#section",
                         title="  Example  ", description="A page",
                         tags=["Reading", {"name": "web"}], is_public=True, is_favorite=True)
    assert created["url"] == "https://example.com/Path?q=1#section"
    assert created["title"] == "Example"
    assert created["is_public"] is True
    assert created["is_favorite"] is True
    assert [t["name"] for t in created["tags"]] == ["Reading", "web"]
    assert re.fullmatch(r"#[0-9a-f]{6}", created["tags"][0]["color"])
    assert created["created_at"].endswith("Z")
    assert created["deleted_at"] is None
    assert created["fetch_status"] == "skipped"  # FETCH_METADATA is off here

    path = f"/bookmarks/{created['id']}"
    assert api.get(path).get_json() == created

    read = api.patch(path, {"is_read": True}).get_json()
    assert read["is_read"] is True
    assert read["read_at"] is not None
    assert read["is_favorite"] is True
    assert read["title"] == "Example"  # untouched
    unflagged = api.patch(path, {"is_favorite": False, "is_read": False, "is_public": None,
                                 "description": None, "tags": []}).get_json()
    assert unflagged["is_favorite"] is False
    assert unflagged["is_public"] is False
    assert unflagged["is_read"] is False
    assert unflagged["read_at"] is None
    assert unflagged["description"] == ""
    assert unflagged["tags"] == []

    put = api.put(path, {"title": "Renamed", "id": 999, "created_at": "x"}).get_json()
    assert put["title"] == "Renamed"
    assert put["id"] == created["id"]  # unknown fields ignored
    assert api.get(path).get_json()["title"] == "Renamed"

    deleted = api.delete(path)
    assert deleted.status_code == 200
    assert deleted.get_json()["type"] == "bookmark"
    assert api.get(path).status_code == 404
    assert api.patch(path, {"title": "x"}).status_code == 404
    assert api.get("/bookmarks").get_json() == []


def test_the_extension_saves_with_a_bookmarks_write_key(api):
    key, _ = api.actions.create_key(api.token, ["bookmarks:write"])
    response = api.actions.api("POST", "/bookmarks", key, json={
        "title": "Saved page", "url": "https://example.com/article", "description": "",
        "tags": [{"name": "from-extension"}, "later"], "is_public": False})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["title"] == "Saved page"
    assert {t["name"] for t in body["tags"]} == {"from-extension", "later"}
    listing = api.actions.api("GET", "/bookmarks", key)
    assert listing.status_code == 200
    assert [b["id"] for b in listing.get_json()] == [body["id"]]
    notes_key, _ = api.actions.create_key(api.token, ["notes:write"])
    assert api.actions.api("GET", "/bookmarks", notes_key).status_code == 403
    assert api.actions.api("POST", "/bookmarks", notes_key,
                           json={"url": "https://x.example"}).status_code == 403


@pytest.mark.parametrize(("given", "expected"), [
    ("https://example.com", "https://example.com/"),
    ("HTTP://EXAMPLE.com:80/A/b?X=1#frag", "http://example.com/A/b?X=1#frag"),
    ("https://example.com/a#", "https://example.com/a"),
    ("https://app.example.com/#/inbox/42", "https://app.example.com/#/inbox/42"),
    ("https://app.example.com#/Settings", "https://app.example.com/#/Settings"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("http://example.com:443/x", "http://example.com:443/x"),
    ("example.com/page", "https://example.com/page"),
    ("  https://example.com./x  ", "https://example.com/x"),
    ("https://user:pw@Example.com/", "https://user:pw@example.com/"),
    ("http://[2001:DB8::1]:80/", "http://[2001:db8::1]/"),
    ("https://bücher.example/ä", "https://bücher.example/ä"),
])
def test_urls_are_normalized(given, expected):
    assert items.normalize_url(given) == expected


@pytest.mark.parametrize(("given", "reason"), [
    ("", "required"), ("   ", "required"), (None, "required"), (42, "required"),
    ("ftp://example.com/file", "not_allowed"), ("javascript:alert(1)", "not_allowed"),
    ("mailto:me@example.com", "not_allowed"), ("file:///etc/passwd", "not_allowed"),
    ("http://", "invalid"), ("https://exa mple.com", "invalid"),
    ("http://example.com:99999/", "invalid"), ("https://x.example/" + "a" * 5000, "too_long"),
])
def test_bad_urls_are_refused_with_a_reason(given, reason):
    with pytest.raises(items.InvalidInput) as refused:
        items.normalize_url(given)
    assert refused.value.field == "url"
    assert refused.value.reason == reason


def test_duplicate_urls_answer_409_with_the_saved_bookmark(api):
    first = api.create("bookmarks", url="https://example.com/a", tags=["x"])
    again = api.post("/bookmarks", {"url": "HTTPS://EXAMPLE.COM/a#", "title": "Again"})
    assert again.status_code == 409
    body = again.get_json()
    assert body["field"] == "url"
    assert body["reason"] == "duplicate"
    assert body["error"]
    assert body["duplicate"]["id"] == first["id"]
    assert body["duplicate"]["tags"][0]["name"] == "x"

    allowed = api.post("/bookmarks?allow_duplicate=true", {"url": "https://example.com/a"})
    assert allowed.status_code == 201
    in_body = api.post("/bookmarks", {"url": "https://example.com/a", "allow_duplicate": True})
    assert in_body.status_code == 201
    assert len(api.get("/bookmarks?url=https://EXAMPLE.com/a").get_json()) == 3

    other = api.create("bookmarks", url="https://example.com/b")
    clash = api.patch(f"/bookmarks/{other['id']}", {"url": "https://example.com/a"})
    assert clash.status_code == 409
    assert clash.get_json()["duplicate"]["id"] == first["id"]

    trashed = api.create("bookmarks", url="https://example.com/c")
    api.delete(f"/bookmarks/{trashed['id']}")
    assert api.post("/bookmarks", {"url": "https://example.com/c"}).status_code == 201


# -------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("path", "body", "field", "reason"), [
    ("/bookmarks", {}, "url", "required"),
    ("/bookmarks", {"url": "ftp://example.com"}, "url", "not_allowed"),
    ("/bookmarks", {"url": "https://x.example", "is_favorite": "yes"}, "is_favorite",
     "invalid"),
    ("/bookmarks", {"url": "https://x.example", "title": "t" * 501}, "title", "too_long"),
    ("/bookmarks", {"url": "https://x.example", "tags": [1]}, "tags", "invalid"),
    ("/bookmarks", {"url": "https://x.example", "tags": ["a,b"]}, "tags", "invalid"),
    ("/bookmarks", {"url": "https://x.example", "tags": ["x" * 65]}, "tags", "too_long"),
    ("/bookmarks", {"url": "https://x.example", "tags": "   "}, None, None),
    ("/tasks", {}, "title", "required"),
    ("/tasks", {"title": "   "}, "title", "required"),
    ("/tasks", {"title": "t", "status": "done"}, "status", "not_allowed"),
    ("/tasks", {"title": "t", "priority": "critical"}, "priority", "not_allowed"),
    ("/tasks", {"title": "t", "progress": 101}, "progress", "out_of_range"),
    ("/tasks", {"title": "t", "progress": "50"}, "progress", "invalid"),
    ("/tasks", {"title": "t", "progress": True}, "progress", "invalid"),
    ("/tasks", {"title": "t", "due_date": "tomorrow"}, "due_date", "invalid"),
    ("/tasks", {"title": "t", "parent_id": "1"}, "parent_id", "invalid"),
    ("/tasks", {"title": "t", "parent_id": 999}, "parent_id", "not_found"),
    ("/notes", {"content": "no title"}, "title", "required"),
    ("/notes", {"title": "n", "is_pinned": 1}, "is_pinned", "invalid"),
    ("/tags", {"name": ""}, "name", "required"),
    ("/tags", {"name": "ok", "color": "red"}, "color", "invalid"),
])
def test_validation_errors_are_400_with_field_and_reason(api, path, body, field, reason):
    response = api.post(path, body)
    if field is None:  # accepted: an empty tag string means no tags
        assert response.status_code == 201
        return
    assert response.status_code == 400, response.get_json()
    answer = response.get_json()
    assert answer["field"] == field
    assert answer["reason"] == reason
    assert answer["error"]


def test_bad_bodies_are_refused_clearly(api):
    client, headers = api.actions.client, bearer(api.token)
    not_json = client.post("/api/v1/bookmarks", data="{not json", headers=headers,
                           content_type="application/json")
    assert not_json.status_code == 400
    assert "JSON" in not_json.get_json()["error"]
    form = client.post("/api/v1/bookmarks", data={"url": "https://x.example"}, headers=headers)
    assert form.status_code == 415
    assert "application/json" in form.get_json()["error"]
    empty = client.post("/api/v1/bookmarks", headers=headers)
    assert empty.status_code == 400
    array = client.post("/api/v1/notes", json=["a"], headers=headers)
    assert array.status_code == 400
    assert "object" in array.get_json()["error"]


def test_unknown_ids_are_404(api):
    for method, path in [("GET", "/bookmarks/999"), ("PATCH", "/tasks/999"),
                         ("DELETE", "/notes/999"), ("GET", "/tags/999"),
                         ("POST", "/trash/bookmark/999/restore"),
                         ("DELETE", "/trash/task/999"), ("POST", "/trash/gadget/1/restore"),
                         ("POST", "/tasks/999/complete")]:
        response = api(method, path, json={"title": "x"})
        assert response.status_code == 404, (method, path)
        assert "error" in response.get_json()


# ----------------------------------------------------------------------------------- tasks


def test_completed_at_is_maintained_automatically(api):
    task = api.create("tasks", title="Write report", priority="high", due_date="2030-01-31",
                      description="Quarterly", tags=["work"])
    assert task["status"] == "pending"
    assert task["completed_at"] is None
    assert task["due_date"] == "2030-01-31T00:00:00Z"
    assert task["progress"] == 0
    path = f"/tasks/{task['id']}"

    started = api.patch(path, {"status": "in_progress", "progress": 40}).get_json()
    assert started["completed_at"] is None
    assert started["progress"] == 40
    done = api.patch(path, {"status": "completed"}).get_json()
    assert done["completed_at"] is not None
    assert done["progress"] == 100
    again = api.patch(path, {"status": "completed", "title": "Report"}).get_json()
    assert again["completed_at"] == done["completed_at"]
    reopened = api.patch(path, {"status": "pending"}).get_json()
    assert reopened["completed_at"] is None
    completed = api.post(f"{path}/complete").get_json()
    assert completed["status"] == "completed"
    assert completed["completed_at"] is not None
    cancelled = api.patch(path, {"status": "cancelled", "due_date": None}).get_json()
    assert cancelled["completed_at"] is None
    assert cancelled["due_date"] is None

    partial = api.create("tasks", title="Half done", status="completed", progress=50)
    assert partial["completed_at"] is not None
    assert partial["progress"] == 50


def test_subtasks_are_one_level_deep(api):
    parent = api.create("tasks", title="Move house")
    child = api.create("tasks", title="Pack books", parent_id=parent["id"])
    assert child["parent_id"] == parent["id"]
    deeper = api.post("/tasks", {"title": "Find boxes", "parent_id": child["id"]})
    assert deeper.status_code == 400
    assert deeper.get_json()["field"] == "parent_id"
    assert deeper.get_json()["reason"] == "too_deep"
    other = api.create("tasks", title="Other")
    adopt = api.patch(f"/tasks/{parent['id']}", {"parent_id": other["id"]})
    assert adopt.status_code == 400
    assert adopt.get_json()["reason"] == "too_deep"
    itself = api.patch(f"/tasks/{other['id']}", {"parent_id": other["id"]})
    assert itself.status_code == 400
    fetched = api.get(f"/tasks/{parent['id']}").get_json()
    assert [s["id"] for s in fetched["subtasks"]] == [child["id"]]
    assert api.get("/tasks?parent_id=none").headers["X-Total-Count"] == "2"
    assert [t["id"] for t in api.get(f"/tasks?parent_id={parent['id']}").get_json()] == [
        child["id"]]
    moved = api.patch(f"/tasks/{child['id']}", {"parent_id": None}).get_json()
    assert moved["parent_id"] is None


def test_task_lists_carry_each_tasks_live_subtasks(api):
    parent = api.create("tasks", title="Move house")
    done = api.create("tasks", title="Pack books", parent_id=parent["id"], status="completed")
    open_ = api.create("tasks", title="Book a van", parent_id=parent["id"])
    trashed = api.create("tasks", title="Old idea", parent_id=parent["id"])
    api.delete(f"/tasks/{trashed['id']}")
    alone = api.create("tasks", title="Water plants")
    listed = {t["id"]: t for t in api.get("/tasks?parent_id=none").get_json()}
    assert [(s["id"], s["status"]) for s in listed[parent["id"]]["subtasks"]] == [
        (done["id"], "completed"), (open_["id"], "pending")]
    assert listed[alone["id"]]["subtasks"] == []
    single = api.get(f"/tasks/{done['id']}").get_json()
    single.pop("subtasks")
    assert listed[parent["id"]]["subtasks"][0] == single  # the same shape as GET /tasks/{id}


def test_deleting_a_task_takes_its_subtasks_to_the_trash_and_back(api):
    parent = api.create("tasks", title="Trip")
    kept = api.create("tasks", title="Book hotel", parent_id=parent["id"])
    earlier = api.create("tasks", title="Old idea", parent_id=parent["id"])
    api.delete(f"/tasks/{earlier['id']}")
    api.delete(f"/tasks/{parent['id']}")
    assert api.get("/tasks").get_json() == []
    stuck = api.post(f"/trash/task/{kept['id']}/restore")
    assert stuck.status_code == 409
    assert stuck.get_json()["field"] == "parent_id"
    restored = api.post(f"/trash/task/{parent['id']}/restore")
    assert restored.status_code == 200
    live = {t["id"] for t in api.get("/tasks").get_json()}
    assert live == {parent["id"], kept["id"]}  # the one deleted before stays in the trash
    api.delete(f"/tasks/{parent['id']}")
    # Purging a task purges every subtask, the one trashed on its own too.
    assert api.delete(f"/trash/task/{parent['id']}").get_json()["purged"] == 3
    assert not Task.select().exists()
    assert api.get("/trash").get_json() == []


def test_a_subtask_restored_under_a_parent_turned_subtask_comes_back_on_top(api):
    parent = api.create("tasks", title="Project")
    child = api.create("tasks", title="Step", parent_id=parent["id"])
    holder = api.create("tasks", title="Programme")
    refused = api.patch(f"/tasks/{parent['id']}", {"parent_id": holder["id"]})
    assert refused.status_code == 400  # it has a subtask
    api.delete(f"/tasks/{child['id']}")
    assert api.patch(f"/tasks/{parent['id']}", {"parent_id": holder["id"]}).status_code == 200
    back = api.post(f"/trash/task/{child['id']}/restore").get_json()
    assert back["parent_id"] is None  # one level only, still


# ----------------------------------------------------------------------------------- notes


def test_notes_round_trip_and_render_safely(api):
    note = api.create("notes", title="Ideas", content="# Plan\n\n<script>alert(1)</script>\n\n"
                      "[x](javascript:alert(1)) **ok**", tags=["plans"])
    assert "<h1>Plan</h1>" in note["content_html"]
    assert "<script" not in note["content_html"]
    assert "javascript:" not in re.sub(
        r"&lt;.*?&gt;|\[x\]\(javascript:alert\(1\)\)", "", note["content_html"])
    assert note["is_pinned"] is False
    pinned = api.patch(f"/notes/{note['id']}", {"is_pinned": True}).get_json()
    assert pinned["is_pinned"] is True
    assert pinned["content"] == note["content"]
    unpinned = api.patch(f"/notes/{note['id']}", {"is_pinned": False}).get_json()
    assert unpinned["is_pinned"] is False
    preview = api.post("/notes/preview", {"content": "*hi* <img src=x onerror=alert(1)>"})
    assert preview.status_code == 200
    assert preview.get_json()["html"] == "<p><em>hi</em> &lt;img src=x onerror=alert(1)&gt;</p>\n"


def test_notes_list_pinned_first_by_default(clocked):
    api = clocked.api
    first = api.create("notes", title="first")
    clocked.advance(10)
    pinned = api.create("notes", title="pinned", is_pinned=True)
    clocked.advance(10)
    last = api.create("notes", title="last")
    assert [n["id"] for n in api.get("/notes").get_json()] == [pinned["id"], last["id"],
                                                               first["id"]]
    assert [n["id"] for n in api.get("/notes?sort=created_at").get_json()] == [
        first["id"], pinned["id"], last["id"]]


# ------------------------------------------------------------------------------------ tags


def test_tags_are_normalized_and_case_insensitive(api):
    first = api.create("bookmarks", url="https://a.example", tags=["  Deep   Work ", "deep work"])
    assert [t["name"] for t in first["tags"]] == ["Deep Work"]
    second = api.create("notes", title="n", tags=["DEEP WORK", "#idea"])
    assert {t["name"] for t in second["tags"]} == {"Deep Work", "#idea"}
    assert first["tags"][0]["id"] in {t["id"] for t in second["tags"]}
    tags = api.get("/tags").get_json()
    assert [(t["name"], t["count"]) for t in tags] == [("#idea", 1), ("Deep Work", 2)]
    assert tags[1]["counts"]["bookmark"] == 1
    assert tags[1]["counts"]["note"] == 1
    duplicate = api.post("/tags", {"name": "deep WORK"})
    assert duplicate.status_code == 409
    assert duplicate.get_json()["field"] == "name"
    made = api.create("tags", name="Blue", color="#ABC")
    assert made["color"] == "#aabbcc"
    assert made["count"] == 0


def test_tags_belong_to_one_user(two_users):
    owner, ann = two_users
    mine = owner.create("bookmarks", url="https://a.example", tags=["shared-name"])
    hers = ann.create("bookmarks", url="https://a.example", tags=["Shared-Name"])
    assert mine["tags"][0]["id"] != hers["tags"][0]["id"]
    assert [t["count"] for t in ann.get("/tags").get_json()] == [1]
    assert [b["id"] for b in ann.get("/bookmarks?tag=shared-name").get_json()] == [hers["id"]]
    assert ann.get("/bookmarks").headers["X-Total-Count"] == "1"
    assert ann.get(f"/tags/{mine['tags'][0]['id']}").status_code == 404
    merge = ann.post(f"/tags/{hers['tags'][0]['id']}/merge", {"into": mine["tags"][0]["id"]})
    assert merge.status_code == 400
    assert merge.get_json()["field"] == "into"
    assert ann.get("/dashboard/stats").get_json()["totalBookmarks"] == 1
    with changes.use_pipeline(pipeline_of(owner.actions.app)):
        assert items.set_tags(1, "bookmark", mine["id"], ["x"])  # the owner may
        with pytest.raises(items.NotFound):
            items.set_tags(2, "bookmark", mine["id"], ["x"])  # ann may not tag the owner's


def test_rename_merge_and_delete_tags(api):
    one = api.create("bookmarks", url="https://one.example", tags=["python", "py"])
    two = api.create("tasks", title="learn", tags=["py"])
    three = api.create("notes", title="n", tags=["python"])
    tags = {t["name"]: t for t in api.get("/tags").get_json()}
    py, python = tags["py"], tags["python"]

    clash = api.patch(f"/tags/{py['id']}", {"name": "PYTHON"})
    assert clash.status_code == 409
    assert clash.get_json()["field"] == "name"
    recased = api.patch(f"/tags/{python['id']}", {"name": "Python", "color": "#112233"})
    assert recased.status_code == 200
    assert recased.get_json()["name"] == "Python"
    assert recased.get_json()["color"] == "#112233"

    merged = api.post(f"/tags/{py['id']}/merge", {"into": python["id"]})
    assert merged.status_code == 200
    assert merged.get_json()["count"] == 3
    assert merged.get_json()["counts"]["task"] == 1
    assert api.get(f"/tags/{py['id']}").status_code == 404
    assert [t["name"] for t in api.get(f"/bookmarks/{one['id']}").get_json()["tags"]] == [
        "Python"]
    assert [t["name"] for t in api.get(f"/tasks/{two['id']}").get_json()["tags"]] == ["Python"]
    assert api.post(f"/tags/{python['id']}/merge", {"into": python["id"]}).status_code == 400
    assert api.post(f"/tags/{python['id']}/merge", {}).status_code == 400

    api.delete(f"/notes/{three['id']}")
    assert api.get(f"/tags/{python['id']}").get_json()["count"] == 2  # trash not counted
    assert api.delete(f"/tags/{python['id']}").status_code == 200
    assert api.get(f"/bookmarks/{one['id']}").get_json()["tags"] == []
    assert api.get("/tags").get_json() == []
    assert ItemTag.select().count() == 0


def test_tag_and_trash_writes_need_the_right_scopes(api):
    actions = api.actions
    bookmarks_key, _ = actions.create_key(api.token, ["bookmarks:write"])
    reader, _ = actions.create_key(api.token, ["read"])
    everything, _ = actions.create_key(api.token, ["*"])
    writers, _ = actions.create_key(api.token, ["bookmarks:write", "tasks:write",
                                                "notes:write", "files:write"])
    tag = api.create("tags", name="t")
    bookmark = api.create("bookmarks", url="https://x.example")
    note = api.create("notes", title="n")
    api.delete(f"/bookmarks/{bookmark['id']}")
    api.delete(f"/notes/{note['id']}")

    def status(key, method, path, json=None):
        return actions.api(method, path, key, json=json).status_code

    assert status(reader, "GET", "/tags") == 200
    assert status(reader, "GET", "/trash") == 200
    assert status(reader, "GET", "/dashboard/stats") == 200
    assert status(reader, "POST", "/tags", {"name": "r"}) == 403
    assert status(bookmarks_key, "POST", "/tags", {"name": "b"}) == 201
    assert status(bookmarks_key, "PATCH", f"/tags/{tag['id']}", {"name": "u"}) == 403
    assert status(bookmarks_key, "DELETE", f"/tags/{tag['id']}") == 403
    assert status(bookmarks_key, "DELETE", "/trash") == 403
    assert status(bookmarks_key, "POST", f"/trash/note/{note['id']}/restore") == 403
    assert status(bookmarks_key, "POST", f"/trash/bookmark/{bookmark['id']}/restore") == 200
    assert status(writers, "PATCH", f"/tags/{tag['id']}", {"name": "u"}) == 200
    assert status(everything, "DELETE", f"/tags/{tag['id']}") == 200
    assert status(everything, "DELETE", "/trash") == 200

    # Every view guarded by several scopes refuses read keys on writes.
    app = actions.app
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not getattr(view, "auth_scopes", None):
            continue
        path = re.sub(r"<(?:int|id):[^>]+>", "1", rule.rule)
        path = re.sub(r"<[^>]+>", "bookmark", path)
        for method in rule.methods - {"HEAD", "OPTIONS", "GET"}:
            response = app.test_client().open(path, method=method, headers=bearer(reader))
            assert response.status_code == 403, (rule.rule, method)


# ----------------------------------------------------------------------------------- trash


def test_trash_lists_restores_purges_and_empties(api):
    bookmark = api.create("bookmarks", url="https://gone.example", tags=["keep"])
    task = api.create("tasks", title="gone")
    note = api.create("notes", title="gone", tags=["keep"])
    for collection, item in (("bookmarks", bookmark), ("tasks", task), ("notes", note)):
        assert api.delete(f"/{collection}/{item['id']}").status_code == 200
    trash = api.get("/trash")
    assert trash.headers["X-Total-Count"] == "3"
    entries = trash.get_json()
    assert {(e["type"], e["id"]) for e in entries} == {
        ("bookmark", bookmark["id"]), ("task", task["id"]), ("note", note["id"])}
    for entry in entries:
        assert entry["title"]
        assert entry["deleted_at"]
        assert entry["purge_at"]
        assert entry["item"]["deleted_at"] == entry["deleted_at"]
    assert [e["type"] for e in api.get("/trash?type=note").get_json()] == ["note"]
    assert api.get("/dashboard/stats").get_json()["trashCount"] == 3

    restored = api.post(f"/trash/bookmark/{bookmark['id']}/restore")
    assert restored.status_code == 200
    assert restored.get_json()["deleted_at"] is None
    assert restored.get_json()["tags"][0]["name"] == "keep"  # tags survive the trash
    assert api.get(f"/bookmarks/{bookmark['id']}").status_code == 200
    assert api.post(f"/trash/bookmark/{bookmark['id']}/restore").status_code == 404
    assert api.delete(f"/trash/bookmark/{bookmark['id']}").status_code == 404  # not in trash

    purged = api.delete(f"/trash/note/{note['id']}")
    assert purged.status_code == 200
    assert purged.get_json()["purged"] == 1
    assert api.post(f"/trash/note/{note['id']}/restore").status_code == 404
    assert not ItemTag.select().where((ItemTag.item_type == "note")
                                      & (ItemTag.item_id == note["id"])).exists()

    emptied = api.delete("/trash")
    assert emptied.status_code == 200
    assert emptied.get_json()["purged"] == 1
    assert api.get("/trash").get_json() == []
    assert Tag.select().count() == 1
    assert Bookmark.select().count() == 1


def test_trash_is_purged_after_the_retention(clocked):
    api = clocked.api
    old = api.create("notes", title="old")
    api.delete(f"/notes/{old['id']}")
    clocked.advance(10 * DAY)
    newer = api.create("bookmarks", url="https://newer.example", tags=["t"])
    api.delete(f"/bookmarks/{newer['id']}")
    clocked.advance(19 * DAY)
    entries = api.get("/trash").get_json()
    assert [e["id"] for e in entries] == [newer["id"], old["id"]]
    assert entries[1]["purge_at"] < entries[0]["purge_at"]

    clocked.advance(1 * DAY + 1)  # the note has been in the trash for 30 days
    assert api.post(f"/trash/note/{old['id']}/restore").status_code == 404
    assert [e["id"] for e in api.get("/trash").get_json()] == [newer["id"]]

    clocked.advance(5 * DAY)
    with changes.use_pipeline(pipeline_of(clocked.app)):
        assert items.purge_expired(clocked.clock.now(), 30 * DAY) == 0
        clocked.advance(5 * DAY)
        assert items.purge_expired(clocked.clock.now(), 30 * DAY) == 1
    assert api.get("/trash").get_json() == []
    assert not ItemTag.select().exists()
    assert items.purge_expired(clocked.clock.now(), 0) == 0  # 0: never


def test_expired_trash_is_purged_at_start_up(make_app, clocked):
    api = clocked.api
    note = api.create("notes", title="old")
    api.delete(f"/notes/{note['id']}")
    clocked.advance(31 * DAY)
    config = {"CLOCK": clocked.clock, "TRASH_RETENTION_DAYS": 30}
    if clocked.backend == "redis":
        config.update(REDIS_URL=clocked.app.config["REDIS_URL"],
                      KEY_PREFIX=clocked.app.config["KEY_PREFIX"])
    assert [e.item.id for e in items.list_trash(1)] == [note["id"]]
    make_app(**config)
    assert not Note.select().exists()
    assert items.list_trash(1) == []


def test_trash_retention_of_zero_keeps_items(make_app):
    app = make_app(TRASH_RETENTION_DAYS=0)
    _, api = prepare(app)
    note = api.create("notes", title="kept")
    api.delete(f"/notes/{note['id']}")
    entry = api.get("/trash").get_json()[0]
    assert entry["id"] == note["id"]
    assert entry["purge_at"] is None


# ------------------------------------------------------------------------------ lists


def test_paging_headers_and_limits(api):
    ids = [api.create("bookmarks", url=f"https://example.com/{n}")["id"] for n in range(7)]
    first = api.get("/bookmarks?limit=3")
    assert first.status_code == 200
    assert [b["id"] for b in first.get_json()] == ids[::-1][:3]
    assert first.headers["X-Total-Count"] == "7"
    links = {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"',
                                                         first.headers["Link"])}
    assert set(links) == {"first", "next", "last"}
    assert "offset=3" in links["next"]
    assert "limit=3" in links["next"]
    assert "offset=6" in links["last"]
    last = api.get("/bookmarks?limit=3&offset=6")
    assert [b["id"] for b in last.get_json()] == [ids[0]]
    assert 'rel="prev"' in last.headers["Link"]
    assert 'rel="next"' not in last.headers["Link"]
    beyond = api.get("/bookmarks?offset=50")
    assert beyond.get_json() == []
    assert beyond.headers["X-Total-Count"] == "7"
    for bad in ("limit=0", "limit=201", "limit=x", "offset=-1"):
        response = api.get(f"/bookmarks?{bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["field"] == bad.split("=")[0]
    assert len(api.get("/bookmarks?limit=200").get_json()) == 7
    with changes.use_pipeline(pipeline_of(api.actions.app)):
        for n in range(7, 55):
            items.create_bookmark(1, {"url": f"https://example.com/{n}"}, now=float(n))
    assert len(api.get("/bookmarks").get_json()) == items.DEFAULT_LIMIT


def test_filters_and_sorting(clocked):
    api = clocked.api
    a = api.create("bookmarks", url="https://a.example", title="banana", tags=["fruit", "y"],
                   is_favorite=True)
    clocked.advance(DAY)
    b = api.create("bookmarks", url="https://b.example", title="Apple", tags=["fruit"],
                   is_read=True)
    clocked.advance(DAY)
    c = api.create("bookmarks", url="https://c.example", title="cherry")

    def ids(path):
        response = api.get(path)
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()]

    assert ids("/bookmarks") == [c["id"], b["id"], a["id"]]
    assert ids("/bookmarks?sort=title") == [b["id"], a["id"], c["id"]]
    assert ids("/bookmarks?sort=-title") == [c["id"], a["id"], b["id"]]
    assert ids("/bookmarks?favorite=true") == [a["id"]]
    assert ids("/bookmarks?favorite=false&read=false") == [c["id"]]
    assert ids("/bookmarks?read=1") == [b["id"]]
    assert ids("/bookmarks?tag=fruit") == [b["id"], a["id"]]
    assert ids("/bookmarks?tag=FRUIT&tag=y") == [a["id"]]
    assert ids("/bookmarks?tag=fruit,y") == [a["id"]]
    assert ids("/bookmarks?tag=nothing") == []
    created_b = api.get(f"/bookmarks/{b['id']}").get_json()["created_at"]
    assert ids(f"/bookmarks?created_after={created_b}") == [c["id"], b["id"]]
    assert ids(f"/bookmarks?created_before={created_b}") == [a["id"]]
    assert ids(f"/bookmarks?created_after={created_b[:10]}&sort=created_at") == [b["id"],
                                                                                 c["id"]]
    assert ids("/bookmarks?sort=read_at") == [b["id"], c["id"], a["id"]]  # empty last

    low = api.create("tasks", title="low", priority="low", due_date="2031-01-01")
    urgent = api.create("tasks", title="urgent", priority="urgent", status="in_progress")
    high = api.create("tasks", title="high", priority="high", due_date="2030-06-01",
                      status="completed")
    assert ids("/tasks?sort=-priority") == [urgent["id"], high["id"], low["id"]]
    assert ids("/tasks?sort=priority") == [low["id"], high["id"], urgent["id"]]
    assert ids("/tasks?sort=due_date") == [high["id"], low["id"], urgent["id"]]
    assert ids("/tasks?sort=-due_date") == [low["id"], high["id"], urgent["id"]]
    assert ids("/tasks?status=pending,in_progress&sort=title") == [low["id"], urgent["id"]]
    assert ids("/tasks?priority=high") == [high["id"]]
    assert ids("/tasks?due_before=2031-01-01") == [high["id"]]
    assert ids("/tasks?due_after=2030-12-31&sort=created_at") == [low["id"]]
    assert ids("/tasks?sort=status,title") == [low["id"], urgent["id"], high["id"]]

    for bad, field in (("/bookmarks?sort=password", "sort"), ("/tasks?status=done", "status"),
                       ("/bookmarks?favorite=maybe", "favorite"),
                       ("/bookmarks?created_after=yesterday", "created_after"),
                       ("/notes?sort=-url", "sort"), ("/tasks?parent_id=x", "parent_id")):
        response = api.get(bad)
        assert response.status_code == 400, bad
        assert response.get_json()["field"] == field


# ------------------------------------------------------------------------------ dashboard


def test_dashboard_stats_in_the_original_shape(clocked):
    api = clocked.api
    empty = api.get("/dashboard/stats").get_json()
    assert {k: empty[k] for k in ("totalBookmarks", "totalTasks", "totalFiles", "totalNotes",
                                  "recentActivity")} == {
        "totalBookmarks": 0, "totalTasks": 0, "totalFiles": 0, "totalNotes": 0,
        "recentActivity": []}
    bookmark = api.create("bookmarks", url="https://a.example", title="A page")
    clocked.advance(60)
    task = api.create("tasks", title="Do it")
    clocked.advance(60)
    note = api.create("notes", title="Thoughts")
    clocked.advance(60)
    api.patch(f"/bookmarks/{bookmark['id']}", {"is_read": True})
    gone = api.create("tasks", title="Gone")
    api.delete(f"/tasks/{gone['id']}")

    stats = api.get("/dashboard/stats").get_json()
    assert (stats["totalBookmarks"], stats["totalTasks"], stats["totalNotes"]) == (1, 1, 1)
    assert stats["totalFiles"] == 0
    activity = stats["recentActivity"]
    assert [(a["type"], a["id"]) for a in activity] == [
        ("bookmark", bookmark["id"]), ("note", note["id"]), ("task", task["id"])]
    assert set(activity[0]) >= {"id", "type", "title", "timestamp"}
    assert activity[0]["title"] == "A page"
    assert activity[0]["action"] == "updated"
    assert activity[1]["action"] == "created"
    assert activity[0]["timestamp"] > activity[1]["timestamp"] > activity[2]["timestamp"]
    assert stats["tasksByStatus"]["pending"] == 1
    assert stats["unreadBookmarks"] == 0
    assert stats["trashCount"] == 1


# ----------------------------------------------------------------------------- change hooks


def test_change_hooks_run_inside_the_write(api):
    seen = []
    hooks = pipeline_of(api.actions.app).in_transaction

    def record(change):
        seen.append((change.action, change.item_type, change.id, change.user_id))

    hooks.append(record)
    try:
        bookmark = api.create("bookmarks", url="https://hooked.example", tags=["h"])
        api.patch(f"/bookmarks/{bookmark['id']}", {"title": "t"})
        api.delete(f"/bookmarks/{bookmark['id']}")
        api.post(f"/trash/bookmark/{bookmark['id']}/restore")
        api.delete(f"/bookmarks/{bookmark['id']}")
        api.delete(f"/trash/bookmark/{bookmark['id']}")
    finally:
        hooks.remove(record)
    ops = [(op, kind) for op, kind, _, _ in seen]
    assert ops == [("created", "tag"), ("created", "bookmark"), ("updated", "bookmark"),
                   ("deleted", "bookmark"), ("restored", "bookmark"), ("deleted", "bookmark"),
                   ("purged", "bookmark")]
    assert all(user_id == 1 for *_, user_id in seen)

    def refuse(change):
        raise RuntimeError("index unavailable")

    hooks.append(refuse)
    try:
        failed = api.post("/notes", {"title": "never saved"})
    finally:
        hooks.remove(refuse)
    assert failed.status_code == 500
    assert api.get("/notes").get_json() == []  # the hook's failure rolled the write back


def test_concurrent_writers_share_tags_without_errors(api):
    """Threads saving tagged items at once: one tag per name, no "database is locked"."""
    db = api.actions.app.extensions["trackeep"].db
    errors = []

    def save(worker):
        try:
            with connection(db), changes.use_pipeline(pipeline_of(api.actions.app)):
                for n in range(8):
                    items.create_bookmark(1, {"url": f"https://w{worker}.example/{n}",
                                              "tags": ["shared", f"w{worker}"]}, now=1.0)
                    items.create_note(1, {"title": f"{worker}-{n}", "tags": ["Shared"]},
                                      now=1.0)
        except Exception as exc:  # collected: an assertion in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    counts = {t["name"]: t["count"] for t in api.get("/tags").get_json()}
    assert counts["shared"] == 96
    assert len(counts) == 7

"""Deleting an account (an admin deletes a user; a user deletes their own, with the password
and a 2FA code): every row and blob of theirs goes, every session ends, others' stay."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pyotp
import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, PASSWORD, AuthActions, bearer

from trackeep_desktop import files
from trackeep_desktop.storage.db import connection, is_postgres
from trackeep_desktop.storage.models import (
    ALL_MODELS,
    DurableSession,
    File,
    FileShare,
    ItemTag,
    Tag,
    User,
)

SHARED_BYTES = b"the same bytes in both accounts"


def make_everything(actions, token: str, name: str) -> dict:
    """One of everything a user can have; returns some ids."""
    def post(path, json):
        response = actions.api("POST", path, token, json=json)
        assert response.status_code in (200, 201), (path, response.get_json())
        return response.get_json()

    bookmark = post("/bookmarks", {"url": f"https://example.com/{name}", "tags": ["shared"]})
    task = post("/tasks", {"title": f"task of {name}", "tags": ["t"]})
    post("/tasks", {"title": "a subtask", "parent_id": task["id"]})
    post("/notes", {"title": f"note of {name}", "content": "searchable words", "tags": ["n"]})
    post("/tags", {"name": f"lonely-{name}"})
    post("/time-entries", {"task_id": task["id"], "tags": ["t", "timed"]})
    post("/time-entries", {"start_time": "2026-01-01T10:00:00Z",
                           "end_time": "2026-01-01T11:00:00Z", "bookmark_id": bookmark["id"]})
    post("/search/saved", {"name": "mine", "query": "words"})
    uploaded = []
    for content in (SHARED_BYTES, f"only {name}'s bytes".encode()):
        response = actions.client.post(
            "/api/v1/files/upload", headers=bearer(token),
            data={"file": (io.BytesIO(content), f"{name}.txt"), "tags": "f"},
            content_type="multipart/form-data")
        assert response.status_code == 201, response.get_json()
        uploaded.append(response.get_json())
    post(f"/files/{uploaded[0]['id']}/shares", {})
    post("/api-keys", {"name": "key", "scopes": ["read"]})
    post("/auth/pairing-code", {})
    return {"bookmark": bookmark["id"], "file": uploaded[0]["id"]}


def enable_2fa(actions, token: str, password: str) -> tuple[str, list[str]]:
    secret = actions.api("POST", "/auth/2fa/setup", token,
                         json={"password": password}).get_json()["secret"]
    answer = actions.api("POST", "/auth/2fa/enable", token,
                         json={"code": pyotp.TOTP(secret).now()})
    assert answer.status_code == 200, answer.get_json()
    return secret, answer.get_json()["backup_codes"]


def rows_of(app, user_id: int) -> dict[str, int]:
    """Every row anywhere that belongs to the user, by table (none may be left)."""
    found = {}
    db = app.extensions["trackeep"].db
    with connection(db):
        for model in ALL_MODELS:
            fields = model._meta.fields
            column = ("user" if "user" in fields else "user_id" if "user_id" in fields
                      else "id" if model is User else None)
            if column is None:
                continue
            count = model.select().where(getattr(model, column) == user_id).count()
            if count:
                found[model._meta.table_name] = count
        tags = Tag.select(Tag.id).where(Tag.user == user_id)
        if ItemTag.select().where(ItemTag.tag.in_(tags)).count():
            found["item_tag"] = 1
        user_files = File.select(File.id).where(File.user == user_id)
        if FileShare.select().where(FileShare.file.in_(user_files)).count():
            found["file_share"] = 1
        if not is_postgres(db):
            from trackeep_desktop.search.index import user_rowids

            low, high = user_rowids(user_id)
            left = db.execute_sql("SELECT count(*) FROM search_fts WHERE rowid BETWEEN ? AND ?",
                                  (low, high)).fetchone()[0]
            if left:
                found["search_fts"] = left
    return found


def blob_paths(app) -> set[str]:
    store = files.BlobStore(Path(app.config["DATA_DIR"]) / "files")
    return {sha for sha, _ in store.blobs()}


@pytest.fixture
def world(any_app):
    any_app.config.update(GENEROUS_LIMITS, FETCH_METADATA=False)
    actions = AuthActions(any_app)
    owner, _ = actions.register_owner()
    ann = actions.create_user(owner, "ann")
    bob = actions.create_user(owner, "bob")
    ann_token = actions.token("ann", PASSWORD)
    bob_token = actions.token("bob", PASSWORD)
    make_everything(actions, ann_token, "ann")
    make_everything(actions, bob_token, "bob")
    return any_app, actions, owner, ann, bob, ann_token, bob_token


def test_an_admin_deletes_a_user_and_nothing_of_theirs_is_left(world):
    app, actions, owner, ann, bob, ann_token, bob_token = world
    ann_key = actions.api("POST", "/api-keys", ann_token,
                          json={"name": "k2", "scopes": ["read"]}).get_json()["key"]
    assert set(rows_of(app, ann["id"])) >= {"users", "bookmark", "task", "note", "tag", "file",
                                             "search_document", "saved_search", "api_key",
                                             "pairing_code", "session", "item_tag",
                                             "file_share", "time_entry"}
    blobs_before = blob_paths(app)
    bob_rows = rows_of(app, bob["id"])

    answer = actions.api("DELETE", f"/admin/users/{ann['id']}", owner)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["blobsDeleted"] == 1  # the shared blob stays for bob

    assert rows_of(app, ann["id"]) == {}
    assert rows_of(app, bob["id"]) == bob_rows
    assert len(blobs_before - blob_paths(app)) == 1
    assert actions.api("GET", "/auth/me", ann_token).status_code == 401
    assert actions.api("GET", "/auth/me", ann_key).status_code == 401
    assert actions.login("ann", PASSWORD).status_code == 401
    files_of_bob = actions.api("GET", "/files", bob_token).get_json()
    for item in files_of_bob:
        download = actions.client.get(f"/api/v1/files/{item['id']}/download",
                                      headers=bearer(bob_token))
        assert download.status_code == 200
    search = actions.api("GET", "/search?q=searchable", bob_token)
    assert search.status_code == 200


def test_an_admin_cannot_delete_themselves_or_the_last_admin(world):
    _, actions, owner, *_ = world
    me = actions.api("GET", "/auth/me", owner).get_json()["user"]
    assert actions.api("DELETE", f"/admin/users/{me['id']}", owner).status_code == 403
    assert actions.api("DELETE", "/auth/account", owner,
                       json={"password": OWNER["password"]}).status_code == 403  # last admin
    assert actions.api("GET", "/auth/me", owner).status_code == 200
    assert actions.api("DELETE", "/admin/users/999999", owner).status_code == 404
    ann_token = actions.token("ann", PASSWORD)
    assert actions.api("DELETE", f"/admin/users/{me['id']}", ann_token).status_code == 403


def test_a_user_deletes_their_own_account_with_password_and_2fa(world):
    app, actions, _, ann, _, ann_token, bob_token = world
    secret, backup_codes = enable_2fa(actions, ann_token, PASSWORD)
    other_session = actions.token("ann", PASSWORD,
                                  totp_code=pyotp.TOTP(secret).at(time.time() + 30))
    assert actions.api("DELETE", "/auth/account", ann_token,
                       json={"password": "wrong"}).status_code == 400
    assert actions.api("DELETE", "/auth/account", ann_token,
                       json={"password": PASSWORD}).status_code == 400  # no code
    assert actions.api("GET", "/auth/me", ann_token).status_code == 200
    assert actions.api("DELETE", "/auth/account", ann_token,
                       json={"password": PASSWORD, "totpCode": "000000"}).status_code == 400
    answer = actions.api("DELETE", "/auth/account", ann_token,
                         json={"password": PASSWORD, "totpCode": backup_codes[0]})
    assert answer.status_code == 200, answer.get_json()
    assert rows_of(app, ann["id"]) == {}
    assert actions.api("GET", "/auth/me", other_session).status_code == 401
    assert actions.api("GET", "/auth/me", bob_token).status_code == 200


def test_the_settings_page_deletes_the_account_after_confirmation(world):
    app, actions, _, ann, *_ = world
    browser = actions.browser()
    AuthActions.web_login(browser, "ann", PASSWORD)
    page = browser.get("/settings/security").get_data(as_text=True)
    assert "Delete my account" in page
    unconfirmed = AuthActions.form_post(browser, "/settings/security",
                                        "/settings/account/delete", {"password": PASSWORD})
    assert unconfirmed.status_code == 400
    assert rows_of(app, ann["id"])
    done = AuthActions.form_post(browser, "/settings/security", "/settings/account/delete",
                                 {"password": PASSWORD, "confirm": "on"})
    assert done.status_code == 302
    assert rows_of(app, ann["id"]) == {}
    assert browser.get("/settings/security").status_code == 302  # signed out


def test_deletion_ends_sessions_on_every_instance(make_app, redis_url, key_prefix):
    first = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, **GENEROUS_LIMITS)
    second = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, **GENEROUS_LIMITS)
    a, b = AuthActions(first), AuthActions(second)
    owner, _ = a.register_owner()
    ann = a.create_user(owner, "ann")
    phone = b.token("ann", PASSWORD)
    ended = []
    second.extensions["trackeep"].capabilities.pubsub.subscribe(
        "sessions:ended", lambda channel, message: ended.append(message))
    assert a.api("DELETE", f"/admin/users/{ann['id']}", owner).status_code == 200
    assert b.api("GET", "/auth/me", phone).status_code == 401
    with connection(second.extensions["trackeep"].db):
        assert DurableSession.select().where(DurableSession.user_id == ann["id"]).count() == 0
    deadline = time.time() + 5
    while not ended and time.time() < deadline:
        time.sleep(0.05)
    assert ended, "no sessions-ended announcement reached the other instance"

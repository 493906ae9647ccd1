"""The original Trackeep clients against this server (issue 14): the browser extension's calls
replayed with the exact headers and bodies its ``options.js``, ``popup.js`` and
``background.js`` send (at ``../shared/clients/trackeep-original-extension``), each checked
for the fields it reads; and the mobile app's and web client's other gaps."""

from __future__ import annotations

import hashlib
import io

import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions, bearer, csrf_from

from trackeep_desktop.storage.models import ApiKey

ORIGIN = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
BASE = "/api/v1"  # what the options page stores: http://localhost:8080/api/v1


@pytest.fixture
def world(make_app):
    app = make_app(FETCH_METADATA=False, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    return app, actions, token


def extension_call(app, method, path, token=None, *, json_body=None, data=None,
                   content_type="application/json"):
    """One fetch() of the extension: its headers, from its own origin, no cookies."""
    headers = {"Origin": ORIGIN}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    kwargs = {}
    if json_body is not None:
        import json

        kwargs["data"] = json.dumps(json_body)
    elif data is not None:
        kwargs["data"] = data
    return app.test_client().open(f"{BASE}{path}", method=method, headers=headers, **kwargs)


# ------------------------------------------------------------------- options.js: validate


def test_validate_an_api_key_as_options_js_does(world):
    app, actions, token = world
    key, _ = actions.create_key(token, ["read", "bookmarks:write", "files:write"])
    # validateConnectionToken: a tk_ token goes to /browser-extension/validate
    response = extension_call(app, "GET", "/browser-extension/validate", key)
    assert response.status_code == 200  # response.ok
    payload = response.get_json()
    assert payload["username"] == "owner"  # "Connected as owner"
    assert payload["valid"] is True
    assert payload["user_id"] == actions.api("GET", "/auth/me", token).get_json()["user"]["id"]
    assert sorted(payload["permissions"]) == ["bookmarks:write", "files:write", "read"]
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_validate_a_session_token_as_options_js_does(world):
    app, _, token = world
    # a token that does not start with tk_ goes to /auth/me; it reads payload.username
    response = extension_call(app, "GET", "/auth/me", token)
    assert response.status_code == 200
    assert response.get_json()["username"] == "owner"
    assert response.get_json()["user"]["username"] == "owner"


def test_validate_a_bad_key_fails_as_options_js_expects(world):
    app, _, _ = world
    response = extension_call(app, "GET", "/browser-extension/validate", "tk_pasted-wrong")
    assert response.status_code == 401  # not response.ok: "HTTP 401"
    assert response.get_json() == {"error": "invalid API key"}


# ---------------------------------------------------------------- options.js: generate key


def test_generate_key_exactly_as_options_js_sends_it_is_refused_without_credentials(world):
    """options.js posts no body and no Authorization: no anonymous caller ever gets a key."""
    app, _, _ = world
    response = extension_call(app, "POST", "/auth/generate-key")
    assert response.status_code == 401
    assert response.get_json() == {"error": "authentication required"}
    assert "api_key" not in response.get_json()
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN  # the error is readable
    assert ApiKey.select().count() == 0


def test_generate_key_with_a_session_returns_the_key_once_stored_hashed(world):
    app, actions, token = world
    response = extension_call(app, "POST", "/auth/generate-key", token)
    assert response.status_code == 201
    body = response.get_json()
    raw = body["api_key"]  # what options.js reads and puts in the key field
    assert raw.startswith("tk_")
    assert body["key"] == raw
    assert sorted(body["api_key_info"]["scopes"]) == ["bookmarks:write", "files:write", "read"]
    (row,) = ApiKey.select()
    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in (row.key_hash, row.prefix, row.name)
    listed = actions.api("GET", "/api-keys", token).get_json()["api_keys"]
    assert [k["id"] for k in listed] == [row.id]
    assert "tk_" not in str([k["name"] for k in listed])
    # the key works for what the extension does next
    validated = extension_call(app, "GET", "/browser-extension/validate", raw)
    assert validated.get_json()["username"] == "owner"
    saved = extension_call(app, "POST", "/bookmarks", raw, json_body={
        "title": "T", "url": "https://example.org/generated", "description": "", "tags": [],
        "is_public": False})
    assert saved.status_code == 201
    # a second call makes another key; the first is never shown again
    again = extension_call(app, "POST", "/auth/generate-key", token).get_json()["api_key"]
    assert again != raw
    assert raw not in str(actions.api("GET", "/api-keys", token).get_json())


def test_generate_key_takes_a_name_and_scopes(world):
    app, _, token = world
    response = extension_call(app, "POST", "/auth/generate-key", token,
                              json_body={"name": "Work laptop", "scopes": ["read"]})
    info = response.get_json()["api_key_info"]
    assert info["name"] == "Work laptop"
    assert info["scopes"] == ["read"]
    bad = extension_call(app, "POST", "/auth/generate-key", token,
                         json_body={"scopes": ["everything"]})
    assert bad.status_code == 400
    assert "error" in bad.get_json()
    bad_type = extension_call(app, "POST", "/auth/generate-key", token,
                              json_body={"scopes": 5})
    assert bad_type.status_code == 400


def test_generate_key_by_a_key_needs_the_account_scope_and_cannot_widen_it(world):
    app, actions, token = world
    plain, _ = actions.create_key(token, ["read", "bookmarks:write"])
    assert extension_call(app, "POST", "/auth/generate-key", plain).status_code == 403
    account_only, _ = actions.create_key(token, ["account"])
    widened = extension_call(app, "POST", "/auth/generate-key", account_only)
    assert widened.status_code == 403  # cannot grant read/bookmarks:write/files:write
    narrow = extension_call(app, "POST", "/auth/generate-key", account_only,
                            json_body={"scopes": ["account"]})
    assert narrow.status_code == 201


def test_generate_key_with_the_cookie_needs_csrf_and_the_same_origin(world):
    _, actions, _ = world
    browser = actions.browser()
    AuthActions.web_login(browser, "owner", OWNER["password"])
    assert browser.post(f"{BASE}/auth/generate-key").status_code == 403  # no CSRF token
    csrf = csrf_from(browser.get("/settings/profile").get_data(as_text=True))
    foreign = browser.post(f"{BASE}/auth/generate-key",  # another origin: no credential
                           headers={"Origin": ORIGIN, "X-CSRF-Token": csrf})
    assert foreign.status_code == 401
    assert "session cookie" in foreign.get_json()["error"]
    assert ApiKey.select().count() == 0
    made = browser.post(f"{BASE}/auth/generate-key", headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    assert made.get_json()["api_key"].startswith("tk_")


# ------------------------------------------------------------ popup.js and background.js


def test_save_a_page_with_tags_as_popup_js_does(world):
    app, actions, token = world
    key, _ = actions.create_key(token, ["read", "bookmarks:write", "files:write"])
    payload = {"title": "An article", "url": "https://example.org/article",
               "description": "", "tags": ["reading", "web"], "is_public": False}
    response = extension_call(app, "POST", "/bookmarks", key, json_body=payload)
    assert response.status_code == 201  # response.ok: "Bookmark saved successfully!"
    saved = actions.api("GET", "/bookmarks", token).get_json()
    assert len(saved) == 1
    assert saved[0]["title"] == "An article"
    assert sorted(t["name"] for t in saved[0]["tags"]) == ["reading", "web"]
    assert saved[0]["is_public"] is False


def test_save_a_selection_as_popup_js_does(world):
    """The context menu's selection fills the description; the popup saves a bookmark."""
    app, actions, token = world
    key, _ = actions.create_key(token, ["read", "bookmarks:write"])
    selection = "A quoted paragraph the reader selected.\nWith a second line."
    response = extension_call(app, "POST", "/bookmarks", key, json_body={
        "title": "Page", "url": "https://example.org/quoted", "description": selection,
        "tags": [], "is_public": True})
    assert response.status_code == 201
    (saved,) = actions.api("GET", "/bookmarks", token).get_json()
    assert saved["description"] == selection
    assert saved["is_public"] is True


def test_save_a_youtube_video_as_background_js_does(world):
    app, actions, token = world
    key, _ = actions.create_key(token, ["read", "bookmarks:write"])
    response = extension_call(app, "POST", "/bookmarks", key, json_body={
        "title": "A video", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "description": "Saved from YouTube via Trackeep browser extension",
        "tags": ["youtube", "video"], "is_public": False})
    assert response.status_code == 201
    (saved,) = actions.api("GET", "/bookmarks", token).get_json()
    assert sorted(t["name"] for t in saved["tags"]) == ["video", "youtube"]


def test_a_failed_save_carries_the_error_popup_js_shows(world):
    app, actions, token = world
    key, _ = actions.create_key(token, ["read", "bookmarks:write"])
    payload = {"title": "x", "url": "https://example.org/twice", "description": "",
               "tags": [], "is_public": False}
    assert extension_call(app, "POST", "/bookmarks", key, json_body=payload).status_code == 201
    again = extension_call(app, "POST", "/bookmarks", key, json_body=payload)
    assert again.status_code == 409
    assert isinstance(again.get_json()["error"], str)
    assert again.get_json()["error"].strip()
    bad = extension_call(app, "POST", "/bookmarks", key, json_body={**payload, "url": "ftp://x"})
    assert bad.status_code == 400
    assert bad.get_json()["error"].strip()
    read_only, _ = actions.create_key(token, ["read"])
    refused = extension_call(app, "POST", "/bookmarks", read_only, json_body=payload)
    assert refused.status_code == 403
    assert "scope" in refused.get_json()["error"]


def test_upload_a_file_as_popup_js_does(world):
    app, actions, token = world
    key, _ = actions.create_key(token, ["read", "bookmarks:write", "files:write"])
    client = app.test_client()
    # FormData: file (with its name) and description; fetch sets the multipart boundary
    response = client.post(f"{BASE}/files/upload", headers={
        "Authorization": f"Bearer {key}", "Origin": ORIGIN},
        data={"file": (io.BytesIO(b"hello from the extension\n"), "notes.txt"),
              "description": "From the popup"}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    (listed,) = actions.api("GET", "/files", token).get_json()
    assert listed["name"] == "notes.txt"
    assert listed["description"] == "From the popup"
    failed = client.post(f"{BASE}/files/upload", headers={
        "Authorization": f"Bearer {key}", "Origin": ORIGIN}, data={},
        content_type="multipart/form-data")
    assert failed.status_code == 400
    assert failed.get_json()["error"].strip()


# ------------------------------------------------------------------ the other clients' gaps


def _upload(app, token, content=b"file bytes", name="a.txt"):
    response = app.test_client().post(f"{BASE}/files/upload", headers=bearer(token),
                                      data={"file": (io.BytesIO(content), name)},
                                      content_type="multipart/form-data")
    assert response.status_code == 201
    return response.get_json()


def test_file_download_takes_the_token_as_a_query_parameter(world):
    app, actions, token = world
    record = _upload(app, token, b"secret bytes")
    client = app.test_client()
    url = f"{BASE}/files/{record['id']}/download"
    by_session = client.get(url, query_string={"token": token})
    assert by_session.status_code == 200
    assert by_session.get_data() == b"secret bytes"
    key, _ = actions.create_key(token, ["files:write"])
    assert client.get(url, query_string={"token": key}).get_data() == b"secret bytes"
    assert client.get(url).status_code == 401


@pytest.mark.parametrize("bad", ["tk_not-a-key", "not-a-session", "x" * 300])
def test_file_download_with_a_bad_query_token_is_401(world, bad):
    app, _, token = world
    record = _upload(app, token)
    response = app.test_client().get(f"{BASE}/files/{record['id']}/download",
                                     query_string={"token": bad})
    assert response.status_code == 401
    assert "error" in response.get_json()


def test_query_token_works_nowhere_but_the_download_and_only_on_get(world):
    app, actions, token = world
    record = _upload(app, token)
    client = app.test_client()
    for path in ("/bookmarks", "/auth/me", f"/files/{record['id']}",
                 f"/files/{record['id']}/preview"):
        assert client.get(f"{BASE}{path}", query_string={"token": token}).status_code == 401
    deleted = client.delete(f"{BASE}/files/{record['id']}", query_string={"token": token})
    assert deleted.status_code in (401, 405)
    assert actions.api("GET", f"/files/{record['id']}", token).status_code == 200


def test_query_token_cannot_reach_another_users_file(world):
    app, actions, token = world
    actions.create_user(token, "other")
    other = actions.token("other")
    record = _upload(app, token)
    response = app.test_client().get(f"{BASE}/files/{record['id']}/download",
                                     query_string={"token": other})
    assert response.status_code == 404


def test_the_user_object_answers_both_spellings(world):
    _, actions, token = world
    user = actions.api("GET", "/auth/me", token).get_json()["user"]
    assert user["full_name"] == OWNER["fullName"]
    assert user["fullName"] == OWNER["fullName"]
    assert user["updated_at"] == user["updatedAt"]
    assert user["updated_at"].endswith("Z")
    assert user["created_at"] == user["createdAt"]
    changed = actions.api("PUT", "/auth/profile", token, json={"full_name": "Olive O."})
    assert changed.get_json()["user"]["full_name"] == "Olive O."
    assert changed.get_json()["user"]["fullName"] == "Olive O."


def test_bookmarks_have_favicon_beside_favicon_url(world):
    _, actions, token = world
    created = actions.api("POST", "/bookmarks", token, json={
        "url": "https://example.org/", "favicon_url": "https://example.org/icon.png"})
    assert created.get_json()["favicon"] == "https://example.org/icon.png"
    assert created.get_json()["favicon_url"] == "https://example.org/icon.png"
    (listed,) = actions.api("GET", "/bookmarks", token).get_json()
    assert listed["favicon"] == listed["favicon_url"]


def test_files_have_file_path(world):
    app, actions, token = world
    record = _upload(app, token, b"abc")
    assert record["file_path"] == f"/api/v1/files/{record['id']}/download"
    assert app.test_client().get(record["file_path"], headers=bearer(token)).get_data() == b"abc"
    (listed,) = actions.api("GET", "/files", token).get_json()
    assert listed["file_path"] == record["file_path"]


def test_notes_search_filters(world):
    _, actions, token = world
    for title, content in (("Groceries", "milk, eggs"), ("Meeting", "discuss the Budget"),
                           ("Ideas", "50% off_sale")):
        assert actions.api("POST", "/notes", token,
                           json={"title": title, "content": content}).status_code == 201
    actions.create_user(token, "other")
    other = actions.token("other")
    actions.api("POST", "/notes", other, json={"title": "budget of other", "content": ""})

    def titles(search):
        answer = actions.api("GET", f"/notes?search={search}", token)
        assert answer.status_code == 200
        return sorted(n["title"] for n in answer.get_json()), answer.headers["X-Total-Count"]

    assert titles("budget") == (["Meeting"], "1")  # content, any case; not the other user's
    assert titles("GROC") == (["Groceries"], "1")  # title
    assert titles("50%25") == (["Ideas"], "1")  # a literal %
    assert titles("f_s") == (["Ideas"], "1")  # a literal _
    assert titles("5%25%25") == ([], "0")
    assert titles("") == (["Groceries", "Ideas", "Meeting"], "3")
    assert titles("nothing-like-this") == ([], "0")


def test_post_files_share_is_the_same_as_shares(world):
    app, _, token = world
    record = _upload(app, token, b"shared")
    client = app.test_client()
    response = client.post(f"{BASE}/files/{record['id']}/share", headers=bearer(token),
                           json={"expires_in_hours": 2})
    assert response.status_code == 201
    body = response.get_json()
    assert body["url"].endswith(body["token"])
    assert body["expires_at"] is not None
    assert client.get(f"/s/{body['token']}").get_data() == b"shared"
    listed = client.get(f"{BASE}/files/{record['id']}/shares", headers=bearer(token))
    assert [s["id"] for s in listed.get_json()["shares"]] == [body["id"]]
    assert client.post(f"{BASE}/files/999999/share", headers=bearer(token)).status_code == 404


def test_post_runs_a_saved_search_as_get_does(world):
    _, actions, token = world
    actions.api("POST", "/bookmarks", token, json={"url": "https://example.org/kiwi",
                                                   "title": "Kiwi fruit"})
    saved = actions.api("POST", "/search/saved", token, json={"name": "fruit",
                                                               "query": "kiwi"}).get_json()
    by_get = actions.api("GET", f"/search/saved/{saved['id']}/run", token)
    by_post = actions.api("POST", f"/search/saved/{saved['id']}/run", token)
    assert by_post.status_code == 200
    assert by_post.get_json()["saved_search"]["id"] == saved["id"]
    assert [r["id"] for r in by_post.get_json()["results"]] == [
        r["id"] for r in by_get.get_json()["results"]]
    assert len(by_post.get_json()["results"]) == 1
    actions.create_user(token, "other")
    other = actions.token("other")
    assert actions.api("POST", f"/search/saved/{saved['id']}/run", other).status_code == 404


def test_refresh_metadata_is_the_same_as_fetch_metadata(world):
    app, actions, token = world
    created = actions.api("POST", "/bookmarks", token, json={"url": "https://example.invalid/"})
    bookmark_id = created.get_json()["id"]
    off = actions.api("POST", f"/bookmarks/{bookmark_id}/refresh-metadata", token)
    assert off.status_code == 409  # FETCH_METADATA is off here, as for fetch-metadata
    assert off.get_json() == actions.api(
        "POST", f"/bookmarks/{bookmark_id}/fetch-metadata", token).get_json()
    app.config["FETCH_METADATA"] = True
    app.config["FETCH_PRIVATE_ADDRESSES"] = False
    on = actions.api("POST", f"/bookmarks/{bookmark_id}/refresh-metadata", token)
    assert on.status_code == 202
    assert on.get_json()["id"] == bookmark_id
    assert on.get_json()["fetch_status"] == "pending"
    assert actions.api("POST", "/bookmarks/999999/refresh-metadata", token).status_code == 404


def test_api_version(world):
    app, _, _ = world
    response = app.test_client().get("/api/version")
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "trackeep"
    assert body["version"] == app.extensions["trackeep"].version
    assert body["version"]

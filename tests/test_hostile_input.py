"""Hostile input is a clear 4xx, never a 500, and the same on SQLite and PostgreSQL (issue 19):
ids beyond 64 bits, NUL characters, non-ASCII session handles, deeply nested JSON, lone
surrogates, request lines too long for the server."""

from __future__ import annotations

import io
import json
import re
import socket
import zipfile
from urllib.parse import urlsplit

import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions, bearer
from werkzeug.exceptions import MethodNotAllowed, NotFound

from trackeep_desktop.storage.db import connection
from trackeep_desktop.storage.models import Bookmark, Note, SavedSearch, Tag, Task
from trackeep_desktop.transfer import InvalidArchive, importer
from trackeep_desktop.web.requests import MAX_REQUEST_LINE, IdConverter

TOO_BIG = 2**63
#: Ids no route may take: one past the 64-bit range, far past it, and more digits than
#: Python's int() converts.
BAD_IDS = [str(TOO_BIG), str(10**30), "9" * 4400]
#: Sample values for the string arguments of routes that also take an id.
STRING_ARGUMENTS = {"item_type": "bookmark", "emoji": "%F0%9F%91%8D"}


@pytest.fixture
def owner(app):
    app.config.update(GENEROUS_LIMITS, FETCH_METADATA=False)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    return actions, token


def _count(model) -> int:
    with connection(model._meta.database):
        return model.select().count()


# ------------------------------------------------------------------------------------- ids


def _id_rules(app):
    return [rule for rule in app.url_map.iter_rules()
            if any(isinstance(c, IdConverter) for c in rule._converters.values())]


def test_every_numeric_route_argument_is_an_id(app):
    """No route takes Werkzeug's unbounded ``int``: ids go through the ``id`` converter."""
    plain = [rule.rule for rule in app.url_map.iter_rules()
             for c in rule._converters.values()
             if type(c).__name__ in ("IntegerConverter", "NumberConverter")]
    assert plain == []
    assert len(_id_rules(app)) >= 30


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=["2^63", "10^30", "4400 digits"])
def test_an_id_beyond_64_bits_is_a_json_404_on_every_id_route(owner, app, bad_id):
    actions, token = owner
    rules = _id_rules(app)
    tried = set()
    for rule in rules:
        args = {name: (bad_id if isinstance(c, IdConverter) else STRING_ARGUMENTS[name])
                for name, c in rule._converters.items()}
        path = rule.rule
        for name, value in args.items():
            path = re.sub(rf"<[^>]*:{name}>|<{name}>", value, path)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            # Routing itself refuses the id: the route's view never runs, so no query does.
            try:
                endpoint, _ = app.url_map.bind("localhost").match(path, method=method)
            except (NotFound, MethodNotAllowed):
                endpoint = None
            assert endpoint in (None, "api.not_found"), (method, path, endpoint)
            if not path.startswith("/api/"):
                continue
            response = actions.client.open(path, method=method, json={},
                                           headers=bearer(token))
            if len(path) > MAX_REQUEST_LINE - 100:  # two ids of 4400 digits
                assert response.status_code == 414, (method, path)
                continue
            assert response.status_code == 404, (method, path, response.get_json())
            assert response.get_json()["error"].startswith("not found"), (method, path)
            tried.add(rule.endpoint)
    for endpoint in ("items_api.get_bookmark", "items_api.update_task", "items_api.get_note",
                     "files_api.get_file", "items_api.get_tag", "items_api.restore_trashed",
                     "auth_api.api_key_revoke", "search_api.get_saved",
                     "auth_api.admin_get_user"):
        assert endpoint in tried or endpoint not in app.view_functions, endpoint
    assert len(tried) >= 25


def test_the_largest_64_bit_id_is_an_ordinary_404(owner):
    actions, token = owner
    for path in (f"/bookmarks/{TOO_BIG - 1}", f"/tasks/{TOO_BIG - 1}", f"/tags/{TOO_BIG - 1}"):
        response = actions.api("GET", path, token)
        assert response.status_code == 404, path
    assert actions.api("GET", "/bookmarks/0", token).status_code == 404


def test_an_id_beyond_64_bits_in_a_body_is_a_400_naming_the_field(owner):
    actions, token = owner
    response = actions.api("POST", "/tasks", token, json={"title": "t", "parent_id": TOO_BIG})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == "parent_id"
    assert _count(Task) == 0
    task = actions.api("POST", "/tasks", token, json={"title": "t"}).get_json()
    response = actions.api("PATCH", f"/tasks/{task['id']}", token,
                           json={"parent_id": 10**30})
    assert response.status_code == 400
    assert response.get_json()["field"] == "parent_id"
    tag = actions.api("POST", "/tags", token, json={"name": "a"}).get_json()
    response = actions.api("POST", f"/tags/{tag['id']}/merge", token, json={"into": TOO_BIG})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == "into"


# ------------------------------------------------------------------------------- NUL bytes


NUL_WRITES = [
    ("POST", "/bookmarks", {"url": "https://example.com/", "title": "a\x00b"}, "title",
     Bookmark),
    ("POST", "/bookmarks", {"url": "https://example.com/", "description": "\x00"},
     "description", Bookmark),
    ("POST", "/bookmarks", {"url": "https://example.com/", "tags": ["ok", "b\x00d"]},
     "tags[1]", Bookmark),
    ("POST", "/tasks", {"title": "t", "description": "x\x00"}, "description", Task),
    ("POST", "/notes", {"title": "n", "content": "body\x00"}, "content", Note),
    ("POST", "/notes", {"title": "n", "body": "body\x00"}, "body", Note),
    ("POST", "/tags", {"name": "t\x00g"}, "name", Tag),
    ("POST", "/search/saved", {"name": "s\x00", "query": "x"}, "name", SavedSearch),
    ("POST", "/search/saved", {"name": "s", "query": "x\x00"}, "query", SavedSearch),
    ("POST", "/search/saved", {"name\x00": "s", "query": "x"}, "name\x00", SavedSearch),
]


@pytest.mark.parametrize(("method", "path", "body", "field", "model"), NUL_WRITES)
def test_a_nul_character_in_a_body_is_a_400_naming_the_field(owner, method, path, body,
                                                             field, model):
    actions, token = owner
    before = _count(model)
    response = actions.api(method, path, token, json=body)
    assert response.status_code == 400, response.get_json()
    answer = response.get_json()
    assert answer["field"] == field
    assert answer["reason"] == "nul_character"
    assert "NUL" in answer["error"]
    assert _count(model) == before


def test_nul_in_profile_key_names_and_login_is_a_400(owner):
    actions, token = owner
    response = actions.api("PATCH", "/auth/profile", token, json={"fullName": "Ol\x00ve"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "fullName"
    me = actions.api("GET", "/auth/me", token).get_json()
    assert "\x00" not in json.dumps(me)
    response = actions.api("POST", "/api-keys", token, json={"name": "k\x00", "scopes": ["read"]})
    assert response.status_code == 400
    assert response.get_json()["field"] == "name"
    assert actions.api("GET", "/api-keys", token).get_json()["api_keys"] == []
    response = actions.api("POST", "/auth/login", json={"email": "own\x00er",
                                                         "password": OWNER["password"]})
    assert response.status_code == 400
    assert response.get_json()["field"] == "email"
    assert actions.login(OWNER["username"], OWNER["password"]).status_code == 200


def test_nul_in_a_query_or_path_parameter_is_a_400_naming_it(owner):
    actions, token = owner
    response = actions.client.get("/api/v1/bookmarks?tag=a%00b", headers=bearer(token))
    assert response.status_code == 400
    assert response.get_json()["field"] == "tag"
    response = actions.client.get("/api/v1/search?q=x%00", headers=bearer(token))
    assert response.status_code == 400
    assert response.get_json()["field"] == "q"
    response = actions.client.get("/s/ab%00cd")
    assert response.status_code == 400
    assert actions.client.get("/api/v1/bookmarks?tag=ab", headers=bearer(token)).status_code \
        == 200


# ------------------------------------------------------------------------- session handles


@pytest.mark.parametrize("handle", ["%C3%A9", "%E2%82%AC" * 8, "%F0%9F%98%80"])
def test_a_non_ascii_session_handle_is_a_404(owner, handle):
    actions, token = owner
    response = actions.client.delete(f"/api/v1/sessions/{handle}", headers=bearer(token))
    assert response.status_code == 404
    assert response.get_json()["error"] == "no such session"
    assert actions.api("GET", "/auth/me", token).status_code == 200


# ------------------------------------------------------------------- nesting and surrogates


def _raw(actions, token, method, path, data: bytes):
    return actions.client.open(f"/api/v1{path}", method=method, data=data,
                               headers={**bearer(token), "Content-Type": "application/json"})


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_json_nested_too_deeply_is_a_400(owner, depth):
    actions, token = owner
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        nested = opener * depth + "1" + closer * depth
        body = f'{{"title": "t", "x": {nested}}}'.encode()
        for method, path in (("POST", "/tasks"), ("POST", "/auth/login"),
                             ("PATCH", "/auth/profile")):
            response = _raw(actions, token, method, path, body)
            assert response.status_code == 400, (method, path, depth)
            assert "nested" in response.get_json()["error"]
    assert _count(Task) == 0
    ok = '{"title": "t", "x": ' + "[" * 60 + "]" * 60 + "}"
    assert _raw(actions, token, "POST", "/tasks", ok.encode()).status_code == 201


def test_a_lone_surrogate_is_a_400_naming_the_field(owner):
    actions, token = owner
    for body, field in ((b'{"title": "\\ud800"}', "title"),
                        (b'{"title": "t", "tags": ["\\udfff"]}', "tags[0]")):
        response = _raw(actions, token, "POST", "/bookmarks",
                        body.replace(b"{", b'{"url": "https://example.com/", ', 1))
        assert response.status_code == 400, response.get_json()
        assert response.get_json()["field"] == field
        assert response.get_json()["reason"] == "invalid_unicode"
    response = _raw(actions, token, "POST", "/auth/login",
                    b'{"email": "\\ud83d", "password": "x"}')
    assert response.status_code == 400
    # A proper pair is an ordinary character.
    response = _raw(actions, token, "POST", "/bookmarks",
                    b'{"url": "https://example.com/", "title": "\\ud83d\\ude00"}')
    assert response.status_code == 201
    assert response.get_json()["title"] == "\U0001f600"


def _archive(manifest: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", manifest)
    return buffer.getvalue()


@pytest.mark.parametrize("manifest", [
    b'{"format": "trackeep-export", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    b'{"format": "trackeep-export", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"format": "trackeep-export", "bookmarks": [{"title": "\\ud800"}]}',
    b'{"format": "trackeep-export", "bookmarks": [{"title": "a\\u0000"}]}',
], ids=["1000 deep", "100000 deep", "lone surrogate", "NUL"])
def test_an_import_manifest_nested_too_deeply_or_unstorable_is_refused(app, owner, tmp_path,
                                                                       manifest):
    actions, token = owner
    path = tmp_path / "export.zip"
    path.write_bytes(_archive(manifest))
    user_id = actions.api("GET", "/auth/me", token).get_json()["user"]["id"]
    state = app.extensions["trackeep"]
    with connection(state.db), pytest.raises(InvalidArchive,
                                             match="manifest of this archive cannot be"):
        importer.prepare_archive(user_id, path, store=state.blob_store)
    response = actions.client.post("/api/v1/import", headers=bearer(token), data={
        "file": (io.BytesIO(path.read_bytes()), "export.zip")})
    assert response.status_code == 400, response.get_json()
    assert "manifest" in response.get_json()["error"]


# ------------------------------------------------------------------- request line too long


def test_a_request_line_too_long_is_a_json_414_through_flask(owner):
    actions, token = owner
    for path in ("/api/v1/" + "a" * 100_000, "/api/v1/bookmarks?q=" + "a" * 9000):
        response = actions.client.get(path, headers=bearer(token))
        assert response.status_code == 414
        assert response.get_json() == {"error": "request line too long"}
    response = actions.client.get("/api/v1/bookmarks?unused=" + "a" * 7000,
                                  headers=bearer(token))
    assert response.status_code == 200, response.get_json()


def _raw_http(url: str, target: str) -> tuple[int, dict, bytes]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["gevent", "werkzeug", "waitress"])
def test_a_request_line_too_long_is_a_json_414_from_trackeep_serve(serve, mode):
    instance = serve("--server", mode)
    try:
        for length in (10_000, 100_000):
            status, headers, body = _raw_http(instance.url, "/api/v1/" + "a" * length)
            assert status == 414, (mode, length, body)
            assert headers["content-type"] == "application/json"
            assert json.loads(body) == {"error": "request line too long"}
        status, _, body = _raw_http(instance.url, "/api/v1/nothing-here")
        assert status == 404
        assert "error" in json.loads(body)
    finally:
        instance.stop()

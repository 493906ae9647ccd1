"""The security baseline: every endpoint guarded, users isolated, CSRF, no leaked secrets,
brute-force limits (per client, per account, across instances, behind proxies)."""

from __future__ import annotations

import io
import logging
import re

import pyotp
import pytest
from auth_actions import (
    GENEROUS_LIMITS,
    OWNER,
    PASSWORD,
    AuthActions,
    bearer,
    csrf_from,
)

from trackeep_desktop.storage.models import ApiKey, BackupCode, PairingCode, User
from trackeep_desktop.web.auth import ACCOUNT_WIDE_FACTOR, resolve_client_ip

#: API endpoints that answer anonymous clients on purpose, besides those marked ``@public``.
OPEN_ENDPOINTS = {"api.index", "api.not_found"}


def api_routes(app):
    """``(endpoint, method, sample path)`` for every API route, with sample URL arguments."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:int|id):[^>]+>", "1", rule.rule)
        path = re.sub(r"<(?:[^:>]+:)?[^>]+>", "x", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, path))
    return routes


def guarded_routes(app):
    return [(e, m, p) for e, m, p in api_routes(app)
            if getattr(app.view_functions[e], "auth_required", False)]


# ---------------------------------------------------------------- authentication on every route


def test_every_api_endpoint_is_guarded_or_deliberately_public(app):
    unmarked = sorted({e for e, _, _ in api_routes(app)
                       if e not in OPEN_ENDPOINTS
                       and not getattr(app.view_functions[e], "auth_required", False)
                       and not getattr(app.view_functions[e], "auth_public", False)})
    assert unmarked == [], "guard these with login_required/require_scope or mark them @public"
    assert len(guarded_routes(app)) >= 20


def test_protected_endpoints_refuse_missing_expired_and_revoked_credentials(clocked):
    app = clocked.app
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    revoked_session = actions.token("owner", OWNER["password"])
    actions.api("POST", "/auth/logout", revoked_session)
    revoked_key, listing = actions.create_key(owner, ["*"])
    actions.api("DELETE", f"/api-keys/{listing['id']}", owner)
    expiring = actions.token("owner", OWNER["password"])
    expiring_key, _ = actions.create_key(owner, ["*"], expires_in_days=1)
    clocked.advance(2 * 86400)
    assert actions.api("GET", "/auth/me", expiring).status_code == 401

    credentials = {
        "none": {},
        "revoked session": bearer(revoked_session),
        "expired session": bearer(expiring),
        "revoked key": bearer(revoked_key),
        "expired key": bearer(expiring_key),
        "unknown key": bearer("tk_" + "x" * 43),
        "not bearer": {"Authorization": "Basic b3duZXI6cGFzcw=="},
        "revoked session cookie": {"Cookie": f"trackeep_session={revoked_session}"},
    }
    failures = []
    for endpoint, method, path in guarded_routes(app):
        for name, headers in credentials.items():
            response = app.test_client().open(path, method=method, headers=headers)
            if response.status_code != 401 or "error" not in response.get_json():
                failures.append((endpoint, method, name, response.status_code))
    assert failures == []


def test_keys_without_the_scope_are_403_everywhere(clocked):
    app = clocked.app
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    keys = {scope: actions.create_key(owner, [scope])[0]
            for scope in ("tasks:write", "notes:write")}
    checked = 0
    for endpoint, method, path in guarded_routes(app):
        scope = app.view_functions[endpoint].auth_scope
        if scope is None:
            continue
        key = keys["notes:write"] if scope != "notes:write" else keys["tasks:write"]
        response = app.test_client().open(path, method=method, headers=bearer(key))
        assert response.status_code == 403, (endpoint, method, response.status_code)
        assert "scope" in response.get_json()["error"]
        checked += 1
    assert checked >= 20


def test_read_keys_can_read_but_not_write(clocked):
    app = clocked.app
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    reader, _ = actions.create_key(owner, ["read"])
    for endpoint, method, path in guarded_routes(app):
        if app.view_functions[endpoint].auth_scope in (None, "read") or method == "GET":
            continue
        response = app.test_client().open(path, method=method, headers=bearer(reader))
        assert response.status_code == 403, (endpoint, method)


# ------------------------------------------------------------------------- user isolation


def _session_handle(actions, token):
    return next(s["id"] for s in actions.api("GET", "/sessions", token).get_json()["sessions"]
                if s["current"])


def _api_key_id(actions, token):
    return actions.create_key(token, ["read"])[1]["id"]


def _created(path, body):
    """A maker for RESOURCES: POST ``body`` to ``path`` as the user, return the new id."""

    def create(actions, token):
        response = actions.api("POST", path, token, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    return create


def _trashed_bookmark(actions, token):
    bookmark_id = _created("/bookmarks", {"url": "http://127.0.0.1:9/in-the-trash"})(
        actions, token)
    assert actions.api("DELETE", f"/bookmarks/{bookmark_id}", token).status_code == 200
    return bookmark_id


def _readable(path):
    """A check for RESOURCES: the owner still gets 200 from ``path`` (``{id}`` filled)."""
    return lambda actions, token, object_id: actions.api(
        "GET", path.format(id=object_id), token).status_code == 200


def _in_trash(actions, token, object_id):
    return any(e["id"] == object_id for e in actions.api("GET", "/trash", token).get_json())


def _uploaded_file(actions, token):
    response = actions.client.post("/api/v1/files/upload", headers=bearer(token),
                                   data={"file": (io.BytesIO(b"ann's file"), "ann.txt")},
                                   content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _trashed_file(actions, token):
    file_id = _uploaded_file(actions, token)
    assert actions.api("DELETE", f"/files/{file_id}", token).status_code == 200
    return file_id


def _file_share(actions, token):
    """A share link, as ``<file id>/shares/<share id>`` (its path under /files/)."""
    file_id = _uploaded_file(actions, token)
    response = actions.api("POST", f"/files/{file_id}/shares", token, json={})
    assert response.status_code == 201, response.get_json()
    return f"{file_id}/shares/{response.get_json()['id']}"


def _share_active(actions, token, object_id):
    file_id, _, share_id = object_id.split("/")
    shares = actions.api("GET", f"/files/{file_id}/shares", token).get_json()["shares"]
    return [(s["id"], s["state"]) for s in shares] == [(int(share_id), "active")]


def _item_requests(collection, *extra):
    path = f"/api/v1/{collection}/{{id}}"
    return [("GET", path), ("PATCH", path), ("PUT", path), ("DELETE", path), *extra]


#: Every kind of object a user owns: how to make one, the requests that reach it, and
#: (optionally) how to check it is still there for its owner. Grow this table with every
#: new resource (``{id}`` is the object's id).
RESOURCES = {
    "session": (_session_handle, [("DELETE", "/api/v1/sessions/{id}"),
                                  ("POST", "/settings/sessions/{id}/revoke")]),
    "api key": (_api_key_id, [("DELETE", "/api/v1/api-keys/{id}"),
                              ("POST", "/settings/api-keys/{id}/revoke")]),
    "bookmark": (_created("/bookmarks", {"url": "http://127.0.0.1:9/ann"}),
                 _item_requests("bookmarks", ("POST", "/api/v1/bookmarks/{id}/fetch-metadata"),
                                ("POST", "/api/v1/trash/bookmark/{id}/restore"),
                                ("DELETE", "/api/v1/trash/bookmark/{id}")),
                 _readable("/bookmarks/{id}")),
    "task": (_created("/tasks", {"title": "Ann's task"}),
             _item_requests("tasks", ("POST", "/api/v1/tasks/{id}/complete")),
             _readable("/tasks/{id}")),
    "note": (_created("/notes", {"title": "Ann's note", "content": "secret"}),
             _item_requests("notes"), _readable("/notes/{id}")),
    "tag": (_created("/tags", {"name": "ann-only"}),
            _item_requests("tags", ("POST", "/api/v1/tags/{id}/merge")),
            _readable("/tags/{id}")),
    "saved search": (_created("/search/saved", {"name": "Ann's", "query": "secret"}),
                     [("GET", "/api/v1/search/saved/{id}"),
                      ("PATCH", "/api/v1/search/saved/{id}"),
                      ("DELETE", "/api/v1/search/saved/{id}"),
                      ("GET", "/api/v1/search/saved/{id}/run")],
                     _readable("/search/saved/{id}")),
    "trashed bookmark": (_trashed_bookmark, [("POST", "/api/v1/trash/bookmark/{id}/restore"),
                                             ("DELETE", "/api/v1/trash/bookmark/{id}"),
                                             ("GET", "/api/v1/bookmarks/{id}")],
                         _in_trash),
    "file": (_uploaded_file, [("GET", "/api/v1/files/{id}"), ("PATCH", "/api/v1/files/{id}"),
                              ("DELETE", "/api/v1/files/{id}"),
                              ("GET", "/api/v1/files/{id}/download"),
                              ("GET", "/api/v1/files/{id}/preview"),
                              ("GET", "/api/v1/files/{id}/shares"),
                              ("POST", "/api/v1/files/{id}/shares"),
                              ("POST", "/api/v1/trash/file/{id}/restore"),
                              ("DELETE", "/api/v1/trash/file/{id}")],
             _readable("/files/{id}/download")),
    "trashed file": (_trashed_file, [("POST", "/api/v1/trash/file/{id}/restore"),
                                     ("DELETE", "/api/v1/trash/file/{id}"),
                                     ("GET", "/api/v1/files/{id}/download")],
                     _in_trash),
    "file share": (_file_share, [("DELETE", "/api/v1/files/{id}")], _share_active),
}


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_users_get_404_for_each_others_objects(any_app, resource):
    actions = AuthActions(any_app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    ann = actions.token("ann")
    create, requests, *still_there = RESOURCES[resource]
    object_id = create(actions, ann)
    mallory = actions.browser()  # the owner, signed in to the UI
    AuthActions.web_login(mallory, "owner", OWNER["password"])
    csrf = csrf_from(mallory.get("/settings/security").get_data(as_text=True))
    for method, template in requests:
        path = template.format(id=object_id)
        if path.startswith("/api/"):
            response = actions.client.open(path, method=method, headers=bearer(owner))
        else:
            response = mallory.open(path, method=method, data={"csrf_token": csrf})
        assert response.status_code == 404, (method, path, response.status_code)
    # ... and the object is still there for its owner.
    if still_there:
        assert still_there[0](actions, ann, object_id)
    elif resource == "session":
        assert actions.api("GET", "/auth/me", ann).status_code == 200
    else:
        assert ApiKey.get_or_none(ApiKey.id == object_id) is not None


# ------------------------------------------------------------------------------------- CSRF


def test_cookie_authenticated_posts_need_the_csrf_token(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    browser = actions.browser()
    AuthActions.web_login(browser, "owner", OWNER["password"])
    page = browser.get("/settings/profile").get_data(as_text=True)
    token = csrf_from(page)

    missing = browser.post("/settings/profile", data={"full_name": "Hacked"})
    assert missing.status_code == 403
    assert "CSRF" in missing.get_data(as_text=True)
    wrong = browser.post("/settings/profile", data={"full_name": "Hacked", "csrf_token": "x"})
    assert wrong.status_code == 403
    assert User.get(User.username == "owner").full_name == OWNER["fullName"]

    api_missing = browser.post("/api/v1/api-keys", json={"name": "k", "scopes": ["*"]})
    assert api_missing.status_code == 403
    assert api_missing.is_json
    api_ok = browser.post("/api/v1/api-keys", json={"name": "k", "scopes": ["*"]},
                          headers={"X-CSRF-Token": token})
    assert api_ok.status_code == 201
    assert browser.post("/logout").status_code == 403  # logout is a state change too
    assert browser.get("/api/v1/auth/me").status_code == 200  # reads need no token

    ok = browser.post("/settings/profile", data={
        "csrf_token": token, "full_name": "Olive", "email": OWNER["email"], "theme": "light",
        "timezone": "UTC"})
    assert ok.status_code == 302


def test_anonymous_forms_need_the_csrf_cookie_token(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    browser = actions.browser()
    refused = browser.post("/login", data={"login": "owner", "password": OWNER["password"]})
    assert refused.status_code == 403


def test_bearer_requests_need_no_csrf_token(any_app):
    actions = AuthActions(any_app)
    owner, _ = actions.register_owner()
    assert actions.api("POST", "/api-keys", owner,
                       json={"name": "k", "scopes": ["read"]}).status_code == 201


# ---------------------------------------------------------------------------------- secrets


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def test_no_secret_appears_in_logs_or_responses_beyond_its_one_time_display(clocked):
    app = clocked.app
    capture = Capture()
    loggers = [logging.getLogger(n) for n in ("trackeep", "trackeep_desktop", "werkzeug")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(capture)
        lg.setLevel(logging.DEBUG)
    responses: list[tuple[str, str]] = []

    def call(label, method, path, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers.update(bearer(token))
        response = client.open(path, method=method, headers=headers, **kwargs)
        dump = response.get_data(as_text=True) + str(response.headers)
        responses.append((label, dump))
        return response

    try:
        client = app.test_client()
        owner = call("register", "POST", "/api/v1/auth/register", json=OWNER).get_json()["token"]
        call("create ann", "POST", "/api/v1/admin/users", owner, json={
            "email": "ann@example.com", "username": "ann", "password": PASSWORD})
        ann = call("login ann", "POST", "/api/v1/auth/login", json={
            "email": "ann", "password": PASSWORD}).get_json()["token"]
        call("bad login", "POST", "/api/v1/auth/login", json={
            "email": "ann", "password": "wrong-" + PASSWORD})
        call("password", "PUT", "/api/v1/auth/password", ann, json={
            "currentPassword": PASSWORD, "newPassword": "ann-new-password"})
        key = call("key", "POST", "/api/v1/api-keys", owner, json={
            "name": "k", "scopes": ["*"]}).get_json()["key"]
        call("use key", "GET", "/api/v1/auth/me", key)
        call("list keys", "GET", "/api/v1/api-keys", owner)
        call("sessions", "GET", "/api/v1/sessions", owner)
        secret = call("totp setup", "POST", "/api/v1/auth/2fa/setup", owner, json={
            "password": OWNER["password"]}).get_json()["secret"]
        codes = call("totp enable", "POST", "/api/v1/auth/2fa/enable", owner, json={
            "code": pyotp.TOTP(secret).at(clocked.clock.now())}).get_json()["backup_codes"]
        call("status", "GET", "/api/v1/auth/2fa/status", owner)
        call("login with backup code", "POST", "/api/v1/auth/login", json={
            "email": "owner", "password": OWNER["password"], "totp_code": codes[0]})
        pairing = call("pairing code", "POST", "/api/v1/auth/pairing-code",
                       owner).get_json()["code"]
        paired = call("pair", "POST", "/api/v1/auth/pair", json={
            "code": pairing, "device_name": "phone"}).get_json()["token"]
        call("validate", "GET", "/api/v1/browser-extension/validate", paired)
        call("me", "GET", "/api/v1/auth/me", owner)
        call("admin list", "GET", "/api/v1/admin/users", owner)
        call("logout", "POST", "/api/v1/auth/logout", ann)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(capture)
            lg.setLevel(level)

    shown_once = {
        OWNER["password"]: set(), PASSWORD: set(), "ann-new-password": set(),
        owner: {"register"}, ann: {"login ann"}, key: {"key"}, secret: {"totp setup"},
        pairing: {"pairing code"}, paired: {"pair"},
        **{code: {"totp enable"} for code in codes},
    }
    log_text = "\n".join(capture.lines)
    assert "signed in" in log_text  # the capture works
    for value, allowed in shown_once.items():
        assert value not in log_text, f"a secret leaked into the logs: {value[:4]}…"
        seen = {label for label, dump in responses if value in dump}
        assert seen == allowed, f"{value[:4]}… appears in {seen}, expected {allowed}"
    stored = "\n".join(str(row.__data__) for model in (User, ApiKey, BackupCode, PairingCode)
                        for row in model.select())
    for value in (OWNER["password"], PASSWORD, "ann-new-password", key, pairing, *codes):
        assert value not in stored


# ------------------------------------------------------------------------------ brute force


def test_sixth_failed_login_is_429_with_rate_limit_headers(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    for attempt in range(5):
        response = actions.login("owner", f"wrong-{attempt}")
        assert response.status_code == 401
    limited = actions.login("owner", OWNER["password"])  # even the right password
    assert limited.status_code == 429
    assert limited.get_json()["error"].startswith("Too many requests")
    assert 1 <= int(limited.headers["Retry-After"]) <= 300
    assert limited.headers["X-RateLimit-Limit"] == "5"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > 0
    metrics = actions.client.get("/metrics").get_data(as_text=True)
    assert 'trackeep_rate_limit_rejections_total{limit="login"} 1.0' in metrics


def test_login_limit_is_per_account_across_addresses(any_app):
    actions = AuthActions(any_app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    for n in range(5 * ACCOUNT_WIDE_FACTOR):
        assert actions.login("ann", "wrong", remote_addr=f"198.51.100.{n}").status_code == 401
    assert actions.login("ann@example.com", PASSWORD,
                         remote_addr="198.51.100.99").status_code == 429
    assert actions.login("owner", OWNER["password"],
                         remote_addr="198.51.100.98").status_code == 200


def test_login_limit_is_per_client_across_accounts(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    for n in range(5):
        assert actions.login(f"nobody{n}", "wrong").status_code == 401
    assert actions.login("owner", OWNER["password"]).status_code == 429
    assert actions.login("owner", OWNER["password"],
                         remote_addr="198.51.100.7").status_code == 200


def test_limits_lift_when_the_window_passes(clocked):
    app = clocked.app
    app.config.update(AUTH_RATE_LIMIT=5)
    actions = AuthActions(app)
    actions.register_owner()
    for _ in range(5):
        actions.login("owner", "wrong")
    assert actions.login("owner", OWNER["password"]).status_code == 429
    clocked.advance(301)
    assert actions.login("owner", OWNER["password"]).status_code == 200


def test_two_factor_codes_are_rate_limited(clocked):
    app = clocked.app
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    app.config.update(AUTH_RATE_LIMIT=5)
    for _ in range(5):
        assert actions.api("POST", "/auth/2fa/setup", owner,
                           json={"password": "wrong"}).status_code == 400
    limited = actions.api("POST", "/auth/2fa/setup", owner, json={"password": OWNER["password"]})
    assert limited.status_code == 429


def test_spoofed_forwarded_for_does_not_reset_the_limit(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    for n in range(5):
        response = actions.api("POST", "/auth/login", json={"email": f"x{n}", "password": "y"},
                               headers={"X-Forwarded-For": f"203.0.113.{n}"})
        assert response.status_code == 401
    limited = actions.api("POST", "/auth/login", json={"email": "owner", "password": "y"},
                          headers={"X-Forwarded-For": "203.0.113.200"})
    assert limited.status_code == 429


def test_forwarded_for_is_believed_from_trusted_proxies_only(make_app):
    actions = AuthActions(make_app(TRUSTED_PROXIES="127.0.0.1, 10.1.0.0/16"))
    actions.register_owner()

    tries = iter(range(100))

    def attempt(forwarded_for, remote_addr=None):
        login = f"nobody{next(tries)}"  # a new account each time: only the client limit counts
        return actions.api("POST", "/auth/login", json={"email": login, "password": "y"},
                           headers={"X-Forwarded-For": forwarded_for},
                           remote_addr=remote_addr).status_code

    for n in range(5):
        # The client's own header hop is ignored: the proxy appended the real address.
        assert attempt(f"1.2.3.{n}, 203.0.113.5, 10.1.2.3") == 401
    assert attempt("203.0.113.5") == 429
    assert attempt("203.0.113.6") == 401  # another client behind the same proxy
    assert actions.login("owner", OWNER["password"]).status_code == 200  # the proxy itself
    # From an untrusted peer the header is ignored and the peer is the client.
    for n in range(5):
        assert attempt(f"203.0.113.{70 + n}", remote_addr="192.0.2.9") == 401
    assert attempt("203.0.113.99", remote_addr="192.0.2.9") == 429


@pytest.mark.parametrize(("remote", "header", "expected"), [
    ("192.0.2.1", "203.0.113.9", "192.0.2.1"),  # untrusted peer: header ignored
    ("10.0.0.1", "203.0.113.9", "203.0.113.9"),
    ("10.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # left hops are the client's word
    ("10.0.0.1", "203.0.113.9, 10.0.0.2", "203.0.113.9"),  # skip trusted hops
    ("10.0.0.1", "", "10.0.0.1"),
    ("10.0.0.1", "not-an-ip", "10.0.0.1"),
    ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # all trusted: the farthest one
])
def test_resolve_client_ip(remote, header, expected):
    assert resolve_client_ip(remote, header, ("10.0.0.0/8",)) == expected


def test_a_flood_of_refusals_logs_one_line_but_counts_every_one(make_app, caplog):
    import logging

    app = make_app(API_RATE_LIMIT=1)
    client = app.test_client()
    caplog.set_level(logging.WARNING, logger="trackeep_desktop.auth")
    statuses = [client.get("/api/v1/auth/check-users").status_code for _ in range(20)]
    assert statuses == [200] + [429] * 19
    refusals = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert len(refusals) == 1
    assert 'trackeep_rate_limit_rejections_total{limit="general"} 19.0' in client.get(
        "/metrics").get_data(as_text=True)


def test_general_api_limit_with_headers(make_app):
    app = make_app(API_RATE_LIMIT=3)
    client = app.test_client()
    remaining = []
    for _ in range(3):
        response = client.get("/api/v1/auth/check-users")
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    limited = client.get("/api/v1/auth/check-users")
    assert limited.status_code == 429
    assert "error" in limited.get_json()
    assert int(limited.headers["Retry-After"]) >= 1
    assert client.get("/api/v1/", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 200
    for _ in range(5):  # never limited: health checks, metrics scrapes, static files
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/static/css/app.css").status_code == 200
    assert 'trackeep_rate_limit_rejections_total{limit="general"} 1.0' in client.get(
        "/metrics").get_data(as_text=True)


def test_signed_in_browser_sessions_have_their_own_ui_limit(make_app):
    """Every desktop window shares 127.0.0.1: a signed-in browser session is limited per
    session (UI_RATE_LIMIT), not by the address's API_RATE_LIMIT."""
    app = make_app(API_RATE_LIMIT=2, UI_RATE_LIMIT=4)
    actions = AuthActions(app)
    actions.register_owner()
    browser = actions.browser()
    AuthActions.web_login(browser, "owner", OWNER["password"])
    statuses = [browser.get("/api/v1/auth/me").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert browser.get("/api/v1/auth/me").headers["X-RateLimit-Limit"] == "4"
    other = actions.browser()  # another window: its own session, its own budget
    AuthActions.web_login(other, "owner", OWNER["password"])
    assert other.get("/api/v1/auth/me").status_code == 200


# ---------------------------------------------------------------------- several instances


def test_limits_hold_across_instances(make_app, redis_url, key_prefix):
    first = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, API_RATE_LIMIT=1000)
    second = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, API_RATE_LIMIT=1000)
    a, b = AuthActions(first), AuthActions(second)
    a.register_owner()
    statuses = [(a if n % 2 else b).login("owner", "wrong").status_code for n in range(6)]
    assert statuses == [401] * 5 + [429]
    assert a.login("owner", OWNER["password"]).status_code == 429
    assert b.login("owner", OWNER["password"]).status_code == 429

    first.config.update(API_RATE_LIMIT=4)
    second.config.update(API_RATE_LIMIT=4)
    ip = {"REMOTE_ADDR": "192.0.2.44"}
    codes = [app.test_client().get("/api/v1/", environ_base=ip).status_code
             for app in (first, second, first, second, first, second)]
    assert codes == [200, 200, 200, 200, 429, 429]


def test_revocation_reaches_every_instance(make_app, redis_url, key_prefix):
    first = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, **GENEROUS_LIMITS)
    second = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, **GENEROUS_LIMITS)
    a, b = AuthActions(first), AuthActions(second)
    owner, _ = a.register_owner()
    phone = b.token("owner", OWNER["password"])
    assert a.api("GET", "/auth/me", phone).status_code == 200
    handle = next(s["id"] for s in b.api("GET", "/sessions", phone).get_json()["sessions"]
                  if s["current"])
    assert a.api("DELETE", f"/sessions/{handle}", owner).status_code == 204
    assert b.api("GET", "/auth/me", phone).status_code == 401
    assert a.api("GET", "/auth/me", phone).status_code == 401


@pytest.mark.parametrize("with_redis", [False, True], ids=["memory", "redis"])
def test_sessions_survive_a_restart(make_app, request, key_prefix, with_redis):
    config = dict(GENEROUS_LIMITS)
    if with_redis:
        config.update(REDIS_URL=request.getfixturevalue("redis_url"), KEY_PREFIX=key_prefix)
    before = make_app(**config)
    owner, _ = AuthActions(before).register_owner()
    before.extensions["trackeep"].close()
    after = make_app(**config)
    assert AuthActions(after).api("GET", "/auth/me", owner).status_code == 200


@pytest.mark.slow
def test_a_redis_outage_logs_nobody_out_and_keeps_limits(make_app):
    from services import RedisServer

    if not RedisServer.available():
        from conftest import unavailable

        unavailable("no redis-server binary to start")
    server = RedisServer().start()
    try:
        actions = AuthActions(make_app(REDIS_URL=server.url))
        owner, _ = actions.register_owner()
        phone = actions.token("owner", OWNER["password"])
        key, _ = actions.create_key(owner, ["read"])
        server.stop()  # Redis dies

        assert actions.api("GET", "/auth/me", owner).status_code == 200
        assert actions.api("GET", "/auth/me", key).status_code == 200
        handle = next(s["id"] for s in actions.api("GET", "/sessions", phone).get_json()[
            "sessions"] if s["current"])
        assert actions.api("DELETE", f"/sessions/{handle}", owner).status_code == 204
        assert actions.api("GET", "/auth/me", phone).status_code == 401
        fresh = actions.token("owner", OWNER["password"])
        assert actions.api("GET", "/auth/me", fresh).status_code == 200
        # The per-instance fallback limiter counts failures from the outage on: five use
        # up the five attempts of this (known) device.
        for _ in range(5):
            assert actions.login("owner", "wrong").status_code == 401
        assert actions.login("owner", OWNER["password"]).status_code == 429
    finally:
        server.stop()

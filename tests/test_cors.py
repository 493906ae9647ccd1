"""CORS for the API (issue 14): browser extensions and configured origins may call it with a
bearer token or an API key, never with the session cookie; preflights are answered."""

from __future__ import annotations

import pytest
import requests
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions, bearer

from trackeep_desktop.storage.db import ConfigurationError

CHROME = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
FIREFOX = "moz-extension://2f5b8c4e-7a1d-4c3b-9e8f-0a1b2c3d4e5f"
CONFIGURED = "https://app.example.org"
STRANGER = "https://evil.example.com"

#: What the extensions call, and with which method.
EXTENSION_CALLS = [
    ("GET", "/api/v1/browser-extension/validate"),
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/bookmarks"),
    ("POST", "/api/v1/files/upload"),
    ("POST", "/api/v1/auth/generate-key"),
    ("POST", "/api/v1/auth/pair"),
    ("GET", "/api/v1/tags"),
    ("GET", "/api/v1/bookmarks"),
    ("PUT", "/api/v1/bookmarks/1"),
    ("PATCH", "/api/v1/bookmarks/1"),
    ("DELETE", "/api/v1/bookmarks/1"),
]


@pytest.fixture
def cors_app(make_app):
    return make_app(CORS_ORIGINS=CONFIGURED, **GENEROUS_LIMITS)


@pytest.fixture
def owner(cors_app):
    token, _ = AuthActions(cors_app).register_owner()
    return token


def preflight(client, path, origin, method, headers="authorization, content-type"):
    return client.options(path, headers={"Origin": origin,
                                         "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": headers})


@pytest.mark.parametrize(("method", "path"), EXTENSION_CALLS)
@pytest.mark.parametrize("origin", [CHROME, FIREFOX, CONFIGURED])
def test_preflight_for_every_method_the_extension_uses(cors_app, origin, method, path):
    response = preflight(cors_app.test_client(), path, origin, method)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    methods = [m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")]
    assert method in methods
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers["Vary"]


def test_preflight_lists_only_the_methods_a_path_serves(cors_app):
    response = preflight(cors_app.test_client(), "/api/v1/auth/me", CHROME, "DELETE")
    assert response.status_code == 204
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert "GET" in methods
    assert "DELETE" not in methods  # the browser then refuses to send the DELETE


def test_preflight_from_an_origin_not_allowed_is_refused(cors_app):
    for origin in (STRANGER, "null", "chrome-extension://has/a/path", "http://localhost:9999"):
        response = preflight(cors_app.test_client(), "/api/v1/bookmarks", origin, "POST")
        assert response.status_code == 403, origin
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "error" in response.get_json()


def test_preflight_of_an_unknown_api_path_is_a_404(cors_app):
    response = preflight(cors_app.test_client(), "/api/v1/no-such-thing", CHROME, "GET")
    assert response.status_code == 404
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflights_are_not_counted_against_the_rate_limit(make_app):
    app = make_app(API_RATE_LIMIT=2)
    client = app.test_client()
    for _ in range(5):
        assert preflight(client, "/api/v1/bookmarks", CHROME, "POST").status_code == 204
    assert client.get("/api/v1/auth/check-users").status_code == 200


def test_private_network_preflight_is_allowed_for_an_allowed_origin(cors_app):
    response = cors_app.test_client().options("/api/v1/bookmarks", headers={
        "Origin": CONFIGURED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Private-Network": "true"})
    assert response.headers["Access-Control-Allow-Private-Network"] == "true"


# ------------------------------------------------------------------------- the CORS matrix


@pytest.mark.parametrize("origin", [CHROME, FIREFOX, CONFIGURED])
def test_allowed_origin_with_bearer_session_token_is_answered_with_cors(cors_app, owner,
                                                                       origin):
    client = cors_app.test_client()
    response = client.post("/api/v1/bookmarks", json={"url": "https://example.org/a",
                                                      "title": "A", "tags": ["x"]},
                           headers={**bearer(owner), "Origin": origin})
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "X-Total-Count" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_extension_origin_with_an_api_key_is_allowed(cors_app, owner):
    actions = AuthActions(cors_app)
    key, _ = actions.create_key(owner, ["read", "bookmarks:write"])
    client = cors_app.test_client()
    response = client.get("/api/v1/browser-extension/validate",
                          headers={**bearer(key), "Origin": CHROME})
    assert response.status_code == 200
    assert response.get_json()["username"] == "owner"
    assert response.headers["Access-Control-Allow-Origin"] == CHROME


def test_errors_to_an_allowed_origin_are_readable_too(cors_app):
    """A 401 must reach the extension (so it can say "not paired"), not a CORS failure."""
    response = cors_app.test_client().get("/api/v1/auth/me", headers={
        "Origin": CHROME, "Authorization": "Bearer tk_not-a-real-key"})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == CHROME


def test_anonymous_pairing_from_an_extension_is_allowed(cors_app, owner):
    code = AuthActions(cors_app).api("POST", "/auth/pairing-code", owner).get_json()["code"]
    response = cors_app.test_client().post("/api/v1/auth/pair", json={
        "code": code, "device_name": "Chromium"}, headers={"Origin": CHROME})
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == CHROME
    assert response.get_json()["token"].startswith("tk_")


def test_stranger_origin_with_bearer_gets_no_cors_headers(cors_app, owner):
    response = cors_app.test_client().get("/api/v1/auth/me", headers={
        **bearer(owner), "Origin": STRANGER})
    assert "Access-Control-Allow-Origin" not in response.headers


def _browser_with_session(app):
    actions = AuthActions(app)
    browser = actions.browser()
    AuthActions.web_login(browser, "owner", OWNER["password"])
    return browser


@pytest.mark.parametrize("origin", [STRANGER, CHROME, CONFIGURED, "null"])
@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/auth/me", None),
    ("GET", "/api/v1/bookmarks", None),
    ("POST", "/api/v1/bookmarks", {"url": "https://example.org/csrf", "title": "x"}),
    ("POST", "/api/v1/api-keys", {"name": "stolen", "scopes": ["*"]}),
    ("DELETE", "/api/v1/sessions", None),
])
def test_cookie_from_another_origin_is_refused(cors_app, owner, origin, method, path, body):
    """From another origin the cookie is no credential: a guarded view answers 401 and why."""
    browser = _browser_with_session(cors_app)
    response = browser.open(path, method=method, json=body, headers={"Origin": origin})
    assert response.status_code == 401
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "session cookie" in response.get_json()["error"]
    me = browser.get("/api/v1/auth/me")  # the session itself still works same-origin
    assert me.status_code == 200
    listed = AuthActions(cors_app).api("GET", "/bookmarks", owner).get_json()
    assert listed == []
    keys = AuthActions(cors_app).api("GET", "/api-keys", owner).get_json()["api_keys"]
    assert keys == []


def test_a_cross_origin_cookie_leaves_open_views_open(cors_app, owner):
    """The cookie is ignored, not an error: pairing from an extension that sent one works."""
    browser = _browser_with_session(cors_app)
    code = AuthActions(cors_app).api("POST", "/auth/pairing-code", owner).get_json()["code"]
    paired = browser.post("/api/v1/auth/pair", json={"code": code, "device_name": "x"},
                          headers={"Origin": CHROME})
    assert paired.status_code == 201
    assert browser.get("/api/v1/auth/check-users", headers={"Origin": STRANGER}).status_code \
        == 200
    assert browser.get("/api/v1/auth/me").status_code == 200  # and the session is intact


def test_a_cross_origin_cookie_never_counts_on_the_session_budget(make_app):
    app = make_app(API_RATE_LIMIT=2, UI_RATE_LIMIT=100)
    AuthActions(app).register_owner()
    browser = _browser_with_session(app)
    foreign = [browser.get("/api/v1/auth/me", headers={"Origin": STRANGER}).status_code
               for _ in range(3)]
    assert foreign[-1] == 429  # on the address's anonymous budget
    assert browser.get("/api/v1/auth/me").status_code == 200


def test_cookie_from_the_same_origin_still_works_and_csrf_still_applies(cors_app, owner):
    browser = _browser_with_session(cors_app)
    same = {"Origin": "http://localhost"}
    assert browser.get("/api/v1/auth/me", headers=same).status_code == 200
    refused = browser.post("/api/v1/bookmarks", json={"url": "https://example.org/x"},
                           headers=same)
    assert refused.status_code == 403  # no CSRF token
    assert "CSRF" in refused.get_json()["error"]


def test_the_same_origin_gets_no_cors_headers(cors_app, owner):
    browser = _browser_with_session(cors_app)
    response = browser.get("/api/v1/auth/me", headers={"Origin": "http://localhost"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_extensions_can_be_turned_off(make_app):
    app = make_app(CORS_ALLOW_EXTENSIONS=False)
    response = preflight(app.test_client(), "/api/v1/bookmarks", CHROME, "POST")
    assert response.status_code == 403


@pytest.mark.parametrize("bad", ["*", "app.example.org", "https://app.example.org/path",
                                 "https://app.example.org/?q=1"])
def test_cors_origins_setting_takes_origins_only(make_app, bad):
    with pytest.raises(ConfigurationError):
        make_app(CORS_ORIGINS=bad)


# -------------------------------------------------------------- a real preflight, served


@pytest.mark.slow
def test_real_preflight_and_request_through_a_served_instance(serve):
    instance = serve(env_extra={"TRACKEEP_CORS_ORIGINS": CONFIGURED})
    base = f"{instance.url}/api/v1"
    registered = requests.post(f"{base}/auth/register", json=OWNER, timeout=10)
    assert registered.status_code == 201, registered.text
    token = registered.json()["token"]
    for origin in (CHROME, FIREFOX, CONFIGURED):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            path = "/bookmarks" if method in ("GET", "POST") else "/bookmarks/1"
            answer = requests.options(f"{base}{path}", timeout=10, headers={
                "Origin": origin, "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization,content-type"})
            assert answer.status_code == 204, (origin, method, answer.text)
            assert answer.headers["Access-Control-Allow-Origin"] == origin
            assert method in answer.headers["Access-Control-Allow-Methods"]
            assert "authorization" in answer.headers["Access-Control-Allow-Headers"].lower()
            assert "Access-Control-Allow-Credentials" not in answer.headers
    saved = requests.post(f"{base}/bookmarks", timeout=10, json={
        "url": "https://example.org/served", "title": "Served", "tags": ["a"]},
        headers={**bearer(token), "Origin": FIREFOX})
    assert saved.status_code == 201, saved.text
    assert saved.headers["Access-Control-Allow-Origin"] == FIREFOX
    refused = requests.options(f"{base}/bookmarks", timeout=10, headers={
        "Origin": STRANGER, "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_the_ui_behind_a_proxy_that_rewrites_host_is_still_same_origin(make_app):
    """A proxy that passes no Host (or says it in X-Forwarded-Host): our own pages' requests,
    with Origin https://trackeep.example.org, still use the cookie."""
    for n, (config, headers) in enumerate((
            ({"ALLOWED_HOSTS": "trackeep.example.org"}, {}),
            ({"TRUSTED_PROXIES": "127.0.0.1"}, {"X-Forwarded-Host": "trackeep.example.org"}),
            ({"PUBLIC_URL": "https://trackeep.example.org"}, {}))):
        app = make_app(**config)
        if n == 0:  # one database under the three apps
            AuthActions(app).register_owner()
        browser = _browser_with_session(app)
        ours = browser.get("/api/v1/auth/me", headers={
            "Origin": "https://trackeep.example.org", **headers})
        assert ours.status_code == 200, config
        theirs = browser.get("/api/v1/auth/me", headers={
            "Origin": "https://other.example.org", **headers})
        assert theirs.status_code == 401, config


def test_forwarded_host_is_believed_only_from_a_trusted_proxy(make_app):
    app = make_app(TRUSTED_PROXIES="10.0.0.1")
    AuthActions(app).register_owner()
    browser = _browser_with_session(app)
    forged = browser.get("/api/v1/auth/me", headers={
        "Origin": "https://evil.example.com", "X-Forwarded-Host": "evil.example.com"})
    assert forged.status_code == 401

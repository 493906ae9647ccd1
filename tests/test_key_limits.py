"""API keys and device keys (issue 14): limited per key, not per address; a key that does not
authenticate is told why ("invalid API key", "API key expired"), not "authentication
required"."""

from __future__ import annotations

import time

import pytest
from auth_actions import OWNER, AuthActions, bearer

from trackeep_desktop.clock import ManualClock

ADDRESS = "192.0.2.10"


def _get(app, path, token=None, address=ADDRESS):
    headers = bearer(token) if token else {}
    return app.test_client().get(f"/api/v1{path}", headers=headers,
                                 environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def limited(make_app):
    """An app whose general API limit is 3 a minute, with the owner and two keys made
    from another address (so making them costs the test's address nothing)."""
    app = make_app(API_RATE_LIMIT=3, AUTH_RATE_LIMIT=100)
    actions = AuthActions(app)
    setup = {"REMOTE_ADDR": "198.51.100.1"}
    registered = actions.client.post("/api/v1/auth/register", json=OWNER, environ_base=setup)
    token = registered.get_json()["token"]
    keys = []
    for name in ("laptop extension", "phone"):
        made = actions.client.post("/api/v1/api-keys", json={"name": name, "scopes": ["read"]},
                                   headers=bearer(token), environ_base=setup)
        assert made.status_code == 201
        keys.append(made.get_json()["key"])
    return app, token, keys


def test_two_keys_from_one_address_each_have_their_own_budget(limited):
    app, _, (first, second) = limited
    assert [_get(app, "/bookmarks", first).status_code for _ in range(4)] == [200] * 3 + [429]
    answers = [_get(app, "/bookmarks", second) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert _get(app, "/bookmarks", second).status_code == 429
    # the address's anonymous budget is untouched by both keys
    assert _get(app, "/auth/check-users").status_code == 200


def test_a_paired_device_key_has_its_own_budget(limited):
    app, token, (first, _) = limited
    code = AuthActions(app).client.post("/api/v1/auth/pairing-code", headers=bearer(token),
                                        environ_base={"REMOTE_ADDR": "198.51.100.1"})
    paired = app.test_client().post("/api/v1/auth/pair", json={
        "code": code.get_json()["code"], "device_name": "Firefox"},
        environ_base={"REMOTE_ADDR": "198.51.100.2"})
    device = paired.get_json()["token"]
    for _ in range(3):
        _get(app, "/bookmarks", first)
    assert _get(app, "/bookmarks", first).status_code == 429
    assert _get(app, "/bookmarks", device).status_code == 200


def test_bearer_session_tokens_have_their_own_budget(limited):
    app, token, (first, _) = limited
    for _ in range(3):
        assert _get(app, "/bookmarks", first).status_code == 200
    assert _get(app, "/auth/me", token).status_code == 200


def test_anonymous_requests_share_the_address_budget(limited):
    app, _, (first, _) = limited
    answers = [_get(app, "/auth/check-users").status_code for _ in range(4)]
    assert answers == [200] * 3 + [429]
    assert _get(app, "/", None).status_code == 429  # another anonymous client, same address
    assert _get(app, "/auth/check-users", address="192.0.2.99").status_code == 200
    assert _get(app, "/bookmarks", first).status_code == 200  # a key is not anonymous


def test_made_up_keys_count_on_the_address_not_on_budgets_of_their_own(limited):
    app, _, _ = limited
    answers = [_get(app, "/bookmarks", f"tk_made-up-{n}").status_code for n in range(4)]
    assert answers == [401] * 3 + [429]
    assert _get(app, "/auth/check-users").status_code == 429


def test_key_limits_hold_on_redis_too(make_app, redis_url, key_prefix):
    app = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, API_RATE_LIMIT=2)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    first, _ = actions.create_key(token, ["read"], name="a")
    second, _ = actions.create_key(token, ["read"], name="b")
    assert [_get(app, "/tags", first).status_code for _ in range(3)] == [200, 200, 429]
    assert [_get(app, "/tags", second).status_code for _ in range(2)] == [200, 200]


# -------------------------------------------------------------------- why a key is refused


@pytest.fixture
def owner_app(make_app):
    from auth_actions import GENEROUS_LIMITS

    app = make_app(**GENEROUS_LIMITS)
    token, _ = AuthActions(app).register_owner()
    return app, token


@pytest.mark.parametrize("key", ["tk_never-issued-0123456789abcdef", "tk_", "tk_" + "x" * 200])
def test_unknown_key_is_an_invalid_api_key(owner_app, key):
    app, _ = owner_app
    for path in ("/bookmarks", "/auth/me", "/browser-extension/validate"):
        answer = _get(app, path, key)
        assert answer.status_code == 401
        assert answer.get_json() == {"error": "invalid API key"}


def test_revoked_key_is_an_invalid_api_key(owner_app):
    app, token = owner_app
    actions = AuthActions(app)
    key, listing = actions.create_key(token, ["read"])
    assert _get(app, "/bookmarks", key).status_code == 200
    assert actions.api("DELETE", f"/api-keys/{listing['id']}", token).status_code == 204
    answer = _get(app, "/bookmarks", key)
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "invalid API key"}


def test_key_of_a_disabled_account_is_an_invalid_api_key(owner_app):
    app, token = owner_app
    actions = AuthActions(app)
    user = actions.create_user(token, "guest")
    guest = actions.token("guest")
    key, _ = actions.create_key(guest, ["read"])
    assert actions.api("PATCH", f"/admin/users/{user['id']}", token,
                       json={"isActive": False}).status_code == 200
    answer = _get(app, "/bookmarks", key)
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "invalid API key"}


def test_expired_key_says_it_expired(make_app):
    from auth_actions import GENEROUS_LIMITS

    clock = ManualClock(start=float(int(time.time())))
    app = make_app(CLOCK=clock, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    key, _ = actions.create_key(token, ["read"], expires_in_days=1)
    assert _get(app, "/bookmarks", key).status_code == 200
    clock.advance(86400 + 1)
    answer = _get(app, "/bookmarks", key)
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "API key expired"}


def test_no_credentials_and_bad_session_tokens_keep_the_generic_message(owner_app):
    app, _ = owner_app
    assert _get(app, "/bookmarks").get_json() == {"error": "authentication required"}
    assert _get(app, "/bookmarks", "not-a-session").get_json() == {
        "error": "authentication required"}


def test_a_public_view_still_answers_a_bad_key(owner_app):
    """An invalid key on a view open to anyone is not refused: it is just anonymous there."""
    app, _ = owner_app
    assert _get(app, "/auth/check-users", "tk_made-up").status_code == 200

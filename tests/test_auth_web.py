"""The account pages through the Flask test client: set-up, login (with 2FA), cookies,
settings (profile, password, sessions, two-factor, API keys, pairing) and user admin."""

from __future__ import annotations

import re

import pyotp
import pytest
from auth_actions import OWNER, PASSWORD, AuthActions, csrf_from

from trackeep_desktop.storage.models import User


@pytest.fixture
def actions(clocked):
    return AuthActions(clocked.app)


@pytest.fixture
def browser(actions):
    """The owner (set up through the API), signed in to the UI."""
    actions.register_owner()
    client = actions.browser()
    assert AuthActions.web_login(client, "owner", OWNER["password"]).status_code == 302
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def session_cookie(response):
    headers = [h for h in response.headers.getlist("Set-Cookie")
               if h.startswith("trackeep_session=")]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return headers[0]


# ---------------------------------------------------------------------------- first run


def test_index_goes_to_setup_then_to_login(any_app):
    client = any_app.test_client()
    assert client.get("/").headers["Location"] == "/setup"
    assert client.get("/login").headers["Location"] == "/setup"
    AuthActions(any_app).register_owner()
    assert client.get("/").headers["Location"] == "/login"
    assert client.get("/setup").headers["Location"] == "/login"


def test_setup_page_creates_the_owner_and_signs_in(any_app):
    client = any_app.test_client()
    page = client.get("/setup")
    assert page.status_code == 200
    assert "Create the owner account" in text(page)
    token = csrf_from(text(page))
    form = {"csrf_token": token, "full_name": "Olive", "email": "olive@example.com",
            "username": "olive", "password": "long-enough-1", "password_confirm": "other"}
    mismatch = client.post("/setup", data=form)
    assert mismatch.status_code == 400
    assert "The passwords differ." in text(mismatch)
    short = client.post("/setup", data={**form, "password": "short", "password_confirm": "short"})
    assert short.status_code == 400
    assert "The password must have at least 8 characters." in text(short)
    assert 'value="olive@example.com"' in text(short)  # what was typed stays
    everything = text(client.post("/setup", data={
        **form, "email": "not-an-email", "username": "x", "password": "short"}))
    for message in ("Enter a valid email address.", "A username has 3 to 32",
                    "The password must have at least 8 characters.", "The passwords differ."):
        assert message in everything  # every field at fault is flagged at once
    assert everything.count('aria-invalid="true"') == 4
    done = client.post("/setup", data={**form, "password_confirm": "long-enough-1"})
    assert done.status_code == 302
    assert done.headers["Location"] == "/"
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "Welcome, Olive" in text(dashboard)
    assert User.get(User.username == "olive").role == "admin"
    assert client.get("/setup").status_code == 302


# ---------------------------------------------------------------------------------- login


def test_login_form_errors_and_cookie_attributes(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    client = actions.browser()
    wrong = AuthActions.web_login(client, "owner", "nope")
    assert wrong.status_code == 401
    assert "Invalid email, username or password." in text(wrong)
    ok = AuthActions.web_login(client, "owner@example.com", OWNER["password"])
    assert ok.status_code == 302
    assert ok.headers["Location"] == "/"
    cookie = session_cookie(ok)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie
    assert "Expires" not in cookie  # a browser-session cookie
    assert client.get("/").status_code == 200
    assert client.get("/login").headers["Location"] == "/"


def test_cookie_is_secure_over_https(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    client = actions.browser()
    page = client.get("/login", base_url="https://localhost")
    response = client.post("/login", base_url="https://localhost", data={
        "csrf_token": csrf_from(text(page)), "login": "owner", "password": OWNER["password"]})
    assert "Secure" in session_cookie(response)


def test_remember_me_sets_a_persistent_cookie(clocked, actions):
    actions.register_owner()
    client = actions.browser()
    response = AuthActions.web_login(client, "owner", OWNER["password"], remember=True)
    cookie = session_cookie(response)
    assert "Max-Age=2592000" in cookie
    assert "Expires=" in cookie
    token = re.match(r"trackeep_session=([^;]+)", cookie).group(1)
    assert clocked.state.capabilities.sessions.get(token)["remember"] is True
    clocked.advance(2 * 24 * 3600)
    renewed = client.get("/settings/profile")
    assert renewed.status_code == 200
    assert "Max-Age=2592000" in session_cookie(renewed)  # the cookie slides with the session


def test_logout_ends_the_session_on_the_server(clocked, actions, browser):
    session_id = browser.get_cookie("trackeep_session").value
    assert clocked.state.capabilities.sessions.get(session_id) is not None
    page = text(browser.get("/"))
    response = browser.post("/logout", data={"csrf_token": csrf_from(page)})
    assert response.headers["Location"] == "/login"
    assert clocked.state.capabilities.sessions.get(session_id) is None
    assert browser.get("/settings/profile").status_code == 302


def test_next_only_goes_to_local_pages(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    client = actions.browser()
    assert client.get("/settings/security").headers["Location"] == (
        "/login?next=%2Fsettings%2Fsecurity")
    for target, expected in [("/settings/security", "/settings/security"),
                             ("//evil.example/x", "/"), ("https://evil.example", "/")]:
        page = client.get("/login?next=" + target)
        response = client.post("/login", data={
            "csrf_token": csrf_from(text(page)), "login": "owner",
            "password": OWNER["password"], "next": target})
        assert response.headers["Location"] == expected
        client.post("/logout", data={"csrf_token": csrf_from(text(client.get("/")))})


def test_login_with_two_factor_takes_a_second_step(clocked, actions, browser):
    security = text(browser.get("/settings/security"))
    setup = browser.post("/settings/2fa/setup", data={"csrf_token": csrf_from(security),
                                                      "password": OWNER["password"]})
    page = text(setup)
    assert "<svg" in page  # the QR code, inline
    secret = re.search(r'<span class="secret">([A-Z2-7]+)</span>', page).group(1)
    enabled = browser.post("/settings/2fa/enable", data={
        "csrf_token": csrf_from(page), "code": pyotp.TOTP(secret).at(clocked.clock.now())})
    codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", text(enabled))
    assert len(codes) == 10
    assert secret not in text(browser.get("/settings/security"))  # shown once only

    client = actions.browser()
    step = AuthActions.web_login(client, "owner", OWNER["password"])
    assert step.status_code == 200
    assert "Two-factor code" in text(step)
    assert "trackeep_session=" not in str(step.headers.getlist("Set-Cookie"))
    form = {"csrf_token": csrf_from(text(step)),
            "step": re.search(r'name="step" value="([^"]+)"', text(step)).group(1)}
    wrong = client.post("/login/2fa", data={**form, "code": "000000"})
    assert wrong.status_code == 401
    assert "That code is not right" in text(wrong)
    clocked.advance(30)
    ok = client.post("/login/2fa", data={**form, "code": pyotp.TOTP(secret).at(
        clocked.clock.now())})
    assert ok.status_code == 302
    assert client.get("/").status_code == 200

    other = actions.browser()
    step = AuthActions.web_login(other, "owner", OWNER["password"])
    step_form = {"csrf_token": csrf_from(text(step)),
                 "step": re.search(r'name="step" value="([^"]+)"', text(step)).group(1)}
    assert other.post("/login/2fa", data={**step_form, "code": codes[0]}).status_code == 302

    late = actions.browser()
    step = AuthActions.web_login(late, "owner", OWNER["password"])
    clocked.advance(301)
    expired = late.post("/login/2fa", data={
        "csrf_token": csrf_from(text(step)), "code": codes[1],
        "step": re.search(r'name="step" value="([^"]+)"', text(step)).group(1)})
    assert expired.status_code == 400
    assert "took too long" in text(expired)


def test_disabled_users_cannot_sign_in(actions):
    owner, _ = actions.register_owner()
    ann = actions.create_user(owner, "ann")
    actions.api("PATCH", f"/admin/users/{ann['id']}", owner, json={"isActive": False})
    response = AuthActions.web_login(actions.browser(), "ann", PASSWORD)
    assert response.status_code == 403
    assert "disabled" in text(response)


# ------------------------------------------------------------------------------- settings


def test_profile_and_theme(browser):
    saved = AuthActions.form_post(browser, "/settings/profile", "/settings/profile", {
        "full_name": "Olive Oyl", "email": "olive@example.com", "theme": "dark",
        "timezone": "Europe/Prague"})
    assert saved.headers["Location"] == "/settings/profile?notice=profile-saved"
    page = text(browser.get(saved.headers["Location"]))
    assert 'data-theme="dark"' in page
    assert "Your profile is saved." in page
    assert '<option selected>Europe/Prague</option>' in page
    bad = AuthActions.form_post(browser, "/settings/profile", "/settings/profile", {
        "full_name": "x", "email": "not-an-email", "theme": "dark", "timezone": "UTC"})
    assert bad.status_code == 400
    assert "Enter a valid email address." in text(bad)


def test_password_change_signs_out_other_sessions(actions, browser):
    api_token = actions.token("owner", OWNER["password"])
    wrong = AuthActions.form_post(browser, "/settings/profile", "/settings/password", {
        "current_password": "nope", "new_password": "new-password-1",
        "new_password_confirm": "new-password-1"})
    assert wrong.status_code == 400
    assert "The current password is incorrect." in text(wrong)
    done = AuthActions.form_post(browser, "/settings/profile", "/settings/password", {
        "current_password": OWNER["password"], "new_password": "new-password-1",
        "new_password_confirm": "new-password-1"})
    assert done.status_code == 302
    assert actions.api("GET", "/auth/me", api_token).status_code == 401
    assert browser.get("/settings/profile").status_code == 200  # this one stays


def test_security_page_lists_and_revokes_sessions(actions, browser):
    phone = actions.api("POST", "/auth/login", json={
        "email": "owner", "password": OWNER["password"]},
        headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1"})
    phone_token = phone.get_json()["token"]
    page = text(browser.get("/settings/security"))
    assert "Safari on iOS" in page
    assert "this session" in page
    assert phone_token not in page
    phone_row = next(row for row in page.split("<tr>") if "Safari on iOS" in row)
    handle = re.search(r'action="/settings/sessions/([0-9a-f]{16})/revoke"', phone_row).group(1)
    response = browser.post(f"/settings/sessions/{handle}/revoke",
                            data={"csrf_token": csrf_from(page)})
    assert response.headers["Location"].endswith("notice=session-revoked")
    assert actions.api("GET", "/auth/me", phone_token).status_code == 401
    actions.token("owner", OWNER["password"])
    actions.token("owner", OWNER["password"])
    assert len(browser.get("/api/v1/sessions").get_json()["sessions"]) == 4  # + setup's
    AuthActions.form_post(browser, "/settings/security", "/settings/sessions/revoke-others")
    assert [s["current"] for s in browser.get("/api/v1/sessions").get_json()["sessions"]] == [
        True]


def test_api_keys_are_created_shown_once_and_revoked(actions, browser):
    page = text(browser.get("/settings/security"))
    created = browser.post("/settings/api-keys", data={
        "csrf_token": csrf_from(page), "name": "backup script",
        "scopes": ["read", "files:write"], "expires_in_days": "30"})
    assert created.status_code == 200
    shown = text(created)
    key = re.search(r'<code class="secret" id="new-key-value">(tk_[^<]+)</code>',
                    shown).group(1)
    # At the top, with a Copy button, and the Security tab still marked as the page's.
    assert shown.index("new-key-value") < shown.index('id="sessions"')
    assert 'data-copy="#new-key-value"' in shown
    assert re.search(r'<a href="/settings/security" aria-current="page">Security</a>', shown)
    assert actions.api("GET", "/browser-extension/validate", key).get_json()[
        "permissions"] == ["read", "files:write"]
    later = text(browser.get("/settings/security"))
    assert key not in later
    assert key[:11] in later
    assert "backup script" in later
    key_id = re.search(r'action="/settings/api-keys/(\d+)/revoke"', later).group(1)
    revoked = browser.post(f"/settings/api-keys/{key_id}/revoke",
                           data={"csrf_token": csrf_from(later)})
    assert revoked.status_code == 302
    assert actions.api("GET", "/auth/me", key).status_code == 401
    no_scope = AuthActions.form_post(browser, "/settings/security", "/settings/api-keys",
                                     {"name": "x"})
    assert no_scope.status_code == 400
    assert "Choose at least one scope." in text(no_scope)


def test_pairing_code_is_shown_and_pairs_a_device(actions, browser):
    shown = AuthActions.form_post(browser, "/settings/security", "/settings/pairing-code")
    code = re.search(r'<p class="pairing secret">([A-Z2-9]{4}-[A-Z2-9]{4})</p>',
                     text(shown)).group(1)
    assert "within 5 minutes" in text(shown)
    paired = actions.api("POST", "/auth/pair", json={"code": code, "device_name": "Laptop"})
    assert paired.status_code == 201
    assert "Laptop" in text(browser.get("/settings/security"))


def test_two_factor_can_be_turned_off_in_the_ui(clocked, browser):
    page = text(browser.get("/settings/security"))
    wrong = browser.post("/settings/2fa/setup", data={"csrf_token": csrf_from(page),
                                                      "password": "nope"})
    assert wrong.status_code == 400
    assert "The password is incorrect." in text(wrong)
    setup = text(browser.post("/settings/2fa/setup", data={
        "csrf_token": csrf_from(page), "password": OWNER["password"]}))
    secret = re.search(r'<span class="secret">([A-Z2-7]+)</span>', setup).group(1)
    enabled = browser.post("/settings/2fa/enable", data={
        "csrf_token": csrf_from(setup), "code": pyotp.TOTP(secret).at(clocked.clock.now())})
    codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", text(enabled))
    regenerated = AuthActions.form_post(browser, "/settings/security",
                                        "/settings/2fa/backup-codes", {"code": codes[0]})
    new_codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", text(regenerated))
    assert len(new_codes) == 10
    assert not set(new_codes) & set(codes)
    off = AuthActions.form_post(browser, "/settings/security", "/settings/2fa/disable", {
        "password": OWNER["password"], "code": new_codes[0]})
    assert off.headers["Location"].endswith("notice=totp-off")
    assert User.get(User.username == "owner").totp_secret is None


# ---------------------------------------------------------------------------------- admin


def test_admin_manages_users_in_the_ui(actions, browser):
    page = browser.get("/admin/users")
    assert page.status_code == 200
    assert "Add a user" in text(page)
    # The new user's role defaults to user, not to the first option (admin).
    new_role = re.search(r'<select id="f-role" name="role">(.*?)</select>', text(page)).group(1)
    assert re.findall(r"<option selected>(\w+)</option>", new_role) == ["user"]
    created = AuthActions.form_post(browser, "/admin/users", "/admin/users", {
        "full_name": "Ann", "email": "ann@example.com", "username": "ann",
        "password": PASSWORD, "role": "user"})
    assert created.headers["Location"].endswith("notice=user-created")
    taken = AuthActions.form_post(browser, "/admin/users", "/admin/users", {
        "email": "ann@example.com", "username": "ann2", "password": PASSWORD, "role": "user"})
    assert taken.status_code == 400
    assert "already exists" in text(taken)
    ann = User.get(User.username == "ann")
    owner = User.get(User.username == "owner")

    ann_browser = actions.browser()
    AuthActions.web_login(ann_browser, "ann", PASSWORD)
    assert ann_browser.get("/admin/users").status_code == 403
    assert "Users</a>" not in text(ann_browser.get("/"))

    AuthActions.form_post(browser, "/admin/users", f"/admin/users/{ann.id}/active",
                          {"active": "0"})
    assert ann_browser.get("/").status_code == 302  # signed out at once
    assert User.get_by_id(ann.id).is_active is False
    AuthActions.form_post(browser, "/admin/users", f"/admin/users/{ann.id}/active",
                          {"active": "1"})
    AuthActions.form_post(browser, "/admin/users", f"/admin/users/{ann.id}/password",
                          {"password": "reset-password-9"})
    assert AuthActions.web_login(actions.browser(), "ann", "reset-password-9").status_code == 302
    short = AuthActions.form_post(browser, "/admin/users", f"/admin/users/{ann.id}/password",
                                  {"password": "x"})
    assert short.status_code == 400
    assert "at least 8 characters" in text(short)

    last = AuthActions.form_post(browser, "/admin/users", f"/admin/users/{owner.id}/role",
                                 {"role": "user"})
    assert last.status_code == 400
    assert "This is the last admin" in text(last)
    promoted = AuthActions.form_post(browser, "/admin/users", f"/admin/users/{ann.id}/role",
                                     {"role": "admin"})
    assert promoted.status_code == 302
    assert User.get_by_id(ann.id).role == "admin"
    self_disable = AuthActions.form_post(browser, "/admin/users",
                                         f"/admin/users/{owner.id}/active", {"active": "0"})
    assert self_disable.status_code == 400


def test_api_keys_do_not_drive_the_ui(actions):
    owner, _ = actions.register_owner()
    key, _ = actions.create_key(owner, ["read"])
    client = actions.browser()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/settings/security", headers=headers).status_code == 302
    assert client.post("/settings/api-keys", headers=headers,
                       data={"name": "x", "scopes": ["*"]}).status_code == 302
    assert len(actions.api("GET", "/api-keys", owner).get_json()["api_keys"]) == 1

"""The accounts API: first run, login, profile, passwords, admin, sessions, API keys, device
pairing and two-factor authentication, on the embedded capabilities and on Redis."""

from __future__ import annotations

import re

import pyotp
import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, PASSWORD, AuthActions

from trackeep_desktop import accounts
from trackeep_desktop.storage.models import ApiKey, BackupCode, User

USER_KEYS = {"id", "email", "username", "fullName", "role", "theme", "timezone", "createdAt",
             "totpEnabled",
             # the snake_case spellings the original clients read (issue 14)
             "full_name", "created_at", "updated_at", "updatedAt"}


@pytest.fixture
def actions(clocked):
    return AuthActions(clocked.app)


@pytest.fixture
def owner(actions):
    """The owner's token, after first-run registration."""
    token, _ = actions.register_owner()
    return token


# ------------------------------------------------------------------------------- first run


def test_first_run_register_creates_the_owner_as_admin(any_app):
    actions = AuthActions(any_app)
    assert actions.api("GET", "/auth/check-users").get_json() == {"hasUsers": False,
                                                                   "count": 0}
    token, user = actions.register_owner()
    assert set(user) == USER_KEYS
    assert user["role"] == "admin"
    assert user["username"] == "owner"
    assert user["fullName"] == "Olive Owner"
    assert user["totpEnabled"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", user["createdAt"])
    assert actions.api("GET", "/auth/me", token).get_json() == {"user": user,
                                                                "username": "owner"}
    assert actions.api("GET", "/auth/check-users").get_json() == {"hasUsers": True, "count": 1}


def test_racing_first_run_set_ups_create_exactly_one_owner(database):
    """Eight set-ups at once (eight connections) on SQLite or PostgreSQL: one owner."""
    import threading

    results = []
    barrier = threading.Barrier(8)

    def set_up(n):
        barrier.wait()
        try:
            with database.connection_context():
                accounts.create_owner(f"o{n}@example.com", f"owner{n}", PASSWORD, now=0.0,
                                      min_password_length=8)
            results.append("created")
        except accounts.NotAllowed:
            results.append("refused")

    threads = [threading.Thread(target=set_up, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["created"] + ["refused"] * 7
    assert User.select().count() == 1


def test_register_is_403_once_the_owner_exists(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    response = actions.api("POST", "/auth/register", json={
        "email": "eve@example.com", "username": "eve", "password": PASSWORD})
    assert response.status_code == 403
    assert "registration is closed" in response.get_json()["error"]
    assert actions.api("GET", "/auth/check-users").get_json()["count"] == 1


def test_open_registration_creates_plain_users(make_app):
    actions = AuthActions(make_app(REGISTRATION_OPEN=True))
    actions.register_owner()
    response = actions.api("POST", "/auth/register", json={
        "email": "Ann@Example.com", "username": "Ann", "password": PASSWORD,
        "fullName": "Ann"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["user"]["role"] == "user"
    assert body["user"]["email"] == "ann@example.com"
    assert actions.api("GET", "/auth/me", body["token"]).status_code == 200
    taken = actions.api("POST", "/auth/register", json={
        "email": "ann@example.com", "username": "ann2", "password": PASSWORD})
    assert taken.status_code == 409
    assert taken.get_json()["field"] == "email"


def test_short_password_gets_a_clear_message(any_app):
    response = AuthActions(any_app).api("POST", "/auth/register", json={
        **OWNER, "password": "short"})
    assert response.status_code == 400
    assert response.get_json() == {"error": "The password must have at least 8 characters.",
                                   "field": "password"}


def test_passwords_are_stored_as_argon2id_hashes(any_app):
    AuthActions(any_app).register_owner()
    stored = User.get(User.username == "owner").password_hash
    assert stored.startswith("$argon2id$")
    assert OWNER["password"] not in stored


def test_passwords_are_hashed_with_the_production_parameters(app, production_password_hashing):
    """The rest of the suite hashes cheaply (conftest); the program's own parameters are
    OWASP's argon2id (19 MiB, 2 passes, 1 lane), and a hash made with other parameters is
    upgraded to them at the next login."""
    from conftest import FAST_HASHER

    actions = AuthActions(app)
    actions.register_owner()
    stored = User.get(User.username == "owner").password_hash
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored

    User.update(password_hash=FAST_HASHER.hash(OWNER["password"])).where(
        User.username == "owner").execute()
    assert actions.login("owner", OWNER["password"]).status_code == 200
    upgraded = User.get(User.username == "owner").password_hash
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), upgraded


# ----------------------------------------------------------------------------------- login


def test_login_by_email_or_username_then_logout_ends_the_session(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    by_email = actions.login("OWNER@example.com", OWNER["password"])
    assert by_email.status_code == 200
    assert set(by_email.get_json()) == {"token", "user"}
    token = actions.token("owner", OWNER["password"])
    assert actions.api("GET", "/auth/me", token).get_json()["user"]["username"] == "owner"
    assert actions.api("POST", "/auth/logout", token).status_code == 200
    assert actions.api("GET", "/auth/me", token).status_code == 401
    # The other session is untouched.
    assert actions.api("GET", "/auth/me", by_email.get_json()["token"]).status_code == 200


def test_wrong_password_and_unknown_account_answer_the_same(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    wrong = actions.login("owner", "not-the-password")
    unknown = actions.login("nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json() == {
        "error": "Invalid email, username or password."}
    assert actions.login("", "x").status_code == 400


# ------------------------------------------------------------------------ profile, password


def test_profile_update(actions, owner):
    response = actions.api("PUT", "/auth/profile", owner, json={
        "fullName": "Olive O.", "email": "olive@example.com", "theme": "dark",
        "timezone": "Europe/Prague"})
    assert response.status_code == 200
    user = response.get_json()["user"]
    assert (user["fullName"], user["email"], user["theme"], user["timezone"]) == (
        "Olive O.", "olive@example.com", "dark", "Europe/Prague")
    bad_theme = actions.api("PATCH", "/auth/profile", owner, json={"theme": "purple"})
    assert bad_theme.status_code == 400
    assert bad_theme.get_json()["field"] == "theme"
    bad_zone = actions.api("PATCH", "/auth/profile", owner, json={"timezone": "Mars/Base"})
    assert bad_zone.status_code == 400
    assert "time zone" in bad_zone.get_json()["error"]
    actions.create_user(owner, "ann")
    taken = actions.api("PATCH", "/auth/profile", owner, json={"email": "ann@example.com"})
    assert taken.status_code == 409


def test_password_change_needs_the_current_one_and_ends_other_sessions(actions, owner):
    other = actions.token("owner", OWNER["password"])
    wrong = actions.api("PUT", "/auth/password", owner, json={
        "currentPassword": "nope", "newPassword": "brand-new-pass"})
    assert wrong.status_code == 400
    assert wrong.get_json()["error"] == "The current password is incorrect."
    short = actions.api("PUT", "/auth/password", owner, json={
        "currentPassword": OWNER["password"], "newPassword": "tiny"})
    assert short.status_code == 400
    assert "at least 8" in short.get_json()["error"]
    changed = actions.api("PUT", "/auth/password", owner, json={
        "currentPassword": OWNER["password"], "newPassword": "brand-new-pass"})
    assert changed.status_code == 200
    assert changed.get_json()["sessionsEnded"] == 1
    assert actions.api("GET", "/auth/me", owner).status_code == 200
    assert actions.api("GET", "/auth/me", other).status_code == 401
    assert actions.login("owner", OWNER["password"]).status_code == 401
    assert actions.login("owner", "brand-new-pass").status_code == 200


# ------------------------------------------------------------------------------------ admin


def test_admin_creates_disables_resets_and_promotes_users(actions, owner):
    ann = actions.create_user(owner, "ann")
    assert ann["role"] == "user"
    assert ann["isActive"] is True
    listed = actions.api("GET", "/admin/users", owner).get_json()["users"]
    assert [u["username"] for u in listed] == ["owner", "ann"]
    ann_token = actions.token("ann")
    assert actions.api("GET", "/admin/users", ann_token).status_code == 403
    assert actions.api("POST", "/admin/users", ann_token, json={}).status_code == 403

    disabled = actions.api("PATCH", f"/admin/users/{ann['id']}", owner, json={"isActive": False})
    assert disabled.get_json()["user"]["isActive"] is False
    assert actions.api("GET", "/auth/me", ann_token).status_code == 401
    refused = actions.login("ann", PASSWORD)
    assert refused.status_code == 403
    assert "disabled" in refused.get_json()["error"]
    actions.api("PATCH", f"/admin/users/{ann['id']}", owner, json={"isActive": True})
    ann_token = actions.token("ann")

    reset = actions.api("POST", f"/admin/users/{ann['id']}/reset-password", owner,
                        json={"password": "reset-by-admin"})
    assert reset.status_code == 200
    assert actions.api("GET", "/auth/me", ann_token).status_code == 401
    assert actions.login("ann", PASSWORD).status_code == 401
    ann_token = actions.token("ann", "reset-by-admin")

    promoted = actions.api("PUT", f"/admin/users/{ann['id']}/role", owner, json={"role": "admin"})
    assert promoted.get_json()["user"]["role"] == "admin"
    assert actions.api("GET", "/admin/users", ann_token).status_code == 200
    assert actions.api("PATCH", f"/admin/users/{ann['id']}", owner,
                       json={"role": "boss"}).status_code == 400
    assert actions.api("GET", "/admin/users/999", owner).status_code == 404


def test_the_last_admin_cannot_be_removed(actions, owner):
    me = actions.api("GET", "/auth/me", owner).get_json()["user"]
    demote = actions.api("PUT", f"/admin/users/{me['id']}/role", owner, json={"role": "user"})
    assert demote.status_code == 403
    assert "last admin" in demote.get_json()["error"]
    assert actions.api("PATCH", f"/admin/users/{me['id']}", owner,
                       json={"isActive": False}).status_code == 403
    ann = actions.create_user(owner, "ann", role="admin")
    ann_token = actions.token("ann")
    # With two admins either may step down, but then the other is the last one.
    assert actions.api("PUT", f"/admin/users/{me['id']}/role", owner,
                       json={"role": "user"}).status_code == 200
    last = actions.api("PUT", f"/admin/users/{ann['id']}/role", ann_token, json={"role": "user"})
    assert last.status_code == 403
    assert accounts.get_user(ann["id"]).role == "admin"


# --------------------------------------------------------------------------------- sessions


def test_sessions_are_listed_and_revoked(actions, owner):
    phone = actions.api("POST", "/auth/login", json={
        "email": "owner", "password": OWNER["password"]},
        headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14) Chrome/126.0 Mobile"})
    phone_token = phone.get_json()["token"]
    listed = actions.api("GET", "/sessions", owner).get_json()["sessions"]
    assert len(listed) == 2
    assert {s["device"] for s in listed} >= {"Chrome on Android"}
    current = [s for s in listed if s["current"]]
    assert len(current) == 1
    assert all(owner not in str(s) and phone_token not in str(s) for s in listed)
    assert set(listed[0]) == {"id", "device", "userAgent", "ip", "kind", "remember",
                              "createdAt", "lastActive", "current"}

    other = next(s for s in listed if not s["current"])
    assert actions.api("DELETE", f"/sessions/{other['id']}", owner).status_code == 204
    assert actions.api("GET", "/auth/me", phone_token).status_code == 401
    assert actions.api("DELETE", f"/sessions/{other['id']}", owner).status_code == 404
    third = actions.token("owner", OWNER["password"])
    fourth = actions.token("owner", OWNER["password"])
    assert actions.api("DELETE", "/sessions", owner).get_json() == {"revoked": 2}
    assert actions.api("GET", "/auth/me", third).status_code == 401
    assert actions.api("GET", "/auth/me", fourth).status_code == 401
    assert actions.api("GET", "/auth/me", owner).status_code == 200


def test_remember_me_sessions_last_thirty_days(clocked, actions, owner):
    short = actions.token("owner", OWNER["password"])
    remembered = actions.token("owner", OWNER["password"], remember=True)
    sessions = clocked.state.capabilities.sessions
    assert sessions.get(short)["ttl"] == 24 * 3600
    assert sessions.get(remembered)["ttl"] == 30 * 24 * 3600
    clocked.advance(25 * 3600)
    assert actions.api("GET", "/auth/me", short).status_code == 401
    assert actions.api("GET", "/auth/me", remembered).status_code == 200
    clocked.advance(29 * 24 * 3600)  # sliding: the request above renewed it
    assert actions.api("GET", "/auth/me", remembered).status_code == 200
    clocked.advance(31 * 24 * 3600)
    assert actions.api("GET", "/auth/me", remembered).status_code == 401


def test_last_active_is_written_at_most_once_a_minute(clocked, actions, owner):
    sessions = clocked.state.capabilities.sessions
    before = sessions.get(owner)["last_active"]
    for _ in range(5):
        actions.api("GET", "/auth/me", owner)
    assert sessions.get(owner)["last_active"] == before
    clocked.advance(61)
    actions.api("GET", "/auth/me", owner)
    assert sessions.get(owner)["last_active"] == before + 61


# --------------------------------------------------------------------------------- API keys


def test_api_keys_are_shown_once_stored_hashed_and_revocable(actions, owner):
    key, listing = actions.create_key(owner, ["read", "bookmarks:write"], name="script")
    assert key.startswith("tk_")
    assert len(key) > 40
    assert listing["prefix"] == key[:11]
    assert listing["scopes"] == ["read", "bookmarks:write"]
    assert listing["lastUsedAt"] is None
    assert listing["expiresAt"] is None
    stored = ApiKey.get(ApiKey.id == listing["id"])
    assert stored.key_hash == accounts.sha256_hex(key)
    assert key not in stored.key_hash

    me = actions.api("GET", "/auth/me", key)
    assert me.status_code == 200
    assert me.get_json()["user"]["username"] == "owner"
    keys = actions.api("GET", "/api-keys", owner).get_json()["api_keys"]
    assert len(keys) == 1
    assert key not in str(keys)
    assert keys[0]["lastUsedAt"] is not None

    assert actions.api("DELETE", f"/api-keys/{listing['id']}", owner).status_code == 204
    assert actions.api("GET", "/auth/me", key).status_code == 401
    assert actions.api("DELETE", f"/api-keys/{listing['id']}", owner).status_code == 404


def test_api_key_validation_errors(actions, owner):
    no_name = actions.api("POST", "/api-keys", owner, json={"scopes": ["read"]})
    assert no_name.status_code == 400
    assert no_name.get_json()["field"] == "name"
    bad_scope = actions.api("POST", "/api-keys", owner, json={"name": "x", "scopes": ["root"]})
    assert bad_scope.status_code == 400
    assert "Unknown scope" in bad_scope.get_json()["error"]
    past = actions.api("POST", "/api-keys", owner, json={
        "name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 400


def test_api_keys_expire(clocked, actions, owner):
    key, listing = actions.create_key(owner, ["*"], expires_in_days=1)
    assert listing["expiresAt"] is not None
    assert actions.api("GET", "/auth/me", key).status_code == 200
    clocked.advance(86400 + 1)
    assert actions.api("GET", "/auth/me", key).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(clocked, actions, owner):
    key, listing = actions.create_key(owner, ["read"])
    actions.api("GET", "/auth/me", key)
    first = ApiKey.get_by_id(listing["id"]).last_used_at
    clocked.advance(30)
    actions.api("GET", "/auth/me", key)
    assert ApiKey.get_by_id(listing["id"]).last_used_at == first
    clocked.advance(31)
    actions.api("GET", "/auth/me", key)
    assert ApiKey.get_by_id(listing["id"]).last_used_at == first + 61


def test_key_scopes_limit_what_it_can_do(actions, owner):
    reader, _ = actions.create_key(owner, ["read"])
    assert actions.api("GET", "/sessions", reader).status_code == 200  # read allows GETs
    assert actions.api("POST", "/api-keys", reader,
                       json={"name": "x", "scopes": ["read"]}).status_code == 403
    writer, _ = actions.create_key(owner, ["bookmarks:write"])
    denied = actions.api("GET", "/sessions", writer)
    assert denied.status_code == 403
    assert "scope" in denied.get_json()["error"]
    manager, _ = actions.create_key(owner, ["account"])
    assert actions.api("POST", "/api-keys", manager,
                       json={"name": "y", "scopes": ["account"]}).status_code == 201
    escalate = actions.api("POST", "/api-keys", manager, json={"name": "z", "scopes": ["*"]})
    assert escalate.status_code == 403


def test_browser_extension_validate(actions, owner):
    key, _listing = actions.create_key(owner, ["read", "bookmarks:write", "files:write"])
    response = actions.api("GET", "/browser-extension/validate", key)
    assert response.status_code == 200
    body = response.get_json()
    assert body["valid"] is True
    assert body["username"] == "owner"
    assert body["user_id"] == actions.api("GET", "/auth/me", owner).get_json()["user"]["id"]
    assert body["permissions"] == ["read", "bookmarks:write", "files:write"]
    assert actions.api("GET", "/browser-extension/validate").status_code == 401
    assert actions.api("GET", "/browser-extension/validate", "tk_nope").status_code == 401


# ---------------------------------------------------------------------------------- pairing


def test_pairing_code_is_exchanged_once_for_a_scoped_key(actions, owner):
    shown = actions.api("POST", "/auth/pairing-code", owner).get_json()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", shown["code"])
    assert shown["expiresIn"] == 300
    paired = actions.api("POST", "/auth/pair", json={"code": shown["code"].lower(),
                                                     "device_name": "Firefox at work"})
    assert paired.status_code == 201
    body = paired.get_json()
    assert body["token"].startswith("tk_")
    assert body["user"]["username"] == "owner"
    assert body["api_key"]["name"] == "Firefox at work"
    assert body["api_key"]["scopes"] == ["read", "bookmarks:write", "files:write"]
    check = actions.api("GET", "/browser-extension/validate", body["token"]).get_json()
    assert check["valid"] is True
    again = actions.api("POST", "/auth/pair", json={"code": shown["code"], "device_name": "x"})
    assert again.status_code == 401


def test_pairing_codes_expire_and_only_the_latest_works(clocked, actions, owner):
    first = actions.api("POST", "/auth/pairing-code", owner).get_json()["code"]
    second = actions.api("POST", "/auth/pairing-code", owner).get_json()["code"]
    assert actions.api("POST", "/auth/pair", json={"code": first}).status_code == 401
    clocked.advance(301)
    assert actions.api("POST", "/auth/pair", json={"code": second}).status_code == 401


def test_pairing_is_rate_limited(make_app):
    actions = AuthActions(make_app())
    actions.register_owner()
    for _ in range(5):
        assert actions.api("POST", "/auth/pair", json={"code": "AAAA-AAAA"}).status_code == 401
    limited = actions.api("POST", "/auth/pair", json={"code": "AAAA-AAAA"})
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers


# ------------------------------------------------------------------------------- two-factor


def totp_code(clocked, secret: str) -> str:
    return pyotp.TOTP(secret).at(clocked.clock.now())


def enable_totp(actions, clocked, token) -> tuple[str, list[str]]:
    setup = actions.api("POST", "/auth/2fa/setup", token, json={"password": OWNER["password"]})
    assert setup.status_code == 200
    secret = setup.get_json()["secret"]
    enabled = actions.api("POST", "/auth/2fa/enable", token,
                          json={"code": totp_code(clocked, secret)})
    assert enabled.status_code == 200, enabled.get_json()
    return secret, enabled.get_json()["backup_codes"]


def test_totp_enrolment_needs_the_password_and_a_first_code(clocked, actions, owner):
    assert actions.api("POST", "/auth/2fa/setup", owner,
                       json={"password": "wrong"}).status_code == 400
    setup = actions.api("POST", "/auth/2fa/setup", owner, json={"password": OWNER["password"]})
    body = setup.get_json()
    assert body["otpauth_url"].startswith("otpauth://totp/Trackeep:owner%40example.com?")
    assert body["qr_code"].startswith("data:image/png;base64,")
    assert actions.api("GET", "/auth/2fa/status", owner).get_json() == {
        "enabled": False, "setup": True, "backupCodesRemaining": 0}
    wrong = actions.api("POST", "/auth/2fa/enable", owner, json={"code": "000000"})
    assert wrong.status_code == 400
    enabled = actions.api("POST", "/auth/2fa/enable", owner,
                          json={"code": totp_code(clocked, body["secret"])})
    codes = enabled.get_json()["backup_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    stored = [b.code_hash for b in BackupCode.select()]
    assert len(stored) == 10
    assert not set(codes) & set(stored)
    assert actions.api("GET", "/auth/me", owner).get_json()["user"]["totpEnabled"] is True


def test_backup_codes_differ_between_users(clocked, actions, owner):
    _, owner_codes = enable_totp(actions, clocked, owner)
    actions.create_user(owner, "ann")
    ann = actions.token("ann")
    setup = actions.api("POST", "/auth/2fa/setup", ann, json={"password": PASSWORD}).get_json()
    ann_codes = actions.api("POST", "/auth/2fa/enable", ann, json={
        "code": totp_code(clocked, setup["secret"])}).get_json()["backup_codes"]
    assert not set(owner_codes) & set(ann_codes)


def test_login_with_totp_requires_a_code_and_backup_codes_work_once(clocked, actions, owner):
    secret, backup_codes = enable_totp(actions, clocked, owner)
    without = actions.login("owner", OWNER["password"])
    assert without.status_code == 401
    assert without.get_json()["requires_totp"] is True
    assert "token" not in without.get_json()
    wrong = actions.login("owner", OWNER["password"], totp_code="123456")
    assert wrong.status_code == 401
    assert wrong.get_json()["requires_totp"] is True
    bad_password = actions.login("owner", "nope", totp_code=totp_code(clocked, secret))
    assert bad_password.status_code == 401
    assert "requires_totp" not in bad_password.get_json()

    clocked.advance(30)  # the enrolment used this time step's code
    code = totp_code(clocked, secret)
    assert actions.login("owner", OWNER["password"], totp_code=code).status_code == 200
    replay = actions.login("owner", OWNER["password"], totp_code=code)
    assert replay.status_code == 401  # a TOTP code works once

    backup = backup_codes[0]
    assert actions.login("owner", OWNER["password"], totp_code=backup).status_code == 200
    assert actions.login("owner", OWNER["password"], totp_code=backup).status_code == 401
    assert actions.login("owner", OWNER["password"],
                         totp_code=backup_codes[1].upper().replace("-", "")).status_code == 200
    assert actions.api("GET", "/auth/2fa/status", owner).get_json()[
        "backupCodesRemaining"] == 8


def test_backup_codes_can_be_regenerated(clocked, actions, owner):
    secret, old_codes = enable_totp(actions, clocked, owner)
    clocked.advance(30)
    fresh = actions.api("POST", "/auth/2fa/backup-codes/regenerate", owner,
                        json={"code": totp_code(clocked, secret)})
    new_codes = fresh.get_json()["backup_codes"]
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)
    assert actions.login("owner", OWNER["password"], totp_code=old_codes[0]).status_code == 401
    assert actions.login("owner", OWNER["password"], totp_code=new_codes[0]).status_code == 200


def test_disabling_totp_needs_password_and_code(clocked, actions, owner):
    secret, backup_codes = enable_totp(actions, clocked, owner)
    clocked.advance(30)
    no_password = actions.api("POST", "/auth/2fa/disable", owner, json={
        "password": "wrong", "code": totp_code(clocked, secret)})
    assert no_password.status_code == 400
    no_code = actions.api("POST", "/auth/2fa/disable", owner, json={
        "password": OWNER["password"], "code": "000000"})
    assert no_code.status_code == 400
    off = actions.api("POST", "/auth/2fa/disable", owner, json={
        "password": OWNER["password"], "code": backup_codes[0]})
    assert off.status_code == 200
    assert actions.login("owner", OWNER["password"]).status_code == 200
    assert BackupCode.select().count() == 0
    assert User.get(User.username == "owner").totp_secret is None


def test_cli_resets_a_forgotten_password_and_ends_the_sessions(make_app, database_url,
                                                               monkeypatch, capsys):
    import io

    from trackeep_desktop import cli

    app = make_app(**GENEROUS_LIMITS)
    actions = AuthActions(app)
    old_token, _ = actions.register_owner()
    User.update(totp_secret=pyotp.random_base32()).where(
        User.username == OWNER["username"]).execute()  # and a lost authenticator
    common = ["--data-dir", app.config["DATA_DIR"], "--database-url", database_url,
              "--log-level", "WARNING"]

    def reset(*extra, password="a-new-secret-42"):
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        return cli.main(["user", "reset-password", *extra, "--stdin", *common])

    typed = iter(["a-new-secret-42", "a-new-secret-43"])  # asked twice, typed differently
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    assert cli.main(["user", "reset-password", "owner", *common]) == 1
    assert "differ" in capsys.readouterr().err
    assert reset("nobody") == 1
    assert "no account" in capsys.readouterr().err
    assert reset("owner", password="short") == 1
    assert "Nothing was changed" in capsys.readouterr().err
    assert reset("owner@example.com", "--disable-2fa") == 0
    out = capsys.readouterr().out
    assert "1 session(s) ended" in out
    assert "two-factor authentication is off" in out

    again = AuthActions(make_app(**GENEROUS_LIMITS))  # sessions as stored, after the reset
    assert again.api("GET", "/auth/me", old_token).status_code == 401
    assert again.login("owner", OWNER["password"]).status_code == 401
    new = again.login("owner", "a-new-secret-42")  # no second factor asked any more
    assert new.status_code == 200
    assert new.get_json()["user"]["totpEnabled"] is False


def test_cli_password_reset_builds_no_flask_app(make_app, database_url, monkeypatch, capsys):
    import io

    import flask

    from trackeep_desktop import cli

    app = make_app(**GENEROUS_LIMITS)
    old_token, _ = AuthActions(app).register_owner()
    common = ["--data-dir", app.config["DATA_DIR"], "--database-url", database_url,
              "--log-level", "WARNING"]

    def no_app(*args, **kwargs):
        raise AssertionError("the CLI's password reset built a Flask app")

    with monkeypatch.context() as patched:
        patched.setattr("trackeep_desktop.app.create_app", no_app)
        patched.setattr(flask.Flask, "__init__", no_app)
        patched.setattr("sys.stdin", io.StringIO("a-new-secret-42\n"))
        assert cli.main(["user", "reset-password", "owner", "--stdin", *common]) == 0
    assert "1 session(s) ended" in capsys.readouterr().out

    again = AuthActions(make_app(**GENEROUS_LIMITS))
    assert again.api("GET", "/auth/me", old_token).status_code == 401
    assert again.login("owner", "a-new-secret-42").status_code == 200


def test_cli_password_reset_on_redis_signs_out_the_running_instance(
        make_app, database_url, redis_url, key_prefix, monkeypatch, capsys):
    import io
    import threading

    from trackeep_desktop import cli
    from trackeep_desktop.accounts import sessions

    app = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    old_token, _ = actions.register_owner()
    announced, arrived = [], threading.Event()

    def on_ended(channel, message):
        announced.extend(message["handles"])
        arrived.set()

    app.extensions["trackeep"].capabilities.pubsub.subscribe(
        sessions.SESSIONS_ENDED_CHANNEL, on_ended)
    monkeypatch.setenv("TRACKEEP_REDIS_URL", redis_url)
    monkeypatch.setenv("TRACKEEP_KEY_PREFIX", key_prefix)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-new-secret-42\n"))
    assert cli.main(["user", "reset-password", "owner", "--stdin", "--data-dir",
                     app.config["DATA_DIR"], "--database-url", database_url,
                     "--log-level", "WARNING"]) == 0
    out = capsys.readouterr().out
    assert "1 session(s) ended" in out
    assert "keeps those sessions" not in out
    assert arrived.wait(5), "the running instance heard nothing of the ended session"
    assert announced == [accounts.session_handle(old_token)]
    assert actions.api("GET", "/auth/me", old_token).status_code == 401  # same instance

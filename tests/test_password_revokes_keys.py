"""A password change may also revoke the account's API keys and paired devices; an admin's
reset (API, page, CLI) does so by default."""

from __future__ import annotations

import io

from auth_actions import GENEROUS_LIMITS, OWNER, PASSWORD, AuthActions

from trackeep_desktop.storage.models import ApiKey, PairingCode


def paired_device(actions, token) -> str:
    code = actions.api("POST", "/auth/pairing-code", token, json={}).get_json()["code"]
    answer = actions.api("POST", "/auth/pair", json={"code": code, "deviceName": "phone"})
    assert answer.status_code in (200, 201), answer.get_json()
    return answer.get_json()["token"]


def test_a_password_change_keeps_keys_unless_asked(app):
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    key, _ = actions.create_key(owner, ["read"])
    answer = actions.api("PUT", "/auth/password", owner, json={
        "currentPassword": OWNER["password"], "newPassword": "new-password-1"})
    assert answer.status_code == 200
    assert answer.get_json()["apiKeysRevoked"] == 0
    assert actions.api("GET", "/auth/me", key).status_code == 200


def test_a_password_change_can_revoke_every_key_and_device(app):
    app.config.update(GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    key, _ = actions.create_key(owner, ["read"])
    device = paired_device(actions, owner)
    actions.api("POST", "/auth/pairing-code", owner, json={})  # one not yet redeemed
    answer = actions.api("PUT", "/auth/password", owner, json={
        "currentPassword": OWNER["password"], "newPassword": "new-password-1",
        "revokeApiKeys": True})
    assert answer.status_code == 200
    assert answer.get_json()["apiKeysRevoked"] == 2
    assert actions.api("GET", "/auth/me", key).status_code == 401
    assert actions.api("GET", "/auth/me", device).status_code == 401
    assert actions.api("GET", "/auth/me", owner).status_code == 200  # this session stays
    with app.app_context():
        assert PairingCode.select().count() == 0


def test_the_settings_form_offers_to_revoke_keys(app):
    app.config.update(GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    key, _ = actions.create_key(owner, ["read"])
    browser = actions.browser()
    AuthActions.web_login(browser, "owner", OWNER["password"])
    page = browser.get("/settings/profile").get_data(as_text=True)
    assert 'name="revoke_api_keys"' in page
    assert "Also revoke my API keys and devices" in page
    done = AuthActions.form_post(browser, "/settings/profile", "/settings/password", {
        "current_password": OWNER["password"], "new_password": "new-password-1",
        "new_password_confirm": "new-password-1", "revoke_api_keys": "on"})
    assert done.status_code == 302
    assert actions.api("GET", "/auth/me", key).status_code == 401


def test_an_admin_reset_revokes_keys_by_default(app):
    app.config.update(GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    ann = actions.create_user(owner, "ann")
    ann_token = actions.token("ann", PASSWORD)
    ann_key, _ = actions.create_key(ann_token, ["read"])
    answer = actions.api("POST", f"/admin/users/{ann['id']}/reset-password", owner,
                         json={"password": "reset-pass-789"})
    assert answer.status_code == 200
    assert answer.get_json()["apiKeysRevoked"] == 1
    assert actions.api("GET", "/auth/me", ann_key).status_code == 401
    # Opting out keeps them.
    ann_token = actions.token("ann", "reset-pass-789")
    ann_key, _ = actions.create_key(ann_token, ["read"])
    answer = actions.api("POST", f"/admin/users/{ann['id']}/reset-password", owner,
                         json={"password": "reset-pass-790", "revokeApiKeys": False})
    assert answer.get_json()["apiKeysRevoked"] == 0
    assert actions.api("GET", "/auth/me", ann_key).status_code == 200


def test_the_admin_page_reset_revokes_keys_when_left_checked(app):
    app.config.update(GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    ann = actions.create_user(owner, "ann")
    ann_key, _ = actions.create_key(actions.token("ann", PASSWORD), ["read"])
    browser = actions.browser()
    AuthActions.web_login(browser, "owner", OWNER["password"])
    page = browser.get("/admin/users").get_data(as_text=True)
    assert 'name="revoke_api_keys" checked' in page
    done = AuthActions.form_post(browser, "/admin/users", f"/admin/users/{ann['id']}/password",
                                 {"password": "reset-pass-789", "revoke_api_keys": "on"})
    assert done.status_code == 302
    assert actions.api("GET", "/auth/me", ann_key).status_code == 401


def test_the_cli_reset_revokes_keys_unless_told_to_keep_them(make_app, database_url,
                                                              monkeypatch, capsys):
    from trackeep_desktop import cli

    app = make_app(**GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    key, _ = actions.create_key(owner, ["read"])
    common = ["--data-dir", app.config["DATA_DIR"], "--database-url", database_url,
              "--log-level", "WARNING"]

    def reset(*extra, password):
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        return cli.main(["user", "reset-password", "owner", *extra, "--stdin", *common])

    assert reset("--keep-api-keys", password="a-new-secret-41") == 0
    assert "0 API key(s) revoked" in capsys.readouterr().out
    assert actions.api("GET", "/auth/me", key).status_code == 200
    assert reset(password="a-new-secret-42") == 0
    assert "1 API key(s) revoked" in capsys.readouterr().out
    assert actions.api("GET", "/auth/me", key).status_code == 401
    with app.app_context():
        assert ApiKey.select().count() == 0

"""TOTP secrets are sealed at rest under a key derived from SECRET_KEY: the column never
holds the base32 secret, two-factor still works after a restart, and a secret stored in
clear before sealing is sealed at start-up and keeps working."""

from __future__ import annotations

import time

import pyotp
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions

from trackeep_desktop.accounts import sealing
from trackeep_desktop.storage.db import connection


def stored_secrets(app) -> tuple[str | None, str | None]:
    db = app.extensions["trackeep"].db
    with connection(db):
        row = db.execute_sql("SELECT totp_secret, totp_pending_secret FROM users "
                             "WHERE username = 'owner'").fetchone()
    return row[0], row[1]


def enable_totp(actions, token) -> str:
    setup = actions.api("POST", "/auth/2fa/setup", token, json={"password": OWNER["password"]})
    assert setup.status_code == 200, setup.get_json()
    secret = setup.get_json()["secret"]
    assert secret not in (stored_secrets(actions.app)[1] or "")  # pending: sealed too
    enabled = actions.api("POST", "/auth/2fa/enable", token,
                          json={"code": pyotp.TOTP(secret).now()})
    assert enabled.status_code == 200, enabled.get_json()
    return secret


def test_the_column_holds_no_base32_secret_and_2fa_works_after_a_restart(make_app, monkeypatch):
    app = make_app(**GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    secret = enable_totp(actions, owner)
    stored, pending = stored_secrets(app)
    assert pending is None
    assert stored is not None
    assert secret not in stored
    assert secret.lower() not in stored.lower()
    assert sealing.is_sealed(stored)
    app.extensions["trackeep"].close()

    monkeypatch.setattr(sealing, "_keys", [])  # a new process: only the restarted app's key
    again = AuthActions(make_app(**GENEROUS_LIMITS))
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: enabling used this one
    answer = again.login("owner", OWNER["password"], totp_code=code)
    assert answer.status_code == 200, answer.get_json()
    assert again.login("owner", OWNER["password"], totp_code="000000").status_code == 401


def test_another_secret_key_does_not_open_the_secrets(make_app, monkeypatch):
    app = make_app(**GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    enable_totp(actions, owner)
    stored, _ = stored_secrets(app)
    monkeypatch.setattr(sealing, "_keys", [])
    sealing.add_key("some other key")
    try:
        sealing.open_sealed(stored)
    except sealing.SealingError:
        pass
    else:
        raise AssertionError("a secret opened with the wrong key")


def test_a_secret_stored_in_clear_is_sealed_at_start_up(make_app):
    from trackeep_desktop.storage.models import User

    app = make_app(**GENEROUS_LIMITS)
    actions = AuthActions(app)
    actions.register_owner()
    secret = pyotp.random_base32()
    with connection(app.extensions["trackeep"].db):
        User.update(totp_secret=secret).where(User.username == "owner").execute()
    again = AuthActions(make_app(**GENEROUS_LIMITS))
    stored, _ = stored_secrets(again.app)
    assert sealing.is_sealed(stored)
    assert secret not in stored
    answer = again.login("owner", OWNER["password"], totp_code=pyotp.TOTP(secret).now())
    assert answer.status_code == 200, answer.get_json()

"""The accounts API under ``/api/v1``: login, registration, profile, two-factor, sessions,
API keys, device pairing, the browser extension's key check, and user administration.

Paths and field names follow the original Trackeep API where it had them (``/auth/login``,
``/auth/register``, ``/auth/me``, ``/auth/check-users``, ``/auth/profile``,
``/auth/password``, ``/auth/2fa/...``, ``/admin/users``, ``/browser-extension/validate``).
"""

from __future__ import annotations

import datetime as dt
import logging

import segno
from flask import Blueprint, Flask, current_app, jsonify, make_response

from trackeep_desktop import accounts
from trackeep_desktop.accounts import deletion, sealing
from trackeep_desktop.web.auth import (
    account_deletion_collaborators,
    admin_required,
    announce_credentials_changed,
    check_grantable,
    clear_session_cookie,
    current_credentials,
    current_user,
    end_current_session,
    end_user_sessions,
    hit_auth_limit,
    list_sessions,
    login_attempt,
    login_required,
    now,
    public,
    require_scope,
    revoke_session,
    start_session,
    verify_login,
)
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.openapi import api_doc
from trackeep_desktop.web.requests import lenient_json_body

log = logging.getLogger(__name__)

bp = Blueprint("auth_api", __name__)


# ---------------------------------------------------------------------------------- helpers


def body() -> dict:
    """The JSON object of the request (an empty one when there is no body)."""
    return lenient_json_body()


def field(data: dict, *names: str, default=None):
    """The first of ``names`` present in ``data`` (the API takes camelCase and snake_case)."""
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return default


def text(data: dict, *names: str) -> str:
    value = field(data, *names, default="")
    if not isinstance(value, str):
        raise ApiError(400, f"{names[0]} must be a string", field=names[0])
    return value


def settings(name: str):
    return current_app.config[name]


def auth_answer(user, session, status: int = 200):
    return jsonify({"token": session["id"], "user": accounts.user_to_json(user)}), status


# ------------------------------------------------------------------------ login and sign-up


# ------------------------------------------------------------------------- what OpenAPI says
# Bodies are plain objects of the fields each view reads (every one optional to the schema:
# a missing one is the view's own 400, which is what the fuzzer should see answered).


def _object(*names: str, **typed: dict) -> dict:
    properties = {name: {"type": "string"} for name in names}
    properties.update(typed)
    return {"type": "object", "properties": properties}


_BOOL = {"type": "boolean"}
_LOGIN = _object("email", "username", "password", "totp_code", remember=_BOOL)
_ACCOUNT = _object("email", "username", "password", "fullName")
_PROFILE = _object("fullName", "email", "theme", "timezone")
_PASSWORD = _object("password")
_CODE = _object("code")
_PASSWORD_AND_CODE = _object("password", "code")
_PAIR = _object("code", "device_name")
_API_KEY = _object("name", "expires_at", scopes={"type": "array", "items": {"type": "string"}},
                   expires_in_days={"type": "integer"})
_GENERATE_KEY = _object("name", "expires_at",
                        scopes={"type": "array", "items": {"type": "string"}},
                        expires_in_days={"type": "integer"})
_ADMIN_USER = _object("email", "username", "password", "fullName", "role")
_ADMIN_UPDATE = _object("role", "fullName", "email", isActive=_BOOL)
_ROLE = _object("role")
_CONFLICT = {409: "an account with this email or username exists"}
_AUTH_FAILED = {401: "wrong login, password or two-factor code",
                403: "the account is disabled"}


@bp.get("/auth/check-users")
@public
def check_users():
    """Whether the first-run set-up is still to be done."""
    count = accounts.count_users()
    return jsonify({"hasUsers": count > 0, "count": count})


@bp.post("/auth/register")
@api_doc(body=_ACCOUNT, status=201, responses={403: "registration is closed", **_CONFLICT})
@public
def register():
    """Create the owner on first run; afterwards only when registration is open."""
    data = body()
    hit_auth_limit("register")
    fields = dict(email=text(data, "email"), username=text(data, "username"),
                  password=text(data, "password"), full_name=text(data, "fullName", "full_name"),
                  now=now(), min_password_length=settings("PASSWORD_MIN_LENGTH"))
    if accounts.count_users() == 0:
        user = accounts.create_owner(**fields)
        log.info("owner account %s created", user.username)
    elif settings("REGISTRATION_OPEN"):
        user = accounts.create_user(**fields)
        log.info("account %s registered", user.username)
    else:
        raise ApiError(403, "registration is closed: ask an admin for an account")
    return auth_answer(user, start_session(user, remember=False, kind="api"), 201)


@bp.post("/auth/login")
@bp.post("/auth/login-totp")
@api_doc(body=_LOGIN, responses=_AUTH_FAILED)
@public
def login():
    """``{email (or username), password, totp_code?, remember?}`` → ``{token, user}``.

    With two-factor on and no valid code: 401 ``{"error", "requires_totp": true}``.
    """
    data = body()
    login_name = text(data, "email", "username", "login").strip()
    password = text(data, "password")
    code = text(data, "totp_code", "totpCode", "code")
    if not login_name or not password:
        raise ApiError(400, "email (or username) and password are required")
    user = accounts.find_user_by_login(login_name)
    with login_attempt("login", user, login_name):
        verify_login(user, password, code or None)
    remember = bool(field(data, "remember", "rememberMe", "remember_me", default=False))
    return auth_answer(user, start_session(user, remember=remember, kind="api"))


@bp.post("/auth/logout")
@login_required
def logout():
    """End this session on the server (an API key has no session to end)."""
    end_current_session()
    response = make_response(jsonify({"message": "logged out"}))
    if current_credentials().via == "cookie":
        clear_session_cookie(response)
    return response


@bp.get("/auth/me")
@login_required
def me():
    """``{user}``; also ``username`` beside it, which the original extension reads."""
    user = current_user()
    return jsonify({"user": accounts.user_to_json(user), "username": user.username})


# ------------------------------------------------------------------------ profile, password


@bp.route("/auth/profile", methods=["PUT", "PATCH"])
@api_doc(body=_PROFILE, responses=_CONFLICT)
@require_scope("account")
def update_profile():
    data = body()
    user = accounts.update_profile(
        current_user(), now=now(), full_name=field(data, "fullName", "full_name"),
        email=field(data, "email"), theme=field(data, "theme"),
        timezone=field(data, "timezone"))
    return jsonify({"user": accounts.user_to_json(user)})


@bp.route("/auth/password", methods=["PUT", "POST"])
@api_doc(body=_object("currentPassword", "newPassword"))
@require_scope("account")
def change_password():
    """Change the password (the current one is required); ends every other session, and
    with ``revokeApiKeys`` every API key and paired device too."""
    data = body()
    user = current_user()
    hit_auth_limit("password", user)
    accounts.change_password(
        user, text(data, "currentPassword", "current_password"),
        text(data, "newPassword", "new_password"), now=now(),
        min_password_length=settings("PASSWORD_MIN_LENGTH"))
    revoke = bool(field(data, "revokeApiKeys", "revoke_api_keys", default=False))
    # A key that changed the password cannot keep itself: it is the thing revoked.
    ended = end_user_sessions(user, keep_current=True)
    revoked = accounts.revoke_all_api_keys(user) if revoke else 0
    if revoked:
        announce_credentials_changed(user)
    log.info("user %s changed their password; %d other sessions ended, %d API keys revoked",
             user.username, ended, revoked)
    return jsonify({"message": "password changed", "sessionsEnded": ended,
                    "apiKeysRevoked": revoked})


# ------------------------------------------------------------------------------- two-factor


def qr_data_uri(uri: str) -> str:
    """A PNG data URI of the QR code for an ``otpauth://`` URI (made here: no CDN, no
    third party sees the secret)."""
    return segno.make(uri, error="m").png_data_uri(scale=5, border=2)


@bp.get("/auth/2fa/status")
@require_scope("account")
def totp_status():
    user = current_user()
    return jsonify({"enabled": user.totp_enabled, "setup": user.totp_pending_secret is not None,
                    "backupCodesRemaining": accounts.backup_codes_left(user)})


@bp.post("/auth/2fa/setup")
@api_doc(body=_PASSWORD, responses={403: "two-factor authentication is on"})
@require_scope("account")
def totp_setup():
    """Start enrolment (the password is required): the secret and its QR code, shown once."""
    data = body()
    user = current_user()
    hit_auth_limit("2fa", user)
    if not accounts.verify_password(user.password_hash, text(data, "password")):
        raise ApiError(400, "The password is incorrect.", field="password")
    secret, uri = accounts.begin_totp_enrolment(user)
    return jsonify({"secret": secret, "otpauth_url": uri, "qr_code": qr_data_uri(uri)})


@bp.post("/auth/2fa/enable")
@api_doc(body=_CODE, responses={403: "no set-up started, or it is on"})
@require_scope("account")
def totp_enable():
    """Confirm enrolment with a first code; answers the ten backup codes, shown once."""
    user = current_user()
    hit_auth_limit("2fa", user)
    codes = accounts.confirm_totp_enrolment(user, text(body(), "code"), now=now())
    log.info("user %s turned two-factor authentication on", user.username)
    return jsonify({"message": "two-factor authentication is on", "backup_codes": codes})


@bp.post("/auth/2fa/disable")
@api_doc(body=_PASSWORD_AND_CODE, responses={403: "two-factor authentication is off"})
@require_scope("account")
def totp_disable():
    data = body()
    user = current_user()
    hit_auth_limit("2fa", user)
    accounts.disable_totp(user, text(data, "password"), text(data, "code"), now=now())
    log.info("user %s turned two-factor authentication off", user.username)
    return jsonify({"message": "two-factor authentication is off"})


@bp.post("/auth/2fa/backup-codes/regenerate")
@api_doc(body=_CODE, responses={403: "two-factor authentication is off"})
@require_scope("account")
def totp_regenerate_backup_codes():
    user = current_user()
    hit_auth_limit("2fa", user)
    codes = accounts.regenerate_backup_codes(user, text(body(), "code"), now=now())
    return jsonify({"backup_codes": codes})


# ---------------------------------------------------------------------------------- pairing


@bp.post("/auth/pairing-code")
@require_scope("account")
def pairing_code():
    """A one-time code (valid ``PAIRING_CODE_TTL`` seconds) for a device to pair with."""
    check_grantable(list(accounts.PAIRING_SCOPES))
    ttl = settings("PAIRING_CODE_TTL")
    issued = now()
    code = accounts.create_pairing_code(current_user(), now=issued, ttl=ttl)
    return jsonify({"code": code, "expiresAt": accounts.iso_time(issued + ttl),
                    "expiresIn": ttl, "scopes": list(accounts.PAIRING_SCOPES)})


@bp.post("/auth/pair")
@api_doc(body=_PAIR, status=201, responses={401: "invalid or expired pairing code"})
@public
def pair():
    """``{code, device_name}`` → 201 ``{token, api_key, user}``: the code, once, for a key."""
    data = body()
    hit_auth_limit("pair")
    redeemed = accounts.redeem_pairing_code(
        text(data, "code"), text(data, "device_name", "deviceName"), now=now())
    if redeemed is None:
        raise ApiError(401, "invalid or expired pairing code")
    record, raw = redeemed
    log.info("user %s paired a device (key %d)", record.user.username, record.id)
    return jsonify({"token": raw, "api_key": accounts.api_key_to_json(record),
                    "user": accounts.user_to_json(record.user)}), 201


# --------------------------------------------------------------------------------- sessions


@bp.get("/sessions")
@require_scope("account")
def sessions_list():
    return jsonify({"sessions": list_sessions(current_user())})


@bp.delete("/sessions/<handle>")
@api_doc(status=204)
@require_scope("account")
def session_revoke(handle):
    if not revoke_session(current_user(), handle):
        raise ApiError(404, "no such session")
    return "", 204


@bp.delete("/sessions")
@require_scope("account")
def sessions_revoke_others():
    """End every session of the user but this one."""
    return jsonify({"revoked": end_user_sessions(current_user(), keep_current=True)})


# --------------------------------------------------------------------------------- API keys


def parse_expiry(data: dict, issued: float) -> float | None:
    """``expires_in_days`` (a number) or ``expires_at`` (ISO 8601) → epoch seconds, or None."""
    days = field(data, "expires_in_days", "expiresInDays")
    if days not in (None, "", 0, "0"):
        try:
            days = float(days)
        except (TypeError, ValueError):
            raise ApiError(400, "expires_in_days must be a number", field="expires_in_days") \
                from None
        if not 0 < days <= 3650:
            raise ApiError(400, "expires_in_days must be between 1 and 3650",
                           field="expires_in_days")
        return issued + days * 86400
    at = field(data, "expires_at", "expiresAt")
    if at:
        try:
            moment = dt.datetime.fromisoformat(str(at).replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "expires_at must be an ISO 8601 time", field="expires_at") \
                from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    return None


@bp.get("/api-keys")
@require_scope("account")
def api_keys_list():
    return jsonify({"api_keys": [accounts.api_key_to_json(k)
                                 for k in accounts.list_api_keys(current_user())]})


@bp.post("/api-keys")
@api_doc(body=_API_KEY, status=201)
@require_scope("account")
def api_key_create():
    """``{name, scopes, expires_in_days?}`` → 201 ``{key, api_key}``; the key is shown once."""
    data = body()
    scopes = field(data, "scopes", "permissions", default=["read"])
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    if not isinstance(scopes, list):
        raise ApiError(400, "scopes must be a list", field="scopes")
    issued = now()
    scopes = accounts.check_scopes(scopes)
    check_grantable(scopes)
    record, raw = accounts.create_api_key(current_user(), text(data, "name"), scopes,
                                          now=issued, expires_at=parse_expiry(data, issued))
    log.info("user %s created API key %d", current_user().username, record.id)
    return jsonify({"key": raw, "api_key": accounts.api_key_to_json(record)}), 201


@bp.post("/auth/generate-key")
@api_doc(body=_GENERATE_KEY, status=201, body_required=False)
@require_scope("account")
def generate_key():
    """The original extension's "Generate API key": ``{name?, scopes?, expires_in_days?}``
    → 201 ``{api_key, key, api_key_info}``, the key (``tk_...``) shown once and stored as its
    SHA-256 like every key. It needs what creating a key needs (a signed-in session, or a
    key with the ``account`` scope; no anonymous caller ever gets a key) and grants the
    pairing scopes (``read bookmarks:write files:write``) unless ``scopes`` asks otherwise."""
    data = body()
    scopes = field(data, "scopes", "permissions", default=list(accounts.PAIRING_SCOPES))
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    if not isinstance(scopes, list):
        raise ApiError(400, "scopes must be a list", field="scopes")
    issued = now()
    scopes = accounts.check_scopes(scopes)
    check_grantable(scopes)
    name = text(data, "name").strip() or "Browser extension"
    record, raw = accounts.create_api_key(current_user(), name, scopes, now=issued,
                                          expires_at=parse_expiry(data, issued))
    log.info("user %s generated API key %d for an extension", current_user().username,
             record.id)
    return jsonify({"api_key": raw, "key": raw,
                    "api_key_info": accounts.api_key_to_json(record)}), 201


@bp.delete("/api-keys/<id:key_id>")
@api_doc(status=204)
@require_scope("account")
def api_key_revoke(key_id):
    if not accounts.revoke_api_key(current_user(), key_id):
        raise ApiError(404, "no such API key")
    announce_credentials_changed(current_user())
    log.info("user %s revoked API key %d", current_user().username, key_id)
    return "", 204


@bp.get("/browser-extension/validate")
@login_required
def browser_extension_validate():
    """What the browser extension asks of a key: whose it is and what it may do."""
    credentials = current_credentials()
    user = credentials.user
    key = credentials.api_key
    return jsonify({
        "valid": True,
        "user_id": user.id,
        "username": user.username,
        "permissions": credentials.scopes,
        "expires_at": accounts.iso_time(key.expires_at) if key is not None else None,
        "user": {"id": user.id, "username": user.username},
    })


# ------------------------------------------------------------------------- administration


def _target_user(user_id: int):
    user = accounts.get_user(user_id)
    if user is None:
        raise ApiError(404, "no such user")
    return user


@bp.get("/admin/users")
@admin_required
def admin_users():
    return jsonify({"users": [accounts.user_to_admin_json(u) for u in accounts.list_users()]})


@bp.post("/admin/users")
@api_doc(body=_ADMIN_USER, status=201, responses=_CONFLICT)
@admin_required
def admin_create_user():
    data = body()
    user = accounts.create_user(
        text(data, "email"), text(data, "username"), text(data, "password"), now=now(),
        full_name=text(data, "fullName", "full_name"),
        role=field(data, "role", default="user"),
        min_password_length=settings("PASSWORD_MIN_LENGTH"))
    log.info("admin %s created account %s", current_user().username, user.username)
    return jsonify({"user": accounts.user_to_admin_json(user)}), 201


@bp.get("/admin/users/<id:user_id>")
@admin_required
def admin_get_user(user_id):
    return jsonify({"user": accounts.user_to_admin_json(_target_user(user_id))})


@bp.patch("/admin/users/<id:user_id>")
@api_doc(body=_ADMIN_UPDATE,
         responses={**_CONFLICT, 403: "not your own account, not the last admin"})
@admin_required
def admin_update_user(user_id):
    """``{role?, isActive?, fullName?, email?}``; disabling ends the user's sessions."""
    data = body()
    user = _target_user(user_id)
    actor = current_user()
    active = field(data, "isActive", "is_active")
    if active is not None:
        if not isinstance(active, bool):
            raise ApiError(400, "isActive must be true or false", field="isActive")
        if not active and user.id == actor.id:
            raise ApiError(403, "you cannot disable your own account")
        accounts.set_active(user, active, now=now())
        if not active:
            end_user_sessions(user, keep_current=False)
            announce_credentials_changed(user)
        log.info("admin %s %s account %s", actor.username,
                 "enabled" if active else "disabled", user.username)
    if field(data, "role") is not None:
        accounts.set_role(user, field(data, "role"), now=now())
        log.info("admin %s made %s a(n) %s", actor.username, user.username, user.role)
    if field(data, "fullName", "full_name", "email") is not None:
        accounts.update_profile(user, now=now(), full_name=field(data, "fullName",
                                                                 "full_name"),
                                email=field(data, "email"))
    return jsonify({"user": accounts.user_to_admin_json(user)})


@bp.put("/admin/users/<id:user_id>/role")
@api_doc(body=_ROLE, responses={403: "not the last admin"})
@admin_required
def admin_set_role(user_id):
    """The original API's role change: ``{role}``."""
    user = _target_user(user_id)
    accounts.set_role(user, text(body(), "role"), now=now())
    return jsonify({"user": accounts.user_to_admin_json(user)})


@bp.post("/admin/users/<id:user_id>/reset-password")
@api_doc(body=_PASSWORD)
@admin_required
def admin_reset_password(user_id):
    """Set a new password for a user (``{password, revokeApiKeys?}``) and end all of their
    sessions; their API keys and paired devices go too unless ``revokeApiKeys`` is false
    (a reset means the account may be in someone else's hands)."""
    data = body()
    user = _target_user(user_id)
    accounts.set_password(user, text(data, "password"), now=now(),
                          min_password_length=settings("PASSWORD_MIN_LENGTH"))
    ended = end_user_sessions(user, keep_current=user.id == current_user().id)
    revoke = bool(field(data, "revokeApiKeys", "revoke_api_keys", default=True))
    revoked = accounts.revoke_all_api_keys(user) if revoke else 0
    if revoked:
        announce_credentials_changed(user)
    log.info("admin %s reset the password of %s (%d API keys revoked)",
             current_user().username, user.username, revoked)
    return jsonify({"user": accounts.user_to_admin_json(user), "sessionsEnded": ended,
                    "apiKeysRevoked": revoked})


def deleted_json(done: deletion.Deleted) -> dict:
    return {"message": "account deleted", "rowsDeleted": done.rows, "blobsDeleted": done.blobs,
            "sessionsEnded": done.sessions}


@bp.delete("/admin/users/<id:user_id>")
@api_doc(responses={403: "not yourself, not the last admin"})
@admin_required
def admin_delete_user(user_id):
    """Delete a user and everything of theirs (not yourself, not the last admin)."""
    user = _target_user(user_id)
    done = deletion.delete_account(user, by=current_user(), **account_deletion_collaborators())
    log.info("admin %s deleted the account %s", current_user().username, user.username)
    return jsonify(deleted_json(done))


@bp.delete("/auth/account")
@api_doc(body=_object("password"), responses={400: "the password or the code is wrong"})
@require_scope("account")
def delete_own_account():
    """``{password, totpCode?}``: delete your own account and everything of yours."""
    data = body()
    user = current_user()
    hit_auth_limit("password", user)
    done = deletion.delete_own_account(
        user, text(data, "password"), text(data, "totpCode", "totp_code", "code"), now=now(),
        **account_deletion_collaborators())
    response = make_response(jsonify(deleted_json(done)))
    if current_credentials().via == "cookie":
        clear_session_cookie(response)
    return response


def init_app(app: Flask, state) -> None:
    """The accounts API under ``/api/v1``; TOTP secrets are sealed under a key derived from
    ``SECRET_KEY`` (any still in clear are sealed now)."""
    app.register_blueprint(bp, url_prefix="/api/v1")
    sealing.add_key(app.secret_key)

    def seal_secrets() -> None:
        sealed = accounts.seal_stored_totp_secrets()
        if sealed:
            log.info("sealed the TOTP secrets of %d account(s) stored in clear", sealed)

    state.periodic.run_now("seal TOTP secrets", seal_secrets)

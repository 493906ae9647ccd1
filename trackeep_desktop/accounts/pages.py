"""The account pages: first-run set-up, login (with its two-factor step), logout, Settings →
Profile and Security (sessions, two-factor, API keys, device pairing), and Users for admins.

Pages post plain HTML forms carrying the CSRF token. A page that shows a secret once (a new
API key, backup codes, the TOTP secret, a pairing code) renders it in the answer to the POST,
never in a URL or a cookie; every other action redirects back with a short notice.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import zoneinfo
from functools import cache

import segno
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from itsdangerous import BadSignature, URLSafeSerializer
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from trackeep_desktop import accounts
from trackeep_desktop.accounts import deletion
from trackeep_desktop.web.auth import (
    LoginFailed,
    RateLimited,
    account_deletion_collaborators,
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
    now,
    page_login_required,
    rate_limit_headers,
    revoke_session,
    set_session_cookie,
    start_session,
    verify_login,
)

log = logging.getLogger(__name__)

bp = Blueprint("auth_web", __name__)

#: How long the two-factor step of a login may take, in seconds.
LOGIN_STEP_TTL = 300

NOTICES = {
    "profile-saved": "Your profile is saved.",
    "password-changed": "Your password is changed; your other sessions were signed out.",
    "password-changed-keys-revoked": "Your password is changed; your other sessions were "
                                     "signed out and your API keys and devices revoked.",
    "session-revoked": "The session is signed out.",
    "sessions-revoked": "Every other session is signed out.",
    "totp-off": "Two-factor authentication is off.",
    "key-revoked": "The API key is revoked.",
    "user-created": "The user is created.",
    "user-updated": "The user is updated.",
    "password-reset": "The password is reset; the user's sessions were signed out.",
}

EXPIRY_CHOICES = [("", "Never"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]

SCOPE_LABELS = {
    "read": "Read everything",
    "bookmarks:write": "Save and edit bookmarks",
    "tasks:write": "Create and edit tasks",
    "notes:write": "Create and edit notes",
    "files:write": "Upload and edit files",
    "messages:write": "Send and manage messages",
    "account": "Manage the account (profile, sessions, keys, two-factor)",
    "*": "Full access",
}


@cache
def timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones() | {"UTC"})


def settings(name: str):
    return current_app.config[name]


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``/x`` but not ``//evil.example`` or ``https://...``."""
    target = target or "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def form_text(name: str) -> str:
    return request.form.get(name, "").strip()


def too_many(exc: RateLimited, template: str, **context):
    """Render a form again with the rate limit's message, as 429 with its headers."""
    response = make_response(render_template(template, error=exc.message, **context), 429)
    response.headers.update(rate_limit_headers(exc.result))
    return response


def signed_in(user, remember: bool, target: str):
    """Start a browser session for ``user`` and go to ``target``."""
    end_current_session()  # a login always starts a new session id
    session = start_session(user, remember=remember, kind="web")
    response = redirect(safe_next(target))
    set_session_cookie(response, session)
    return response


# ---------------------------------------------------------------------------- login step 2


def _login_step_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="trackeep-login-2fa")


def _password_fingerprint(user) -> str:
    # A password change (or reset) between the two steps invalidates the first step.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def make_login_step_token(user, remember: bool, target: str) -> str:
    """A signed note that ``user`` passed the password step, for the two-factor page."""
    return _login_step_serializer().dumps({
        "uid": user.id, "remember": remember, "next": target,
        "pw": _password_fingerprint(user), "exp": now() + LOGIN_STEP_TTL})


def read_login_step_token(token: str):
    """``(user, remember, next)`` from a live token, or None."""
    try:
        data = _login_step_serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("exp", 0) < now():
        return None
    user = accounts.get_user(data.get("uid"))
    if user is None or not user.is_active or not user.totp_enabled \
            or data.get("pw") != _password_fingerprint(user):
        return None
    return user, bool(data.get("remember")), data.get("next") or "/"


# --------------------------------------------------------------------------- set-up, login


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """First run: create the owner (an admin) and sign in."""
    if accounts.count_users() > 0:
        return redirect(url_for(".login"))
    values = {k: form_text(k) for k in ("full_name", "email", "username")}
    if request.method == "GET":
        return render_template("accounts/setup.html", values=values, errors={})
    password = request.form.get("password", "")
    errors = accounts.account_input_errors(
        values["email"], values["username"], password,
        min_password_length=settings("PASSWORD_MIN_LENGTH"))
    if password != request.form.get("password_confirm", ""):
        errors["password_confirm"] = "The passwords differ."
    if errors:  # every field at fault at once
        return render_template("accounts/setup.html", values=values, errors=errors), 400
    try:
        user = accounts.create_owner(values["email"], values["username"], password, now=now(),
                                     full_name=values["full_name"],
                                     min_password_length=settings("PASSWORD_MIN_LENGTH"))
    except accounts.NotAllowed:
        return redirect(url_for(".login"))
    except accounts.AccountError as exc:
        return render_template("accounts/setup.html", values=values,
                               errors={exc.field or "form": exc.message}), 400
    log.info("owner account %s created", user.username)
    return signed_in(user, remember=False, target="/")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if accounts.count_users() == 0:
        return redirect(url_for(".setup"))
    target = safe_next(request.values.get("next"))
    credentials = current_credentials()
    if credentials is not None and credentials.via == "cookie":
        return redirect(target)
    login_name = form_text("login")
    remember = request.form.get("remember") == "on"
    context = dict(login=login_name, remember=remember, next=target)
    if request.method == "GET":
        return render_template("accounts/login.html", **context)
    password = request.form.get("password", "")
    if not login_name or not password:
        return render_template("accounts/login.html", error="Enter your email or username and "
                               "your password.", **context), 400
    user = accounts.find_user_by_login(login_name)
    try:
        with login_attempt("login", user, login_name):
            verify_login(user, password)
    except RateLimited as exc:
        return too_many(exc, "accounts/login.html", **context)
    except LoginFailed as exc:
        if exc.requires_totp:
            return render_template("accounts/login_2fa.html",
                                   step=make_login_step_token(user, remember, target))
        return render_template("accounts/login.html", error=exc.message, **context), exc.status
    return signed_in(user, remember, target)


@bp.post("/login/2fa")
def login_second_factor():
    """The second step of a login: a TOTP code or a backup code."""
    step = request.form.get("step", "")
    found = read_login_step_token(step)
    if found is None:
        return render_template("accounts/login.html", login="", remember=False, next="/",
                               error="The sign-in took too long; please start again."), 400
    user, remember, target = found
    try:
        with login_attempt("2fa", user):
            if accounts.verify_second_factor(user, form_text("code"), now=now()) is None:
                raise LoginFailed(401, "That code is not right; try the current one.")
    except RateLimited as exc:
        return too_many(exc, "accounts/login_2fa.html", step=step)
    except LoginFailed as exc:
        return render_template("accounts/login_2fa.html", step=step, error=exc.message), 401
    return signed_in(user, remember, target)


@bp.post("/logout")
def logout():
    end_current_session()
    response = redirect(url_for(".login"))
    clear_session_cookie(response)
    return response


# ---------------------------------------------------------------------------------- profile


@bp.get("/settings")
@page_login_required
def settings_index():
    return redirect(url_for(".profile"))


def render_profile(status: int = 200, **context):
    context.setdefault("notice", NOTICES.get(request.args.get("notice", "")))
    return render_template("accounts/profile.html", user=current_user(), themes=accounts.THEMES,
                           timezones=timezones(), errors=context.pop("errors", {}),
                           active_tab="profile", **context), status


@bp.route("/settings/profile", methods=["GET", "POST"])
@page_login_required
def profile():
    if request.method == "GET":
        return render_profile()
    try:
        accounts.update_profile(current_user(), now=now(), full_name=form_text("full_name"),
                                email=form_text("email"), theme=form_text("theme"),
                                timezone=form_text("timezone"))
    except accounts.AccountError as exc:
        key = exc.field if exc.field in ("email", "timezone") else "profile"
        return render_profile(400, errors={key: exc.message})
    return redirect(url_for(".profile", notice="profile-saved"))


@bp.post("/settings/password")
@page_login_required
def change_password():
    user = current_user()
    new = request.form.get("new_password", "")
    if new != request.form.get("new_password_confirm", ""):
        return render_profile(400, errors={"new_password_confirm": "The new passwords differ."})
    try:
        hit_auth_limit("password", user)
        accounts.change_password(user, request.form.get("current_password", ""), new,
                                 now=now(), min_password_length=settings("PASSWORD_MIN_LENGTH"))
    except RateLimited as exc:
        return render_profile(429, errors={"password": exc.message})
    except accounts.AccountError as exc:
        field = "current_password" if exc.field == "current_password" else "new_password"
        return render_profile(400, errors={field: exc.message})
    end_user_sessions(user, keep_current=True)
    if request.form.get("revoke_api_keys") == "on":
        accounts.revoke_all_api_keys(user)
        announce_credentials_changed(user)
        return redirect(url_for(".profile", notice="password-changed-keys-revoked"))
    return redirect(url_for(".profile", notice="password-changed"))


# --------------------------------------------------------------------------------- security


def render_security(status: int = 200, **context):
    """Settings → Security with whatever one-time display or error the action produced."""
    user = current_user()
    context.setdefault("notice", NOTICES.get(request.args.get("notice", "")))
    return render_template(
        "accounts/security.html", user=user, sessions=list_sessions(user),
        api_keys=[accounts.api_key_to_json(k) for k in accounts.list_api_keys(user)],
        backup_codes_left=accounts.backup_codes_left(user) if user.totp_enabled else 0,
        scope_labels=SCOPE_LABELS, expiry_choices=EXPIRY_CHOICES,
        errors=context.pop("errors", {}), active_tab="security", **context), status


@bp.get("/settings/security")
@page_login_required
def security():
    return render_security()


@bp.post("/settings/sessions/<handle>/revoke")
@page_login_required
def session_revoke(handle):
    if not revoke_session(current_user(), handle):
        abort(404)
    return redirect(url_for(".security", notice="session-revoked"))


@bp.post("/settings/sessions/revoke-others")
@page_login_required
def sessions_revoke_others():
    end_user_sessions(current_user(), keep_current=True)
    return redirect(url_for(".security", notice="sessions-revoked"))


@bp.post("/settings/account/delete")
@page_login_required
def delete_account():
    """Settings → Security → Delete the account: the password again (and a 2FA code), and
    the confirmation box ticked."""
    user = current_user()
    if request.form.get("confirm") != "on":
        return render_security(400, errors={"delete": "Tick the box to confirm."})
    try:
        hit_auth_limit("password", user)
        deletion.delete_own_account(user, request.form.get("password", ""), form_text("code"),
                                    now=now(), **account_deletion_collaborators())
    except RateLimited as exc:
        return render_security(429, errors={"delete": exc.message})
    except accounts.AccountError as exc:
        return render_security(400, errors={"delete": exc.message})
    response = redirect(url_for(".login"))
    clear_session_cookie(response)
    return response


def _limited_2fa(action):
    """Run a two-factor action under the 2FA rate limit; render errors on the page."""
    try:
        hit_auth_limit("2fa", current_user())
        return action()
    except RateLimited as exc:
        return render_security(429, errors={"totp": exc.message})
    except accounts.AccountError as exc:
        return render_security(400, errors={"totp": exc.message})


@bp.post("/settings/2fa/setup")
@page_login_required
def totp_setup():
    """Show the QR code and the secret once, with the form that confirms a first code."""
    user = current_user()

    def begin():
        if not accounts.verify_password(user.password_hash, request.form.get("password", "")):
            raise accounts.InvalidInput("The password is incorrect.", "password")
        secret, uri = accounts.begin_totp_enrolment(user)
        qr = Markup(segno.make(uri, error="m").svg_inline(scale=4, border=2, dark="#111",
                                                          light="#fff"))
        return render_security(totp_setup={"secret": secret, "qr": qr, "uri": uri})

    return _limited_2fa(begin)


@bp.post("/settings/2fa/enable")
@page_login_required
def totp_enable():
    user = current_user()

    def enable():
        codes = accounts.confirm_totp_enrolment(user, form_text("code"), now=now())
        return render_security(backup_codes=codes, notice="Two-factor authentication is on. "
                               "Keep these backup codes somewhere safe.")

    return _limited_2fa(enable)


@bp.post("/settings/2fa/disable")
@page_login_required
def totp_disable():
    user = current_user()

    def disable():
        accounts.disable_totp(user, request.form.get("password", ""), form_text("code"),
                              now=now())
        return redirect(url_for(".security", notice="totp-off"))

    return _limited_2fa(disable)


@bp.post("/settings/2fa/backup-codes")
@page_login_required
def totp_backup_codes():
    user = current_user()

    def regenerate():
        codes = accounts.regenerate_backup_codes(user, form_text("code"), now=now())
        return render_security(backup_codes=codes, notice="New backup codes; the old ones no "
                               "longer work.")

    return _limited_2fa(regenerate)


@bp.post("/settings/api-keys")
@page_login_required
def api_key_create():
    issued = now()
    days = form_text("expires_in_days")
    expires_at = issued + int(days) * 86400 if days.isdigit() and int(days) > 0 else None
    try:
        record, raw = accounts.create_api_key(
            current_user(), form_text("name"), request.form.getlist("scopes"), now=issued,
            expires_at=expires_at)
    except accounts.AccountError as exc:
        return render_security(400, errors={"api_key": exc.message})
    return render_security(new_key={"key": raw, "name": record.name},
                           notice="Copy the key now: it is shown only once.")


@bp.post("/settings/api-keys/<id:key_id>/revoke")
@page_login_required
def api_key_revoke(key_id):
    if not accounts.revoke_api_key(current_user(), key_id):
        abort(404)
    announce_credentials_changed(current_user())
    return redirect(url_for(".security", notice="key-revoked"))


@bp.post("/settings/pairing-code")
@page_login_required
def pairing_code():
    check_grantable(list(accounts.PAIRING_SCOPES))
    ttl = settings("PAIRING_CODE_TTL")
    code = accounts.create_pairing_code(current_user(), now=now(), ttl=ttl)
    return render_security(pairing={"code": code, "minutes": max(1, round(ttl / 60))})


# ------------------------------------------------------------------------------------ admin


def admin_page(view):
    """Decorator: a signed-in admin, else 403."""

    @functools.wraps(view)
    def check_admin(*args, **kwargs):
        if not current_user().is_admin:
            abort(403, "Only an admin may manage users.")
        return view(*args, **kwargs)

    return page_login_required(check_admin)


def render_users(status: int = 200, **context):
    context.setdefault("notice", NOTICES.get(request.args.get("notice", "")))
    state = current_app.extensions["trackeep"]
    return render_template("accounts/users.html", users=accounts.list_users(),
                           roles=accounts.ROLES, me=current_user(), version=state.version,
                           capabilities=state.capabilities.health(),
                           errors=context.pop("errors", {}),
                           values=context.pop("values", {}), **context), status


@bp.route("/admin/users", methods=["GET", "POST"])
@admin_page
def admin_users():
    if request.method == "GET":
        return render_users()
    values = {k: form_text(k) for k in ("full_name", "email", "username", "role")}
    try:
        accounts.create_user(values["email"], values["username"],
                             request.form.get("password", ""), now=now(),
                             full_name=values["full_name"], role=values["role"] or "user",
                             min_password_length=settings("PASSWORD_MIN_LENGTH"))
    except accounts.AccountError as exc:
        key = exc.field if exc.field in ("email", "username", "password") else "create"
        return render_users(400, values=values, errors={key: exc.message})
    return redirect(url_for(".admin_users", notice="user-created"))


def _target(user_id: int):
    user = accounts.get_user(user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/admin/users/<id:user_id>/role")
@admin_page
def admin_set_role(user_id):
    try:
        accounts.set_role(_target(user_id), form_text("role"), now=now())
    except accounts.AccountError as exc:
        return render_users(400, errors={user_id: exc.message})
    return redirect(url_for(".admin_users", notice="user-updated"))


@bp.post("/admin/users/<id:user_id>/active")
@admin_page
def admin_set_active(user_id):
    user = _target(user_id)
    active = form_text("active") == "1"
    if not active and user.id == current_user().id:
        return render_users(400, errors={user_id: "You cannot disable your own account."})
    try:
        accounts.set_active(user, active, now=now())
    except accounts.AccountError as exc:
        return render_users(400, errors={user_id: exc.message})
    if not active:
        end_user_sessions(user, keep_current=False)
        announce_credentials_changed(user)
    return redirect(url_for(".admin_users", notice="user-updated"))


@bp.post("/admin/users/<id:user_id>/password")
@admin_page
def admin_reset_password(user_id):
    user = _target(user_id)
    try:
        accounts.set_password(user, request.form.get("password", ""), now=now(),
                              min_password_length=settings("PASSWORD_MIN_LENGTH"))
    except accounts.AccountError as exc:
        return render_users(400, errors={user_id: exc.message})
    end_user_sessions(user, keep_current=user.id == current_user().id)
    if request.form.get("revoke_api_keys") == "on":
        accounts.revoke_all_api_keys(user)
        announce_credentials_changed(user)
    return redirect(url_for(".admin_users", notice="password-reset"))


@bp.app_template_filter("when")
def when(iso: str | None) -> str:
    """An ISO 8601 UTC time as ``2024-05-01 12:00`` in the signed-in user's time zone."""
    if not iso:
        return "never"
    moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    user = current_user()
    try:
        zone = zoneinfo.ZoneInfo(user.timezone if user else "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


@bp.app_template_global()
def page_url(path: str) -> str:
    """``path`` if a page answers there, else the dashboard (for sidebar links to sections
    that are not built yet)."""
    try:
        endpoint, _ = current_app.url_map.bind("localhost").match(path, method="GET")
    except RequestRedirect:  # the page is there, at a canonical spelling of the path
        return path
    except HTTPException:
        return "/"
    return "/" if endpoint == "static" else path


def init_app(app: Flask, state) -> None:
    """The sign-in, set-up and settings pages."""
    app.register_blueprint(bp)

"""``/desktop/launch``: the window's first request swaps a launch token for a session of the
desktop owner (desktop mode only)."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, redirect, request, url_for

from trackeep_desktop import accounts
from trackeep_desktop.desktop.launch import EXTENSION, LaunchTokens
from trackeep_desktop.storage.models import User
from trackeep_desktop.web.auth import end_current_session, public, set_session_cookie, start_session

log = logging.getLogger(__name__)


bp = Blueprint("desktop", __name__)


def _private(response):
    """Keep a response that carries or follows a launch token out of caches and Referers."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def find_owner():
    """The account the desktop signs in: the first active admin, or None."""
    return (User.select().where(User.role == "admin", User.is_active)
            .order_by(User.id).first())


@bp.get("/launch")
@public  # deliberately anonymous: the token is the credential
def launch():
    """Swap a launch token for a session of the owner, then show the dashboard.

    Before the owner exists this is the owner set-up; a wrong, used or expired token leads
    to the login page, as for any other client.
    """
    tokens: LaunchTokens = current_app.extensions[EXTENSION]
    if not tokens.redeem(request.args.get("token", "")):
        log.warning("refused a desktop launch link: unknown, used or expired token")
        return _private(redirect(url_for("auth_web.login")))
    if accounts.count_users() == 0:
        return _private(redirect(url_for("auth_web.setup")))
    owner = find_owner()
    if owner is None:
        log.warning("desktop launch: no active admin account to sign in")
        return _private(redirect(url_for("auth_web.login")))
    end_current_session()
    session = start_session(owner, remember=False, kind="desktop")
    tokens.session_ids.add(session["id"])
    response = redirect(url_for("web.index"))
    set_session_cookie(response, session)
    return _private(response)


def register_launch(app: Flask) -> LaunchTokens:
    """Add ``/desktop/launch`` to ``app`` (desktop mode only); returns its token store."""
    tokens = LaunchTokens()
    app.extensions[EXTENSION] = tokens
    app.register_blueprint(bp, url_prefix="/desktop")
    return tokens

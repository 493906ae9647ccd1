"""The server-rendered pages that belong to no other domain: the dashboard."""

from flask import Blueprint, current_app, redirect, render_template, url_for

from . import accounts
from .auth import page_login_required

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    """First run goes to the set-up page; otherwise the dashboard needs a login."""
    if accounts.count_users() == 0:
        return redirect(url_for("auth_web.setup"))
    return dashboard()


@page_login_required
def dashboard():
    state = current_app.extensions["trackeep"]
    return render_template("index.html", version=state.version,
                           capabilities=state.capabilities.health())

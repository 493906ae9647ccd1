"""The Time page (``/time``): a week of tracked time (days by tasks or tags) and the form for
manual entries. A server-rendered shell that ``static/js/pages/time.js`` fills through the
time-entries API; the header's timer on every page is ``static/js/timer.js``."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from trackeep_desktop.web.auth import page_login_required

bp = Blueprint("time_web", __name__)


def init_app(app: Flask, state) -> None:
    """The Time page."""
    app.register_blueprint(bp)


@bp.get("/time")
@page_login_required
def time_page():
    return render_template("time/time.html")

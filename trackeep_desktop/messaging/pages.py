"""The Messages page: a server-rendered shell that ``static/js/pages/messages.js`` fills
through the messaging API and keeps live over the ``/messages`` Socket.IO namespace."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from trackeep_desktop.web.auth import page_login_required

bp = Blueprint("messaging_web", __name__)


def init_app(app: Flask, state) -> None:
    """The Messages page."""
    app.register_blueprint(bp)


@bp.get("/messages")
@page_login_required
def messages():
    return render_template("messaging/messages.html")

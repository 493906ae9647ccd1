"""The app's own pages: the dashboard, bookmarks, tasks, notes, files, tags, trash, and
Settings → Import and export (the other settings pages are in :mod:`.auth_web`).

Each page is a server-rendered shell (``templates/web/``); its list is loaded and changed in
place by one script in ``static/js/pages/`` through the JSON API under ``/api/v1``, so the
page and the API clients go through the same code (the note editor's preview included:
``POST /api/v1/notes/preview``, the sanitizer that renders saved notes).
"""

from __future__ import annotations

import mimetypes

from flask import Blueprint, Flask, current_app, redirect, render_template, url_for

from trackeep_desktop import accounts
from trackeep_desktop.web.auth import page_login_required

bp = Blueprint("web", __name__)


def init_app(app: Flask, state) -> None:
    """The item pages, and JavaScript served as JavaScript."""
    # Browsers refuse ES modules served as text/plain, which is what Python's mimetypes
    # answers for .js on Windows machines whose registry says so.
    mimetypes.add_type("text/javascript", ".js")
    app.register_blueprint(bp)


@bp.get("/")
def index():
    """First run goes to the set-up page; otherwise the dashboard needs a login."""
    if accounts.count_users() == 0:
        return redirect(url_for("auth_web.setup"))
    return dashboard()


@page_login_required
def dashboard():
    return render_template("items/dashboard.html")


@bp.get("/bookmarks")
@page_login_required
def bookmarks():
    return render_template("items/bookmarks.html")


@bp.get("/tasks")
@page_login_required
def tasks():
    return render_template("items/tasks.html")


@bp.get("/notes")
@page_login_required
def notes():
    return render_template("items/notes.html")


@bp.get("/files")
@page_login_required
def files():
    megabytes = current_app.config["MAX_UPLOAD_MB"]
    label = f"{megabytes / 1024:g} GB" if megabytes >= 1024 else f"{megabytes:g} MB"
    return render_template("items/files.html", max_upload_bytes=int(megabytes * 1024 * 1024),
                           max_upload_label=label)


@bp.get("/tags")
@page_login_required
def tags():
    return render_template("items/tags.html")


@bp.get("/trash")
@page_login_required
def trash():
    return render_template("items/trash.html")


@bp.get("/settings/data")
@page_login_required
def data():
    """Settings → Import and export: the full archive, and browsers' bookmark files."""
    return render_template("items/data.html")

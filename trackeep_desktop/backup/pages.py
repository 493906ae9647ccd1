"""Settings → Backups: the list of backups, "Back up now" with its progress (admins)."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, render_template

from trackeep_desktop.web.auth import current_user, page_login_required

bp = Blueprint("backup_web", __name__)


@bp.get("/settings/backups")
@page_login_required
def backups():
    """The backups page (admins only; the owner is one)."""
    if not current_user().is_admin:
        abort(403, "Only an admin may manage backups.")
    return render_template("backup/backups.html")


def init_app(app: Flask, state) -> None:
    app.register_blueprint(bp)

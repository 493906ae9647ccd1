"""The server-rendered pages."""

from flask import Blueprint, current_app, render_template

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    state = current_app.extensions["trackeep"]
    return render_template("index.html", version=state.version,
                           capabilities=state.capabilities.health())

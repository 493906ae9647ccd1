"""The JSON API under ``/api/v1`` (the original Trackeep contract). Domains add their own
blueprints; this one answers the root and turns unknown API paths into JSON 404s."""

from flask import Blueprint, Flask, current_app, jsonify

from trackeep_desktop.web.errors import ApiError

bp = Blueprint("api", __name__)


@bp.get("/")
def index():
    """What this server is."""
    state = current_app.extensions["trackeep"]
    return jsonify({"name": "trackeep", "version": state.version, "api": "v1"})


@bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(unknown):
    raise ApiError(404, f"not found: /api/v1/{unknown}")


def init_app(app: Flask, state) -> None:
    """The API root, and JSON 404s for unknown API paths (registered last)."""
    app.register_blueprint(bp, url_prefix="/api/v1")

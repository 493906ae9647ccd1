"""The JSON API under ``/api/v1`` (the original Trackeep contract). Domains add their own
blueprints; this one answers the root and turns unknown API paths into JSON 404s, and
methods a known path does not serve into JSON 405s with ``Allow``."""

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from trackeep_desktop.web.auth import public
from trackeep_desktop.web.errors import ApiError

bp = Blueprint("api", __name__)
#: Paths of the original API outside ``/api/v1``.
root_bp = Blueprint("api_root", __name__)


@root_bp.get("/api/version")
@public
def version():
    """What this server is, at the original's unversioned path."""
    state = current_app.extensions["trackeep"]
    return jsonify({"name": "trackeep", "version": state.version, "api": "v1"})


@bp.get("/")
def index():
    """What this server is."""
    state = current_app.extensions["trackeep"]
    return jsonify({"name": "trackeep", "version": state.version, "api": "v1"})


CATCH_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def allowed_methods(path: str) -> list[str]:
    """The methods other rules serve on ``path`` (the catch-all matches every method of
    every path, so a rule that lacks the method falls through to it)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = set()
    for method in CATCH_ALL_METHODS:
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:  # NotFound, MethodNotAllowed, RequestRedirect
            continue
        if endpoint != "api.not_found":
            allowed.add(method)
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed | {"OPTIONS"}) if allowed else []


@bp.route("/<path:unknown>", methods=CATCH_ALL_METHODS)
def not_found(unknown):
    allowed = allowed_methods(request.path)
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed)
    raise ApiError(404, f"not found: /api/v1/{unknown}")


def init_app(app: Flask, state) -> None:
    """The API root, and JSON 404s for unknown API paths (registered last)."""
    app.register_blueprint(root_bp)
    app.register_blueprint(bp, url_prefix="/api/v1")

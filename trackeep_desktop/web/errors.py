"""One error handler: JSON ``{"error": ...}`` to API clients, an HTML page to browsers.

Every domain refusal is a :class:`trackeep_desktop.errors.DomainError`; one handler answers
the whole family with the status of its kind and one body shape::

    {"error": message, "field"?: name, "reason"?: code, **details}

(``field`` and ``reason`` only when the domain gives them; ``details`` such as
``limit_bytes`` or ``duplicate``). Views call the domain and let its refusals through; they
raise :class:`ApiError` only for what they parse themselves, with the same body shape.
"""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from trackeep_desktop.errors import DomainError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raise from a view to answer ``status`` with ``{"error": message, **extra}``."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def wants_json() -> bool:
    """API paths, and clients that prefer JSON to HTML, get JSON errors."""
    if request.path.startswith("/api/") or request.path in ("/health", "/metrics"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > (
        request.accept_mimetypes["text/html"])


def error_response(status: int, message: str, headers=None, **extra):
    if wants_json():
        body = {"error": message, **extra}
        response = jsonify(body)
    else:
        response = render_template("error.html", status=status, message=message)
    if isinstance(response, str):
        from flask import make_response

        response = make_response(response)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def init_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, **exc.extra)

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        body = exc.to_json()
        message = body.pop("error")
        return error_response(exc.status, message, headers=exc.headers or None, **body)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        message = exc.description or exc.name
        if exc.code == 404:
            message = f"not found: {request.path}"
        elif exc.code == 405:
            message = f"method {request.method} not allowed on {request.path}"
        elif exc.code == 413:
            message = "request body too large"
        headers = dict(exc.get_headers()) if exc.code == 405 else None
        if headers:
            headers = {k: v for k, v in headers.items() if k.lower() == "allow"}
        return error_response(exc.code or 500, message, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal server error", request_id=g.get("request_id"))


def init_app(app: Flask, state) -> None:
    """Answer every error as JSON to API clients and as a page to browsers."""
    init_error_handlers(app)

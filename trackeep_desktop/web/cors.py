"""Cross-origin requests to the API (CORS), for browser extensions and configured origins.

A browser extension's pages run on their own origin (``chrome-extension://<id>``,
``moz-extension://<uuid>``), so every call they make to ``/api/`` is cross-origin: without
these headers Firefox, and Chromium with site access "on click", refuse to read the answers.

The rules:

* **Who.** Any extension origin (``CORS_ALLOW_EXTENSIONS``, on by default) and the origins
  listed in ``CORS_ORIGINS``. The answer names the one origin that asked
  (``Access-Control-Allow-Origin: <origin>``, ``Vary: Origin``), never ``*``.
* **With what.** Requests that carry their credentials themselves (``Authorization: Bearer``
  with a session token, an API key or a device key) or none at all (``/auth/pair``,
  ``/auth/login``). ``Access-Control-Allow-Credentials`` is never sent, so a browser never
  lets another origin read an answer made with the session cookie.
* **The cookie stays same-origin.** On an API request from another origin (its ``Origin``
  is not this server's host nor ``PUBLIC_URL``'s) the ``trackeep_session`` cookie is not a
  credential (:func:`cookie_allowed`, which :func:`trackeep_desktop.web.auth.presented_credential`
  asks): the request is anonymous, so a guarded view answers 401 saying why, whatever the
  method; the CSRF check still guards same-origin writes.
* **Preflights** (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) are
  answered here, before the rate limit and any view: 204 with the methods the path serves,
  the request headers allowed (``Authorization``, ``Content-Type``, ``X-CSRF-Token``) and
  ``Access-Control-Max-Age``; from an origin not allowed, 403 with no CORS headers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

from trackeep_desktop.web.errors import error_response

#: ``chrome-extension://<32 letters a-p>`` (Chromium, Edge), ``moz-extension://<uuid>``.
EXTENSION_ORIGIN = re.compile(r"^(?:chrome-extension|moz-extension)://[A-Za-z0-9-]{1,64}$")

ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-CSRF-Token")
EXPOSED_HEADERS = ("X-Total-Count", "X-Next-Cursor", "Link", "X-RateLimit-Limit",
                   "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After",
                   "Content-Disposition", "ETag", "X-Request-Id")
#: Seconds a browser may keep a preflight's answer (Chromium caps it at 7,200).
MAX_AGE = 7200

SESSION_COOKIE = "trackeep_session"


def is_extension_origin(origin: str) -> bool:
    """Whether ``origin`` is a browser extension's."""
    return bool(EXTENSION_ORIGIN.match(origin))


def origin_allowed(origin: str, config) -> bool:
    """Whether ``origin`` may call the API cross-origin (with a bearer token or none)."""
    if not origin or origin == "null":
        return False
    if config.get("CORS_ALLOW_EXTENSIONS", True) and is_extension_origin(origin):
        return True
    return origin.rstrip("/").lower() in {o.rstrip("/").lower()
                                           for o in config.get("CORS_ORIGINS") or ()}


def is_same_origin(origin: str) -> bool:
    """Whether ``origin`` is this server: the request's (checked) host, the host a trusted
    proxy forwarded (``X-Forwarded-Host``), PUBLIC_URL's, or one named exactly in
    ALLOWED_HOSTS (a proxy that does not pass the Host on still has our pages' requests
    recognized)."""
    try:
        parts = urlsplit(origin)
        name = (parts.hostname or "").lower()
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    netloc = parts.netloc.lower()
    config = current_app.config
    ours = {request.host.lower()}
    if config.get("PUBLIC_URL"):
        ours.add(urlsplit(config["PUBLIC_URL"]).netloc.lower())
    # (web.auth imports this module: its helper is imported when first needed)
    from trackeep_desktop.web.auth import from_trusted_proxy

    if config.get("TRUSTED_PROXIES") and from_trusted_proxy():
        ours.update(h.strip().lower() for h in
                    request.headers.get("X-Forwarded-Host", "").split(",") if h.strip())
    if netloc in ours:
        return True
    return name in {h for h in config.get("ALLOWED_HOSTS") or () if not h.startswith(".")
                    and h != "*"}



def _is_api() -> bool:
    return request.path.startswith("/api/")


def _uses_cookie() -> bool:
    """The request would be authenticated by the session cookie (no Authorization header)."""
    return not request.headers.get("Authorization") and bool(request.cookies.get(SESSION_COOKIE))


def _methods_served(path: str) -> list[str]:
    from trackeep_desktop.web.api import allowed_methods

    return [m for m in allowed_methods(path) if m != "OPTIONS"]


def _preflight() -> Response | None:
    origin = request.headers.get("Origin", "")
    wanted = request.headers.get("Access-Control-Request-Method", "")
    if request.method != "OPTIONS" or not origin or not wanted or not _is_api():
        return None
    if is_same_origin(origin):
        return None  # nothing cross-origin to allow: Flask's own OPTIONS answer
    g.cors_preflight = True  # answered here, refusals included: no CORS headers added later
    if not origin_allowed(origin, current_app.config):
        return error_response(403, "this origin may not call the API")
    methods = _methods_served(request.path)
    if not methods:
        return error_response(404, f"not found: {request.path}")
    response = Response(status=204)
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
    headers["Access-Control-Max-Age"] = str(MAX_AGE)
    if request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
        headers["Access-Control-Allow-Private-Network"] = "true"
    headers["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    return response


#: Why a guarded API view refused a request whose cookie came from another origin.
CROSS_ORIGIN_COOKIE = ("a request from another origin cannot use the session cookie; send "
                       "Authorization: Bearer <token or API key>")


def cookie_allowed() -> bool:
    """Whether this request's session cookie may authenticate it: anywhere but the API, and
    on the API when the request names no ``Origin`` (a same-origin GET, a navigation) or
    this server's own."""
    origin = request.headers.get("Origin")
    return origin is None or not _is_api() or is_same_origin(origin)


def _before_request() -> Response | None:
    return _preflight()


def _after_request(response: Response) -> Response:
    if g.get("cors_preflight") or not _is_api():
        return response
    origin = request.headers.get("Origin", "")
    if not origin:
        return response
    response.vary.add("Origin")
    if _uses_cookie() or is_same_origin(origin) or not origin_allowed(origin,
                                                                     current_app.config):
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
    return response


def init_app(app: Flask, state=None) -> None:
    """Answer preflights and add CORS headers to API answers (before the rate limit and the
    CSRF check, after the Host check)."""
    app.before_request(_before_request)
    app.after_request(_after_request)

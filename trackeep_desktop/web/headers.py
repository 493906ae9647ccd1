"""Security headers on every response.

Pages get a strict Content-Security-Policy: scripts and styles only from our own static
files (no inline script or style anywhere: the templates carry none, and the scripts set
styles through the CSSOM, which the policy allows), no plugins, no ``<base>``, forms only to
ourselves, and no framing by anyone (``frame-ancestors 'none'`` and ``X-Frame-Options`` for
older engines), which is what stops clickjacking of a signed-in Trackeep. Images may come from
anywhere over HTTP(S), since bookmarks show their sites' icons.

Every response, JSON and files included, gets ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: same-origin``; what is not a page gets ``default-src 'none'``, so a
response opened by itself can run nothing. A view that sets its own policy (file previews,
shared files) keeps it: these are defaults, never overrides.
"""

from __future__ import annotations

from flask import Flask, Response

PAGE_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob: https: http:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "media-src 'self' blob:",
    "frame-src 'self'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

#: Anything that is not a page: nothing in it may run or be framed.
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"

#: Powerful features no page of ours uses.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope",
    "magnetometer", "microphone", "midi", "payment", "usb", "serial", "hid",
    "browsing-topics"))

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    """The headers of the module docstring, where the view set none of its own."""
    headers = response.headers
    for name, value in COMMON.items():
        headers.setdefault(name, value)
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    else:
        headers.setdefault("Content-Security-Policy", OTHER_POLICY)
    return response


def init_app(app: Flask, state=None) -> None:
    """Add the security headers to every response of ``app``."""
    app.after_request(add_security_headers)

"""Which ``Host`` the server answers to, and the base of the links it hands out.

A request's ``Host`` header is the client's to write. Links the program gives away (share
links, paging ``Link`` headers) are built on ``PUBLIC_URL`` when it is set, so a forged Host
never ends up in them; without it they follow the request, whose Host has passed the check
below.

The check (``ALLOWED_HOSTS``, with ``PUBLIC_URL``'s host added):

* a server listening on loopback (the desktop program, a server behind a proxy on this
  machine) answers its loopback names (``localhost``, ``127.0.0.1``, ``[::1]``) and the
  configured hosts. This also stops DNS rebinding: a web page whose own name now points at
  127.0.0.1 cannot talk to the desktop program. When a trusted proxy is configured and no
  host is, any Host is answered: the proxy names us as it likes, and that is its config;
* a server listening beyond loopback checks the configured hosts (and loopback names, for
  probes on the machine); with none configured it answers any Host and warns at start.

A refused Host gets a 400 (JSON under ``/api/``).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from trackeep_desktop.web.errors import error_response

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Whether a listen address or host name is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(config: Mapping[str, Any]) -> frozenset[str] | None:
    """The host names this server answers to (lower case, ``.example.org`` for subdomains),
    or None for any."""
    configured = set(config.get("ALLOWED_HOSTS") or ())
    if config.get("PUBLIC_URL"):
        configured.add((urlsplit(config["PUBLIC_URL"]).hostname or "").lower())
    if "*" in configured:
        return None
    if is_loopback(str(config.get("HOST", "127.0.0.1"))):
        if not configured and config.get("TRUSTED_PROXIES"):
            return None
        return frozenset(LOOPBACK_NAMES | configured)
    return frozenset(LOOPBACK_NAMES | configured) if configured else None


def host_name(header: str) -> str:
    """The name in a Host header, without its port and brackets, in lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(name: str, allowed: frozenset[str]) -> bool:
    """Whether ``name`` is one of ``allowed``: equal, a subdomain of a ``.domain`` entry, or
    a loopback address when loopback names are allowed."""
    if name in allowed:
        return True
    if "127.0.0.1" in allowed and is_loopback(name):
        return True
    return any(entry.startswith(".") and (name.endswith(entry) or name == entry[1:])
               for entry in allowed)


def external_url(path: str) -> str:
    """``path`` (starting with ``/``) as an absolute URL for a client: on ``PUBLIC_URL``
    when it is set, else on the request's own (checked) scheme and host."""
    public = current_app.config.get("PUBLIC_URL")
    base = public if public else request.host_url.rstrip("/")
    return f"{base}{path}"


_SETTINGS = ("ALLOWED_HOSTS", "PUBLIC_URL", "HOST", "TRUSTED_PROXIES")


def _current_allowed() -> frozenset[str] | None:
    config = current_app.config
    settings = tuple(tuple(v) if isinstance(v, list) else v
                     for v in (config.get(name) for name in _SETTINGS))
    cached = config.get("_ALLOWED_HOSTS")
    if cached is None or cached[0] != settings:
        cached = config["_ALLOWED_HOSTS"] = (settings, allowed_hosts(config))
    return cached[1]


def _check_host():
    allowed = _current_allowed()
    if allowed is None:
        return None
    name = host_name(request.headers.get("Host", ""))
    if host_allowed(name, allowed):
        return None
    log.warning("refused a request for host %r (not in TRACKEEP_ALLOWED_HOSTS)", name[:100])
    return error_response(400, "This server does not answer to that host name; add it to "
                               "TRACKEEP_ALLOWED_HOSTS (or set TRACKEEP_PUBLIC_URL).")


def init_app(app: Flask, state=None) -> None:
    """Check the Host of every request (first of every hook)."""
    app.before_request(_check_host)

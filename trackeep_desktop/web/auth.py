"""Authentication for requests: who is calling, what they may do, and how often.

* Credentials come from ``Authorization: Bearer <token>`` (a session token, or an API key
  starting with ``tk_``) or else from the ``trackeep_session`` cookie, which carries only a
  session id. Sessions live in the sessions capability, so a revocation is seen by every
  instance on the next request.
* :func:`login_required` and :func:`require_scope` guard views: API paths answer 401/403
  JSON, pages redirect to the login page.
* CSRF: every state-changing request authenticated by the cookie must carry the session's
  token (form field ``csrf_token`` or header ``X-CSRF-Token``); anonymous form posts carry a
  token that matches the ``trackeep_csrf`` cookie. Bearer requests are exempt.
* Rate limits: the general API limit per client (a session, an API key, else the address;
  see :func:`_general_api_limit`), the pairing/2FA limit per client
  and per account (see :func:`hit_limit`), and the login limit, which counts failures
  only and never locks out a client that signed in before (see :func:`login_attempt`).
  The client address is the socket's, or ``X-Forwarded-For``'s when the socket is a
  trusted proxy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hmac
import ipaddress
import logging
import math
import secrets
from collections.abc import Callable
from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, redirect, request
from itsdangerous import BadSignature, URLSafeSerializer

from trackeep_desktop import accounts
from trackeep_desktop.accounts import sessions
from trackeep_desktop.capabilities.base import RateLimitResult
from trackeep_desktop.capabilities.gate import Limit
from trackeep_desktop.capabilities.keys import short_hash
from trackeep_desktop.clock import SystemClock
from trackeep_desktop.storage.models import ApiKey, User
from trackeep_desktop.web import cors
from trackeep_desktop.web.errors import ApiError, error_response

log = logging.getLogger(__name__)

SESSION_COOKIE = "trackeep_session"
ANON_CSRF_COOKIE = "trackeep_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_MIMETYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

#: A session's "last active" (and its sliding expiry) is renewed at most this often.
TOUCH_INTERVAL = 60

_SYSTEM_CLOCK = SystemClock()


def state():
    """The application's :class:`~trackeep_desktop.app.TrackeepState`."""
    return current_app.extensions["trackeep"]


def clock():
    """The clock of this app (``CLOCK`` in the config lets tests move time)."""
    return current_app.config.get("CLOCK") or _SYSTEM_CLOCK


def now() -> float:
    return clock().now()


def is_api_request() -> bool:
    return request.path.startswith("/api/")


# ------------------------------------------------------------------------- client address


@functools.lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]):
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _is_trusted(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def resolve_client_ip(remote_addr: str, forwarded_for: str, trusted: tuple[str, ...]) -> str:
    """The client's address: ``remote_addr``, unless that is a trusted proxy, in which case
    the right-most ``X-Forwarded-For`` hop that is not itself a trusted proxy.

    Hops left of an untrusted hop are never believed: a client can write anything there.
    """
    networks = _networks(trusted)
    if not networks or not _is_trusted(remote_addr, networks):
        return remote_addr
    hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote_addr  # a malformed chain: trust nothing in it
        if not _is_trusted(hop, networks):
            return hop
    return hops[0] if hops else remote_addr


def client_ip() -> str:
    """The address of the client of this request (cached per request)."""
    if "client_ip" not in g:
        g.client_ip = resolve_client_ip(
            request.remote_addr or "unknown", request.headers.get("X-Forwarded-For", ""),
            tuple(current_app.config["TRUSTED_PROXIES"]))
    return g.client_ip


def from_trusted_proxy() -> bool:
    """Whether this request's socket is one of ``TRUSTED_PROXIES``."""
    networks = _networks(tuple(current_app.config["TRUSTED_PROXIES"]))
    return _is_trusted(request.remote_addr or "", networks)


def request_is_secure() -> bool:
    """HTTPS, directly or at a trusted proxy that says so in ``X-Forwarded-Proto``."""
    if request.is_secure:
        return True
    return (from_trusted_proxy()
            and request.headers.get("X-Forwarded-Proto", "").lower() == "https")


# ------------------------------------------------------------------------------ rate limits


class RateLimited(Exception):
    """A rate limit refused this request; answered 429 by the app's error handler."""

    def __init__(self, name: str, result: RateLimitResult):
        super().__init__(f"rate limit {name}")
        self.name = name
        self.result = result

    @property
    def message(self) -> str:
        wait = max(1, math.ceil(self.result.retry_after))
        return f"Too many requests; try again in {wait} seconds."


def rate_limit_headers(result: RateLimitResult) -> dict[str, str]:
    """``X-RateLimit-*`` (and ``Retry-After`` when refused) for a limiter's answer."""
    headers = {
        "X-RateLimit-Limit": str(result.limit),
        "X-RateLimit-Remaining": str(max(0, result.remaining)),
        "X-RateLimit-Reset": str(math.ceil(result.reset_after)),
    }
    if not result.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(result.retry_after)))
    return headers


def hit_limit(name: str, keys: list[str], limit: int, window: float) -> RateLimitResult:
    """Count one hit on each key (sliding window); raise :class:`RateLimited` on the first
    key that is over ``limit``. Returns the tightest answer, for the response headers."""
    limiter = state().capabilities.rate_limiter
    tightest = None
    for key in keys:
        result = limiter.hit_sliding(key, limit, window)
        if not result.allowed:
            _refused(name, key, window)
            raise RateLimited(name, result)
        if tightest is None or result.remaining < tightest.remaining:
            tightest = result
    return tightest


def _refused(name: str, key: str, window: float) -> None:
    state().metrics.rate_limited.labels(name).inc()
    # One line per client and limit per window, not one per refused request: a flood of
    # 429s must not flood the log (the metric counts every one).
    if state().capabilities.rate_limiter.hit_sliding(f"{key}:logged", 1, window).allowed:
        log.warning("rate limit %s refused a request from %s (further refusals in the next "
                    "%g s are counted in /metrics, not logged)", name, client_ip(), window)


def account_limit_key(kind: str, user: User | None, login: str = "") -> str:
    """The per-account key of a login-like limit: by user id when the account exists (so
    email and username count together), else by the name tried."""
    if user is not None:
        return f"user:{user.id}:{kind}"
    return f"user:{accounts.normalize_email(login)[:254]}:{kind}"


def hit_auth_limit(kind: str, user: User | None = None, login: str | None = None) -> None:
    """Count one login, pairing or 2FA attempt for this client, and for the account when one
    is named (``AUTH_RATE_LIMIT`` per ``AUTH_RATE_WINDOW``)."""
    config = current_app.config
    keys = [f"{client_ip()}:{kind}"]
    if user is not None or login:
        keys.append(account_limit_key(kind, user, login or ""))
    hit_limit(kind, keys, config["AUTH_RATE_LIMIT"], config["AUTH_RATE_WINDOW"])


# A login counts its failures only, on three keys: the client (across accounts) and the
# account from that client tightly (AUTH_RATE_LIMIT), the account from every client loosely
# (ACCOUNT_WIDE_FACTOR times as many), so a stranger who knows a username cannot keep its
# owner out, and distributed guessing is still stopped. A client that holds a valid session
# of the account, or a device that signed into it before (the signed ``trackeep_device``
# cookie set at each successful login), counts on a key of its own and never meets the
# limits strangers fill.

#: The cookie that marks a device which signed in successfully (signed; ids of its users).
DEVICE_COOKIE = "trackeep_device"
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600
#: The per-account limit across all clients is this many times ``AUTH_RATE_LIMIT``.
ACCOUNT_WIDE_FACTOR = 10
#: Accounts one device cookie remembers (the most recent ones).
DEVICE_MAX_USERS = 20


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="trackeep-known-device")


def known_device() -> dict | None:
    """This client's known-device note ``{"d": device id, "u": [user ids]}``, or None."""
    if "known_device" not in g:
        note = None
        raw = request.cookies.get(DEVICE_COOKIE, "")
        if raw:
            try:
                data = _device_serializer().loads(raw)
            except BadSignature:
                data = None
            if (isinstance(data, dict) and isinstance(data.get("d"), str)
                    and isinstance(data.get("u"), list)):
                note = {"d": data["d"], "u": [u for u in data["u"] if isinstance(u, int)]}
        g.known_device = note
    return g.known_device


def _trusted_client(user: User | None) -> str | None:
    """A key part naming this client when it holds a valid session (or key) of ``user`` or
    signed into ``user`` from this device before; else None."""
    if user is None:
        return None
    credentials = current_credentials()
    if credentials is not None and credentials.user.id == user.id:
        if credentials.session is not None:
            return f"session:{short_hash(credentials.session['id'])}"
        if credentials.api_key is not None:
            return f"key:{credentials.api_key.id}"
    device = known_device()
    if device is not None and user.id in device["u"]:
        return f"device:{short_hash(device['d'])}"
    return None


def login_limit_keys(kind: str, user: User | None, login: str = "") -> list[tuple[str, int]]:
    """``(key, limit)`` pairs on which a failed login of this client counts."""
    tight = current_app.config["AUTH_RATE_LIMIT"]
    account = account_limit_key(kind, user, login)
    trusted = _trusted_client(user)
    if trusted is not None:
        return [(f"{account}:{trusted}", tight)]
    ip = client_ip()
    keys = [(f"{ip}:{kind}", tight)]
    if user is not None or login:
        keys += [(f"{account}:ip:{ip}", tight), (account, tight * ACCOUNT_WIDE_FACTOR)]
    return keys


@contextlib.contextmanager
def login_attempt(kind: str, user: User | None, login: str = ""):
    """Guard one login-like attempt: raise :class:`RateLimited` when this client has failed
    too often, count the attempt if it raises a :class:`LoginFailed` that ``counts``, and
    remember this device for ``user`` when it succeeds."""
    config = current_app.config
    window = config["AUTH_RATE_WINDOW"]
    limiter = state().capabilities.rate_limiter
    keys = login_limit_keys(kind, user, login)
    for key, limit in keys:
        result = limiter.peek_sliding(key, limit, window)
        if not result.allowed:
            _refused(kind, key, window)
            raise RateLimited(kind, result)
    try:
        yield
    except LoginFailed as exc:
        if exc.counts:
            for key, limit in keys:
                limiter.hit_sliding(key, limit, window)
        raise
    if user is not None:
        g.remember_device_user = user.id


def _remember_device(response: Response, user_id: int) -> None:
    device = known_device() or {"d": secrets.token_urlsafe(16), "u": []}
    others = [u for u in device["u"] if u != user_id][-(DEVICE_MAX_USERS - 1):]
    note = _device_serializer().dumps({"d": device["d"], "u": [*others, user_id]})
    response.set_cookie(DEVICE_COOKIE, note, max_age=DEVICE_COOKIE_MAX_AGE, httponly=True,
                        samesite="Lax", secure=request_is_secure(), path="/")


def _general_api_limit() -> None:
    """Every /api/ request counts against its client's general limit (raises on 429).

    A client is what authenticates the request, since many clients share one address (every
    window on a desktop, every extension and app behind one NAT): the web UI and the desktop
    window (a session cookie) have ``UI_RATE_LIMIT`` per browser session; a bearer session
    token, an API key or a paired device's key ``API_RATE_LIMIT`` each, keyed by a hash of
    the session id or by the key's row id, never the secret itself; anonymous requests, and
    credentials that do not authenticate, ``API_RATE_LIMIT`` per address. A request with a
    session reads it through the request gate together with the limit (one Redis round
    trip, see :mod:`trackeep_desktop.capabilities.gate`) and leaves it for
    :func:`current_credentials`; an API key is looked up first (one indexed read, which the
    view needs anyway), so a made-up key counts on the address, never on a budget of its own.
    """
    if not is_api_request():
        return
    config = current_app.config
    window = config["API_RATE_WINDOW"]
    general = Limit("general", f"{client_ip()}:general", config["API_RATE_LIMIT"], window)
    if _presents_api_key():
        credentials = current_credentials()
        if credentials is not None and credentials.api_key is not None:
            general = Limit("general", f"key:{credentials.api_key.id}:general",
                            config["API_RATE_LIMIT"], window)
        g.rate_limit = hit_limit(general.name, [general.key], general.limit, window)
        return
    session_id, via = _presented_session()
    if session_id is None:
        g.rate_limit = hit_limit(general.name, [general.key], general.limit, window)
        return
    if via == "cookie":
        signed_in = Limit("ui", f"session:{short_hash(session_id)}:ui",
                          config["UI_RATE_LIMIT"], window)
    else:
        signed_in = Limit("general", f"session:{short_hash(session_id)}:general",
                          config["API_RATE_LIMIT"], window)
    admission = state().capabilities.gate.admit(session_id, signed_in, general)
    g.prefetched_session = (session_id, admission.session)
    if not admission.result.allowed:
        _refused(admission.counted.name, admission.counted.key, window)
        raise RateLimited(admission.counted.name, admission.result)
    g.rate_limit = admission.result


#: Endpoints that also take the credential as ``?token=`` on a GET: the original mobile app's
#: file download, whose link is opened by the system's viewer or player, which cannot send
#: a header. Nowhere else: a token in a URL ends up in histories and proxies' logs.
QUERY_TOKEN_ENDPOINTS = frozenset({"files_api.download"})


def presented_credential() -> tuple[str, str]:
    """The credential this request presents and where: ``(token, "header")`` for
    ``Authorization: Bearer``, ``(token, "query")`` for ``?token=`` on a GET of
    :data:`QUERY_TOKEN_ENDPOINTS`, ``(session id, "cookie")``, ``("", "bad")`` for an
    Authorization header that is not a bearer token (never the cookie then), or ``("", "")``.
    """
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "", "bad"
        return token, "header"
    if request.method in ("GET", "HEAD") and request.endpoint in QUERY_TOKEN_ENDPOINTS:
        token = request.args.get("token", "").strip()
        if token:
            return token, "query"
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and not cors.cookie_allowed():  # another origin: the cookie is not a credential
        g.credentials_refused = cors.CROSS_ORIGIN_COOKIE
        return "", ""
    return (cookie, "cookie") if cookie else ("", "")


def _presents_api_key() -> bool:
    """Whether the request's credential is an API key (``tk_...``)."""
    token, where = presented_credential()
    return where in ("header", "query") and token.startswith(accounts.API_KEY_PREFIX)


def _presented_session() -> tuple[str | None, str]:
    """The session id this request presents (a bearer token that is not an API key, or
    the session cookie when there is no Authorization header) and how; ``(None, "")`` for
    none."""
    token, where = presented_credential()
    if where in ("header", "query") and not token.startswith(accounts.API_KEY_PREFIX):
        return token, "bearer"
    if where == "cookie":
        return token, "cookie"
    return None, ""


# ------------------------------------------------------------------------------ credentials


@dataclasses.dataclass
class Credentials:
    """Who is calling and how: ``via`` is ``cookie``, ``bearer`` (a session token) or
    ``api_key``. Sessions may do everything their user may; keys only their scopes."""

    user: User
    via: str
    session: dict | None = None
    api_key: ApiKey | None = None

    @property
    def scopes(self) -> list[str]:
        return accounts.key_scopes(self.api_key) if self.api_key is not None else ["*"]

    def allows(self, scope: str, method: str) -> bool:
        return accounts.scopes_allow(self.scopes, scope, method in SAFE_METHODS)


def _from_session(session_id: str, via: str) -> Credentials | None:
    store = state().capabilities.sessions
    prefetched = g.pop("prefetched_session", None)  # read by the request gate
    session = prefetched[1] if prefetched and prefetched[0] == session_id \
        else store.get(session_id)
    if session is None:
        return None
    user = accounts.get_user(session["user_id"])
    if user is None or not user.is_active:
        return None
    current = now()
    if current - session.get("last_active", 0) >= TOUCH_INTERVAL:
        ip = client_ip()
        touched = store.touch(session_id, {"ip": ip} if session.get("ip") != ip else None)
        if touched is None:
            return None
        session = touched
        if via == "cookie" and session.get("remember"):
            g.refresh_session_cookie = session
    return Credentials(user=user, via=via, session=session)


#: The 401 message for a key that does not authenticate, by :func:`accounts.check_api_key`'s
#: reason (a key never issued and a revoked one look the same: a revoked key's row is gone).
API_KEY_REFUSALS = {"invalid": "invalid API key", "expired": "API key expired"}


def _from_api_key(raw: str) -> Credentials | None:
    record, problem = accounts.check_api_key(raw, now())
    if record is None:
        g.credentials_refused = API_KEY_REFUSALS.get(problem or "invalid", "invalid API key")
        return None
    accounts.touch_api_key(record, now())
    return Credentials(user=record.user, via="api_key", api_key=record)


def _resolve() -> Credentials | None:
    token, where = presented_credential()
    if where in ("header", "query"):
        if token.startswith(accounts.API_KEY_PREFIX):
            return _from_api_key(token)
        return _from_session(token, "bearer")
    if where == "cookie":
        credentials = _from_session(token, "cookie")
        if credentials is None:
            g.clear_session_cookie = True
        return credentials
    return None


def current_credentials() -> Credentials | None:
    """The credentials of this request, or None (resolved once per request)."""
    if "credentials" not in g:
        g.credentials = _resolve()
    return g.credentials


def current_user() -> User | None:
    """The user making this request, or None."""
    credentials = current_credentials()
    return credentials.user if credentials else None


def _unauthenticated():
    if is_api_request():
        raise ApiError(401, g.get("credentials_refused") or "authentication required")
    target = request.full_path.rstrip("?") if request.method == "GET" else "/"
    return redirect("/login" if target == "/" else "/login?" + urlencode({"next": target}))


def require_scope(scope: str | None) -> Callable:
    """Decorator: the request needs credentials, and an API key needs ``scope`` (or ``*``;
    ``read`` covers GET requests). ``None`` accepts any valid credentials."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            credentials = current_credentials()
            if credentials is None:
                return _unauthenticated()
            if scope is not None and not credentials.allows(scope, request.method):
                raise ApiError(403, f"this API key lacks the {scope!r} scope")
            return view(*args, **kwargs)

        wrapper.auth_scope = scope  # type: ignore[attr-defined]
        wrapper.auth_required = True  # type: ignore[attr-defined]
        return wrapper

    return decorate


#: Decorator: any valid credentials (a session, or an API key of any scope).
login_required = require_scope(None)


def admin_required(view: Callable) -> Callable:
    """Decorator: an admin's session, or an admin's key with the ``account`` scope."""

    @functools.wraps(view)
    def check_admin(*args, **kwargs):
        if not current_user().is_admin:
            raise ApiError(403, "only an admin may do this")
        return view(*args, **kwargs)

    return require_scope("account")(check_admin)


def page_login_required(view: Callable) -> Callable:
    """Decorator for UI pages: a browser session (the cookie), else a redirect to the login
    page. API keys and bearer tokens never drive the UI, whose forms they could post
    without a CSRF token."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        credentials = current_credentials()
        if credentials is None or credentials.via != "cookie":
            return _unauthenticated()
        return view(*args, **kwargs)

    wrapper.auth_required = True  # type: ignore[attr-defined]
    return wrapper


def check_grantable(scopes: list[str]) -> None:
    """An API key may only hand out (to a new key or a pairing code) scopes it holds."""
    credentials = current_credentials()
    if credentials is None or credentials.api_key is None:
        return
    held = set(credentials.scopes)
    if "*" not in held and not set(scopes) <= held:
        raise ApiError(403, "an API key cannot grant scopes it does not have")


def public(view: Callable) -> Callable:
    """Mark a view as deliberately open to anonymous clients (the security tests check that
    every API view is either guarded or marked)."""
    view.auth_public = True  # type: ignore[attr-defined]
    return view


# ------------------------------------------------------------------------------------ login


class LoginFailed(ApiError):
    """A login attempt failed; ``requires_totp`` when the password was right but a valid
    second factor is still missing (the API answers ``{"error", "requires_totp": true}``).
    ``counts`` when it was a wrong guess (a rate limit counts it), not a step still to take
    or a disabled account."""

    def __init__(self, status: int, message: str, requires_totp: bool = False,
                 counts: bool = True):
        super().__init__(status, message, **({"requires_totp": True} if requires_totp else {}))
        self.requires_totp = requires_totp
        self.counts = counts


def verify_login(user: User | None, password: str, totp_code: str | None = None) -> User:
    """Check a login attempt (password, then the second factor when the account has one);
    return the user or raise :class:`LoginFailed`. The caller has counted the attempt."""
    if not accounts.check_credentials(user, password):
        log.info("failed login for %s from %s",
                 user.username if user else "an unknown account", client_ip())
        raise LoginFailed(401, "Invalid email, username or password.")
    if not user.is_active:
        raise LoginFailed(403, "This account is disabled; ask an admin.", counts=False)
    if user.totp_enabled:
        if not totp_code:
            raise LoginFailed(401, "Enter the code from your authenticator app (or a backup "
                                   "code).", requires_totp=True, counts=False)
        if accounts.verify_second_factor(user, totp_code, now=now()) is None:
            log.info("failed two-factor code for %s from %s", user.username, client_ip())
            raise LoginFailed(401, "That two-factor code is not right.", requires_totp=True)
    return user


# --------------------------------------------------------------------------------- sessions


def start_session(user: User, *, remember: bool, kind: str) -> dict:
    """Create a server-side session for ``user`` from this request; returns it (its ``id``
    is the token)."""
    return sessions.start_session(
        state().capabilities.sessions, user, now=now(),
        ttl=sessions.session_ttl(current_app.config, remember), ip=client_ip(),
        user_agent=request.headers.get("User-Agent", ""), remember=remember, kind=kind)


def set_session_cookie(response: Response, session: dict) -> None:
    """Put the session id in the ``trackeep_session`` cookie (persistent for "remember me")."""
    max_age = int(session["ttl"]) if session.get("remember") else None
    response.set_cookie(SESSION_COOKIE, session["id"], max_age=max_age, httponly=True,
                        samesite="Lax", secure=request_is_secure(), path="/")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax",
                           secure=request_is_secure())


def _current_session_id() -> str | None:
    credentials = current_credentials()
    return credentials.session["id"] if credentials and credentials.session else None


def end_current_session() -> None:
    """Delete this request's session on the server (logout)."""
    credentials = current_credentials()
    g.pop("refresh_session_cookie", None)  # the response must not renew the ended session
    if credentials is not None and credentials.session is not None:
        caps = state().capabilities
        sessions.end_session(caps.sessions, caps.pubsub, credentials.session["id"])
        log.info("user %s signed out", credentials.user.username)


def end_user_sessions(user: User, keep_current: bool) -> int:
    """Delete every session of ``user`` (except this request's, if ``keep_current``)."""
    return end_sessions(user.id, keep=_current_session_id() if keep_current else None)


def end_sessions(user_id: int, keep: str | None = None) -> int:
    """Delete every session of a user but ``keep`` and announce them ended to every
    instance (:func:`trackeep_desktop.accounts.sessions.end_sessions` with this app's
    capabilities); needs an application context, not a request."""
    caps = state().capabilities
    return sessions.end_sessions(caps.sessions, caps.pubsub, user_id, keep=keep)


#: The pub/sub channel on which ended sessions are announced to every instance.
SESSIONS_ENDED_CHANNEL = sessions.SESSIONS_ENDED_CHANNEL

#: A session as Settings → Security lists it (see :mod:`trackeep_desktop.accounts.sessions`).
session_to_json = sessions.session_to_json


def account_deletion_collaborators() -> dict:
    """What :mod:`trackeep_desktop.accounts.deletion` needs of this app: the blob store and
    the sessions, pub/sub and cache capabilities."""
    st = state()
    caps = st.capabilities
    return {"store": st.blob_store, "sessions": caps.sessions, "pubsub": caps.pubsub,
            "cache": caps.cache}


def announce_sessions_ended(session_ids: list[str]) -> None:
    """Tell every instance these sessions ended, so their live sockets are closed too."""
    sessions.announce_sessions_ended(state().capabilities.pubsub, session_ids)


def announce_credentials_changed(user: User) -> None:
    """Tell every instance that ``user``'s API keys or account changed (a key revoked, the
    account disabled): each closes the user's sockets whose credentials no longer hold."""
    sessions.announce_credentials_changed(state().capabilities.pubsub, [user.id])


def list_sessions(user: User) -> list[dict]:
    """The user's live sessions as JSON, most recently active first."""
    return sessions.list_sessions(state().capabilities.sessions, user.id,
                                  _current_session_id())


def revoke_session(user: User, handle: str) -> bool:
    """Delete the user's session with this handle; False if the user has none such."""
    caps = state().capabilities
    return sessions.revoke_session(caps.sessions, caps.pubsub, user, handle)


# ------------------------------------------------------------------------------------- CSRF


def csrf_token() -> str:
    """The CSRF token to put in this page's forms (and ``fetch`` headers)."""
    credentials = current_credentials()
    if credentials is not None and credentials.via == "cookie":
        return credentials.session["csrf"]
    if "anon_csrf" not in g:
        existing = request.cookies.get(ANON_CSRF_COOKIE, "")
        g.anon_csrf = existing if len(existing) >= 32 else secrets.token_urlsafe(32)
        g.set_anon_csrf = g.anon_csrf != existing
    return g.anon_csrf


def _check_csrf() -> Response | None:
    if request.method in SAFE_METHODS or request.endpoint == "static":
        return None
    if request.routing_exception is not None:
        return None  # no view will run: let the 404/405 answer
    if request.headers.get("Authorization"):
        return None  # Bearer requests carry no ambient credentials: no CSRF possible
    credentials = current_credentials()
    if credentials is not None and credentials.via == "cookie":
        expected = credentials.session["csrf"]
    elif is_api_request():
        return None  # anonymous API calls have no ambient authority to abuse
    else:
        expected = request.cookies.get(ANON_CSRF_COOKIE, "")
    if not expected:  # nothing could match: refuse before parsing any body
        return _csrf_refused()
    # The header first; the body is parsed (within MAX_CONTENT_LENGTH) only for a form post.
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.mimetype in FORM_MIMETYPES:
        sent = request.form.get(CSRF_FIELD)
    if not hmac.compare_digest(str(sent or ""), expected):
        return _csrf_refused()
    return None


def _csrf_refused() -> Response:
    return error_response(403, "The form has expired or the CSRF token is missing; "
                               "reload the page and try again.")


# ------------------------------------------------------------------------------- app wiring


def _after_request(response: Response) -> Response:
    result = g.get("rate_limit")
    if result is not None and is_api_request():
        for name, value in rate_limit_headers(result).items():
            response.headers.setdefault(name, value)
    if g.get("clear_session_cookie"):
        clear_session_cookie(response)
    elif g.get("refresh_session_cookie"):
        set_session_cookie(response, g.refresh_session_cookie)
    if g.get("remember_device_user") is not None:
        _remember_device(response, g.remember_device_user)
    if g.get("set_anon_csrf"):
        response.set_cookie(ANON_CSRF_COOKIE, g.anon_csrf, httponly=True, samesite="Lax",
                            secure=request_is_secure(), path="/")
    return response


def init_app(app: Flask, state=None) -> None:
    """Apply rate limits and CSRF checks to every request, answer 429s, and give templates
    ``current_user`` and ``csrf_token``."""
    app.before_request(_general_api_limit)
    app.before_request(_check_csrf)
    app.after_request(_after_request)

    @app.errorhandler(RateLimited)
    def _rate_limited(exc: RateLimited):
        return error_response(429, exc.message, headers=rate_limit_headers(exc.result))

    @app.context_processor
    def _template_globals():
        try:
            user = current_user()
        except Exception:  # an error page must render even when the database is down
            log.exception("could not resolve the user for a page")
            g.credentials = user = None
        return {"current_user": user}

    app.add_template_global(csrf_token)  # a global, so imported form macros see it too

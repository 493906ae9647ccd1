"""Request helpers every domain's API uses: JSON bodies, paged list answers, and scope guards
over several scopes; and the checks every request passes at the edge (:func:`init_app`): ids in
paths (the ``id`` URL converter), NUL characters in query and path parameters, the length of
the request line."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from flask import Flask, jsonify, request
from werkzeug.routing import BaseConverter

from trackeep_desktop import items, safejson
from trackeep_desktop.storage.models import MAX_ID
from trackeep_desktop.web.auth import current_credentials, require_scope
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.hosts import external_url

#: The write scopes of the item types; tag, trash and import writes are judged against them.
CONTENT_WRITE_SCOPES = ("bookmarks:write", "tasks:write", "notes:write", "files:write")


def check_scopes(scopes: Iterable[str], every: bool) -> None:
    """403 unless the credentials hold any (or, with ``every``, all) of ``scopes``."""
    credentials = current_credentials()
    scopes = tuple(scopes)
    allowed = [credentials.allows(scope, request.method) for scope in scopes]
    if not (all(allowed) if every else any(allowed)):
        words = " and ".join(scopes) if every else " or ".join(scopes)
        raise ApiError(403, f"this API key lacks the scope: it needs {words}")


def require_scopes(scopes: tuple[str, ...], *, every: bool = False) -> Callable:
    """Decorator: credentials, and an API key holding any (or, with ``every``, all) of
    ``scopes`` (``read`` still covers GET requests)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def check(*args, **kwargs):
            check_scopes(scopes, every)
            return view(*args, **kwargs)

        guarded = require_scope(None)(check)
        guarded.auth_scopes = scopes  # type: ignore[attr-defined]
        guarded.auth_scopes_every = every  # type: ignore[attr-defined]
        return guarded

    return decorate


#: The longest request line (method, path and query) answered: gevent's pywsgi refuses longer
#: ones itself (``web.server`` makes that answer JSON too); other servers and the test client
#: are held to the same bound here.
MAX_REQUEST_LINE = 8192


def _at_most(limit: int) -> str:
    """A regular expression for the decimal numbers 1 to ``limit`` (no sign, no leading zero):
    shorter numbers, then each way of being below ``limit`` digit by digit, then ``limit``."""
    digits = str(limit)
    branches = [rf"[1-9]\d{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            rest = len(digits) - i - 1
            branches.append(f"{digits[:i]}[{low}-{int(digit) - 1}]" + (rf"\d{{{rest}}}" if rest
                                                                      else ""))
    branches.append(digits)
    return "(?:" + "|".join(branches) + ")"


class IdConverter(BaseConverter):
    """``<id:name>`` in a route: a row id, 1 to 2^63-1 (leading zeros allowed, as Werkzeug's
    ``int`` allows them). Anything else does not match the route at all, so it falls through
    to the JSON 404 of unknown API paths, never to a query the database driver cannot bind
    (SQLite raises ``OverflowError`` beyond 64 bits)."""

    regex = "0*" + _at_most(MAX_ID)
    weight = 50

    def to_python(self, value: str) -> int:
        return int(value.lstrip("0"))

    def to_url(self, value) -> str:
        return str(int(value))


def decode_json(raw: bytes):
    """Decode a request body: 400 for bad JSON, JSON nested too deeply, lone surrogates and
    NUL characters (naming the field, e.g. ``tags[0]``)."""
    try:
        return safejson.loads(raw)
    except safejson.UnsafeJson as exc:
        extra = {"field": exc.field} if exc.field else {}
        raise ApiError(400, exc.message, reason=exc.reason, **extra) from None
    except ValueError:
        raise ApiError(400, "the request body is not valid JSON") from None


def json_body() -> dict:
    """The request's JSON object: 415 for another content type, 400 for bad JSON."""
    if not request.is_json:
        if not request.get_data(cache=True):
            raise ApiError(400, "send a JSON object with Content-Type: application/json")
        raise ApiError(415, "the body must be JSON: send Content-Type: application/json")
    data = decode_json(request.get_data(cache=True))
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def lenient_json_body() -> dict:
    """The request's JSON object, or an empty one when there is no JSON body or it does not
    parse (the sign-in endpoints read form-like bodies this way); what parses but cannot be
    stored (NUL, lone surrogates, too deep) is still a 400."""
    if not request.is_json:
        return {}
    try:
        data = decode_json(request.get_data(cache=True))
    except ApiError as exc:
        if exc.extra.get("reason") is None:  # not JSON at all: as before, no body
            return {}
        raise
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def optional_json_body() -> dict:
    """Like :func:`json_body`, but an empty body is an empty object."""
    if not request.get_data(cache=True):
        return {}
    return json_body()


def _check_request_line() -> None:
    line = len(request.method) + len(request.full_path) + len(" HTTP/1.1") + 1
    if line > MAX_REQUEST_LINE:
        raise ApiError(414, "request line too long")


def _check_parameters() -> None:
    """400 for a query or path parameter holding a NUL (PostgreSQL cannot take one)."""
    for name, value in request.args.items(multi=True):
        for text, where in ((name, name), (value, name)):
            problem = safejson.text_problem(text, where)
            if problem is not None:
                raise ApiError(400, problem.message, field=where, reason=problem.reason)
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str):
            problem = safejson.text_problem(value, name)
            if problem is not None:
                raise ApiError(400, problem.message, field=name, reason=problem.reason)


def init_app(app: Flask, state=None) -> None:
    """The edge checks; first of the domains, so the ``id`` converter exists before any
    blueprint's routes are registered and the checks run before every other hook."""
    app.url_map.converters["id"] = IdConverter
    app.before_request(_check_request_line)
    app.before_request(_check_parameters)


def _link_header(page: items.Page | items.TrashPage) -> str:
    args = request.args.to_dict(flat=False)

    def url(offset: int) -> str:
        query = {**args, "limit": [str(page.limit)], "offset": [str(max(0, offset))]}
        return external_url(f"{request.path}?{urlencode(query, doseq=True)}")

    links = [f'<{url(0)}>; rel="first"']
    if page.offset > 0:
        links.append(f'<{url(page.offset - page.limit)}>; rel="prev"')
    if page.offset + page.limit < page.total:
        links.append(f'<{url(page.offset + page.limit)}>; rel="next"')
    last = max(0, (page.total - 1) // page.limit * page.limit)
    links.append(f'<{url(last)}>; rel="last"')
    return ", ".join(links)


def _cursor_link_header(page: items.Page | items.TrashPage, next_cursor: str | None) -> str:
    """``Link`` of a page reached by a keyset cursor: the first page, and the next one by its
    cursor (a cursor page has no offset, hence no ``prev`` or ``last``)."""
    args = {k: v for k, v in request.args.to_dict(flat=False).items()
            if k not in ("cursor", "offset")}

    def url(extra: dict) -> str:
        query = {**args, "limit": [str(page.limit)], **extra}
        return external_url(f"{request.path}?{urlencode(query, doseq=True)}")

    links = [f'<{url({"offset": ["0"]})}>; rel="first"']
    if next_cursor is not None:
        links.append(f'<{url({"cursor": [next_cursor]})}>; rel="next"')
    return ", ".join(links)


def paged_response(page: items.Page | items.TrashPage, rendered: list[dict], *,
                   next_cursor: str | None = None, by_cursor: bool = False):
    """A bare JSON array with ``X-Total-Count`` and ``Link`` headers; with ``next_cursor``
    also ``X-Next-Cursor`` (the keyset cursor of the next page), and ``by_cursor`` when the
    page was reached by one (its ``Link`` then has ``first`` and ``next`` only)."""
    response = jsonify(rendered)
    response.headers["X-Total-Count"] = str(page.total)
    response.headers["Link"] = (_cursor_link_header(page, next_cursor) if by_cursor
                                else _link_header(page))
    if next_cursor is not None:
        response.headers["X-Next-Cursor"] = next_cursor
    return response

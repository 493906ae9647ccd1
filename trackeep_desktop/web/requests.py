"""Request helpers every domain's API uses: JSON bodies, paged list answers, and scope guards
over several scopes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from flask import jsonify, request

from trackeep_desktop import items
from trackeep_desktop.web.auth import current_credentials, require_scope
from trackeep_desktop.web.errors import ApiError

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


def json_body() -> dict:
    """The request's JSON object: 415 for another content type, 400 for bad JSON."""
    if not request.is_json:
        if not request.get_data(cache=True):
            raise ApiError(400, "send a JSON object with Content-Type: application/json")
        raise ApiError(415, "the body must be JSON: send Content-Type: application/json")
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "the request body is not valid JSON")
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def optional_json_body() -> dict:
    """Like :func:`json_body`, but an empty body is an empty object."""
    if not request.get_data(cache=True):
        return {}
    return json_body()


def _link_header(page: items.Page) -> str:
    args = request.args.to_dict(flat=False)

    def url(offset: int) -> str:
        query = {**args, "limit": [str(page.limit)], "offset": [str(max(0, offset))]}
        return f"{request.base_url}?{urlencode(query, doseq=True)}"

    links = [f'<{url(0)}>; rel="first"']
    if page.offset > 0:
        links.append(f'<{url(page.offset - page.limit)}>; rel="prev"')
    if page.offset + page.limit < page.total:
        links.append(f'<{url(page.offset + page.limit)}>; rel="next"')
    last = max(0, (page.total - 1) // page.limit * page.limit)
    links.append(f'<{url(last)}>; rel="last"')
    return ", ".join(links)


def paged_response(page: items.Page, rendered: list[dict]):
    """A bare JSON array with ``X-Total-Count`` and ``Link`` headers."""
    response = jsonify(rendered)
    response.headers["X-Total-Count"] = str(page.total)
    response.headers["Link"] = _link_header(page)
    return response

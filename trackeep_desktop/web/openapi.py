"""The OpenAPI 3 description of ``/api/v1``, generated from the routes themselves.

Nothing here is a second copy of the API: :func:`build_spec` walks the application's URL map
and reads, for each view, its docstring (summary and description), its guard (``auth_scope``
and friends, set by :mod:`trackeep_desktop.auth`) and the small declaration that the
:func:`api_doc` decorator keeps next to the view (body and response schemas, query
parameters, extra responses). Schemas are registered once with :func:`schema`; the items
domain derives its input schemas from the same field tables it validates with.

``/api/v1/openapi.json`` serves the document; ``/api/docs`` renders the same data as a page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template
from markupsafe import Markup, escape

from trackeep_desktop.web.auth import public

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.0.3"
API_PREFIX = "/api/v1"

#: Endpoints left out of the document: the catch-all that answers unknown API paths.
HIDDEN_ENDPOINTS = {"api.not_found"}

_SCHEMAS: dict[str, dict] = {}

_RULE_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_CONVERTER_TYPES = {"int": {"type": "integer"},
                    "id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                    "float": {"type": "number"},
                    "uuid": {"type": "string", "format": "uuid"}}

#: The one error body of every API (see :mod:`trackeep_desktop.errors`): ``error`` always,
#: ``field`` and ``reason`` when the domain gives them, and the extra keys of some refusals.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "a message fit to show the user"},
        "field": {"type": "string", "description": "the input field at fault, if any"},
        "reason": {"type": "string", "description": "a short code, if any: required, "
                   "invalid, too_long, out_of_range, not_allowed, duplicate, too_deep, "
                   "invalid_query..."},
        "limit_bytes": {"type": "integer",
                        "description": "413 on an upload: the upload limit in bytes"},
        "duplicate": {"type": "object", "description": "409 on a bookmark: the bookmark "
                      "already saved with this URL"},
        "request_id": {"type": "string", "description": "500: the request's id, for the logs"},
    },
    "additionalProperties": True,
}


def schema(name: str, definition: dict) -> dict:
    """Register a named schema (``components/schemas/NAME``) and return a ``$ref`` to it."""
    _SCHEMAS[name] = definition
    return {"$ref": f"#/components/schemas/{name}"}


def ref(name: str) -> dict:
    """A ``$ref`` to a registered schema."""
    return {"$ref": f"#/components/schemas/{name}"}


schema("Error", ERROR_SCHEMA)


def query_param(name: str, description: str, schema_: dict | None = None) -> dict:
    """An OpenAPI query parameter."""
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema_ or {"type": "string"}}


def api_doc(summary: str | None = None, *, body: dict | None = None,
            response: dict | None = None, status: int = 200, array: bool = False,
            paged: bool = False, cursor: bool = False, params: Iterable[dict] = (),
            responses: dict[int, str | dict] | None = None, body_required: bool = True):
    """Declare what OpenAPI cannot read from the code: the JSON ``body`` schema, the
    ``response`` schema (a list of it when ``array``; ``paged`` adds the paging headers,
    ``cursor`` the keyset cursor's ``X-Next-Cursor``), the success ``status``, query
    ``params`` and extra ``responses`` ``{status: meaning}`` (a refusal's meaning, answered
    with the error body, or a whole OpenAPI response object).
    The summary defaults to the docstring's first line."""

    def decorate(view):
        view.api_doc = {"summary": summary, "body": body, "response": response,
                        "status": status, "array": array, "paged": paged, "cursor": cursor,
                        "params": list(params), "responses": dict(responses or {}),
                        "body_required": body_required}
        return view

    return decorate


def _docstring(view) -> tuple[str, str]:
    doc = (view.__doc__ or "").strip()
    if not doc:
        return "", ""
    first, _, rest = doc.partition("\n\n")
    return " ".join(first.split()), "\n".join(line.strip() for line in rest.splitlines())


def _path_and_params(rule: str) -> tuple[str, list[dict]]:
    params = []

    def replace(match: re.Match) -> str:
        name = match.group("name")
        params.append({"name": name, "in": "path", "required": True,
                       "schema": dict(_CONVERTER_TYPES.get(match.group("converter") or "",
                                                           {"type": "string"}))})
        return "{" + name + "}"

    return _RULE_ARGUMENT.sub(replace, rule), params


def _scope_of(view) -> tuple[bool, str | None]:
    """``(guarded, scope text)`` of a view, from the markers the guards leave on it."""
    if getattr(view, "auth_public", False) or not getattr(view, "auth_required", False):
        return False, None
    scopes = getattr(view, "auth_scopes", None)
    if scopes:
        mode = "all of" if getattr(view, "auth_scopes_every", False) else "any of"
        return True, f"{mode} {', '.join(scopes)}"
    scope = getattr(view, "auth_scope", None)
    return True, scope


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": ref("Error")}}}


def _partial(body: dict) -> dict:
    """``body`` with no required fields: PATCH changes only the fields sent (and PUT, where a
    view serves it beside PATCH, does the same). A registered schema gets a sibling
    ``<Name>Patch``."""
    if "$ref" in body:
        name = body["$ref"].rsplit("/", 1)[-1]
        target = _SCHEMAS.get(name)
        if target is None or "required" not in target:
            return body
        return schema(f"{name}Patch", _partial(target))
    if "required" not in body:
        return body
    return {key: value for key, value in body.items() if key != "required"}


def _operation(endpoint: str, method: str, view, path_params: list[dict],
               multi_method: bool, partial: bool = False) -> dict:
    doc = getattr(view, "api_doc", None) or {}
    summary, description = _docstring(view)
    guarded, scope = _scope_of(view)
    operation: dict[str, Any] = {
        "operationId": f"{endpoint}.{method.lower()}" if multi_method else endpoint,
        "summary": doc.get("summary") or summary or endpoint,
    }
    if description:
        operation["description"] = description
    parameters = list(path_params) + list(doc.get("params", []))
    if parameters:
        operation["parameters"] = parameters
    if doc.get("body") is not None and method in ("POST", "PUT", "PATCH"):
        body_schema = _partial(doc["body"]) if partial else doc["body"]
        operation["requestBody"] = {
            "required": doc.get("body_required", True) and not partial,
            "content": {"application/json": {"schema": body_schema}},
        }
    status = str(doc.get("status", 200))
    success: dict[str, Any] = {"description": "success"}
    if doc.get("response") is not None:
        body = doc["response"]
        if doc.get("array"):
            body = {"type": "array", "items": body}
        success["content"] = {"application/json": {"schema": body}}
    if doc.get("paged"):
        success["headers"] = {
            "X-Total-Count": {"description": "how many items match in all",
                              "schema": {"type": "integer"}},
            "Link": {"description": "RFC 8288 links: first, prev, next, last",
                     "schema": {"type": "string"}},
        }
    if doc.get("cursor"):
        success.setdefault("headers", {})["X-Next-Cursor"] = {
            "description": "the keyset cursor of the next page (absent on the last): pass "
                           "it as ?cursor= to read that page at the same cost however deep; "
                           "a page read by cursor has Link first and next only",
            "schema": {"type": "string"}}
    responses: dict[str, Any] = {status: success}
    for code, meaning in doc.get("responses", {}).items():
        # a string is a refusal's meaning (the error body); a dict a whole response object
        responses[str(code)] = meaning if isinstance(meaning, dict) else _error(meaning)
    if "requestBody" in operation:
        responses.setdefault("400", _error("invalid input: the field and the reason"))
    elif doc.get("params"):
        responses.setdefault("400", _error("an invalid query parameter: the field and the "
                                           "reason"))
    if guarded:
        responses.setdefault("401", _error("no valid credentials"))
        responses.setdefault("403", _error(f"the API key lacks the scope ({scope})"
                                           if scope else "not allowed"))
        operation["security"] = [{"bearerAuth": []}, {"cookieAuth": []}]
        if scope:
            operation["x-required-scope"] = scope
    else:
        operation["security"] = []
    if path_params:
        responses.setdefault("404", _error("no such object (or not yours)"))
    operation["responses"] = responses
    return operation


def _tag_of(path: str) -> str:
    parts = [p for p in path[len(API_PREFIX):].split("/") if p and not p.startswith("{")]
    return parts[0] if parts else "api"


def api_rules(app: Flask) -> list:
    """The URL rules the document describes: everything under ``/api/v1`` except
    :data:`HIDDEN_ENDPOINTS`."""
    return [rule for rule in app.url_map.iter_rules()
            if (rule.rule == API_PREFIX or rule.rule.startswith(API_PREFIX + "/"))
            and rule.endpoint not in HIDDEN_ENDPOINTS]


def build_spec(app: Flask) -> dict:
    """The OpenAPI 3 document of the application's ``/api/v1`` routes."""
    paths: dict[str, dict] = {}
    used: set[str] = set()
    for rule in sorted(api_rules(app), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        path, path_params = _path_and_params(rule.rule)
        path = path[len(API_PREFIX):] or "/"
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        entry = paths.setdefault(path, {})
        for method in methods:
            # PATCH is partial; a PUT served by the same view is the same partial change
            partial = method == "PATCH" or (method == "PUT" and "PATCH" in methods)
            operation = _operation(rule.endpoint, method, view, path_params, len(methods) > 1,
                                   partial)
            candidate, n = operation["operationId"], 1
            while candidate in used:  # one view under several rules
                n += 1
                candidate = f"{operation['operationId']}.{n}"
            used.add(candidate)
            operation["operationId"] = candidate
            operation["tags"] = [_tag_of(API_PREFIX + path)]
            entry[method.lower()] = operation
    state = app.extensions.get("trackeep")
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Trackeep API",
            "version": state.version if state is not None else "0",
            "description": "The original Trackeep API under /api/v1. Authenticate with "
                           "`Authorization: Bearer <token>` (a session token or an API key "
                           "starting with tk_), or the browser's session cookie (then send "
                           "the X-CSRF-Token header on writes). Errors are "
                           "`{\"error\": message}`. Lists are JSON arrays, paged with "
                           "`limit` (default 50, at most 200) and `offset`; the total is in "
                           "`X-Total-Count` and the neighbours in `Link`. The trash also "
                           "pages by keyset: each page with more after it names the next in "
                           "`X-Next-Cursor`, which `?cursor=` reads at the same cost however "
                           "deep (offset paging costs its depth).",
        },
        "servers": [{"url": API_PREFIX}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(_SCHEMAS.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "a session token, or an API key (tk_...)"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "trackeep_session"},
            },
        },
    }


def _resolve(spec: dict, node: dict | None) -> dict | None:
    if node and "$ref" in node:
        return spec["components"]["schemas"].get(node["$ref"].rsplit("/", 1)[-1])
    return node


def _fields(spec: dict, node: dict | None) -> list[dict]:
    """The top-level fields of a body schema, for the docs page."""
    node = _resolve(spec, node)
    if not node:
        return []
    if node.get("type") == "array":
        return _fields(spec, node.get("items"))
    required = set(node.get("required", []))
    out = []
    for name, prop in (node.get("properties") or {}).items():
        prop = _resolve(spec, prop) or {}
        kind = prop.get("type") or ("one of several" if "oneOf" in prop else "object")
        if "enum" in prop:
            kind += ": " + " | ".join(map(str, prop["enum"]))
        out.append({"name": name, "type": kind, "required": name in required,
                    "description": prop.get("description", "")})
    return out


def docs_sections(spec: dict) -> list[dict]:
    """The document regrouped for the docs page: ``[{tag, operations: [...]}]``."""
    sections: dict[str, list[dict]] = {}
    for path, entry in spec["paths"].items():
        for method, operation in entry.items():
            body = (operation.get("requestBody", {}).get("content", {})
                    .get("application/json", {}).get("schema"))
            sections.setdefault(operation["tags"][0], []).append({
                "method": method.upper(),
                "path": API_PREFIX + path,
                "summary": operation.get("summary", ""),
                "description": operation.get("description", ""),
                "scope": operation.get("x-required-scope"),
                "public": operation.get("security") == [],
                "parameters": operation.get("parameters", []),
                "body": _fields(spec, body),
                "responses": sorted(operation["responses"].items()),
            })
    return [{"tag": tag, "operations": ops} for tag, ops in sorted(sections.items())]


@bp.get(API_PREFIX + "/openapi.json")
@public
def openapi_json():
    """The OpenAPI 3 description of this API."""
    return jsonify(build_spec(current_app))


@bp.get("/api/docs")
@public
def docs_page():
    """A readable page of every API endpoint (the same data as openapi.json)."""
    spec = build_spec(current_app)
    return render_template("web/docs.html", spec=spec, sections=docs_sections(spec))


def inline_code(text: str) -> Markup:
    """Text with its `backticked` spans as ``<code>``, everything escaped: the docs page shows
    the description's Markdown code spans as code, not as backticks."""
    parts = str(text).split("`")
    return Markup("").join(Markup("<code>{}</code>").format(part) if i % 2 else escape(part)
                           for i, part in enumerate(parts))


def init_app(app: Flask, state) -> None:
    """``/api/v1/openapi.json`` and the API docs page."""
    app.register_blueprint(bp)
    app.add_template_filter(inline_code)

"""The OpenAPI description is generated from the routes: complete, well-formed, and the
same data as the readable API page."""

from __future__ import annotations

import re

from trackeep_desktop import items
from trackeep_desktop.web.openapi import HIDDEN_ENDPOINTS, build_spec

METHODS = {"get", "post", "put", "patch", "delete"}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)[len("/api/v1"):] or "/"


def test_every_api_v1_route_is_described(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.endpoint in HIDDEN_ENDPOINTS:
            continue
        path = _openapi_path(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in spec["paths"].get(path, {}):
                missing.append((method, rule.rule))
    assert missing == []
    for path in ("/bookmarks", "/bookmarks/{bookmark_id}", "/tasks/{task_id}/complete",
                 "/notes", "/tags/{tag_id}/merge", "/trash/{item_type}/{item_id}/restore",
                 "/trash", "/dashboard/stats", "/auth/login", "/openapi.json"):
        assert path in spec["paths"], path


def test_the_document_is_well_formed(app):
    spec = build_spec(app)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"]
    assert spec["info"]["version"] == app.extensions["trackeep"].version
    assert spec["servers"] == [{"url": "/api/v1"}]
    schemas = spec["components"]["schemas"]
    operation_ids = []

    def check_refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                assert node["$ref"].startswith("#/components/schemas/")
                assert node["$ref"].rsplit("/", 1)[1] in schemas, node["$ref"]
            for value in node.values():
                check_refs(value)
        elif isinstance(node, list):
            for value in node:
                check_refs(value)

    check_refs(spec)
    for path, entry in spec["paths"].items():
        assert path.startswith("/")
        placeholders = set(re.findall(r"{(\w+)}", path))
        for method, operation in entry.items():
            assert method in METHODS, (path, method)
            assert operation["summary"], (path, method)
            assert operation["responses"], (path, method)
            assert all(re.fullmatch(r"[1-5]\d\d", code) for code in operation["responses"])
            for response in operation["responses"].values():
                assert response["description"]
            operation_ids.append(operation["operationId"])
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == placeholders, (path, method)
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in ("path", "query")
                assert "schema" in parameter
                if parameter["in"] == "path":
                    assert parameter["required"] is True
            assert isinstance(operation["security"], list)
            if "requestBody" in operation:
                assert method in ("post", "put", "patch")
                assert "application/json" in operation["requestBody"]["content"]
    assert len(operation_ids) == len(set(operation_ids))


def test_operations_carry_what_the_code_declares(app):
    spec = build_spec(app)
    create = spec["paths"]["/bookmarks"]["post"]
    assert create["x-required-scope"] == "bookmarks:write"
    assert create["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    assert set(create["responses"]) >= {"201", "400", "401", "403", "409"}
    body = create["requestBody"]["content"]["application/json"]["schema"]
    body_schema = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    # The input schema comes from the same field table the domain validates with.
    assert set(body_schema["properties"]) == set(items.BOOKMARK_FIELDS) | {"tags"}
    assert body_schema["required"] == ["url"]
    listing = spec["paths"]["/bookmarks"]["get"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"]["type"] == (
        "array")
    assert {"X-Total-Count", "Link"} <= set(listing["responses"]["200"]["headers"])
    names = {p["name"] for p in listing["parameters"]}
    assert {"limit", "offset", "sort", "tag", "favorite", "read", "created_after"} <= names
    assert spec["paths"]["/tags"]["post"]["x-required-scope"].startswith("any of ")
    assert spec["paths"]["/trash"]["delete"]["x-required-scope"].startswith("all of ")
    assert spec["paths"]["/openapi.json"]["get"]["security"] == []
    assert spec["paths"]["/auth/check-users"]["get"]["summary"] == (
        "Whether the first-run set-up is still to be done.")


def test_the_api_page_lists_every_operation_without_a_cdn(app):
    page = app.test_client().get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    spec = build_spec(app)
    for path, entry in spec["paths"].items():
        for method in entry:
            assert f'<span class="method">{method.upper()}</span>' in html
            assert f"/api/v1{path}" in html, path
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "bookmarks:write" in html
    assert "Open to anyone." in html

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


def test_the_api_page_lists_its_sections_for_a_signed_in_user_too(app):
    """The sidebar's own list of sections must not replace the page's (it did)."""
    from auth_actions import OWNER, AuthActions

    actions = AuthActions(app)
    actions.register_owner()
    browser = actions.browser()
    assert AuthActions.web_login(browser, "owner", OWNER["password"]).status_code == 302
    html = browser.get("/api/docs").get_data(as_text=True)
    assert 'aria-label="Main"' in html  # signed in: the sidebar is there
    assert '<section id="bookmarks">' in html
    assert '<span class="method">POST</span>' in html
    # The description's code spans are code, escaped, not Markdown backticks.
    assert "<code>Authorization: Bearer &lt;token&gt;</code>" in html
    assert "`Authorization" not in html


def test_patch_and_put_bodies_require_no_field(app):
    """PATCH changes only the fields sent, and so does a PUT served by the same view."""
    spec = build_spec(app)
    schemas = spec["components"]["schemas"]

    def body_schema(operation):
        node = operation["requestBody"]["content"]["application/json"]["schema"]
        return schemas[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node

    for path in ("/bookmarks/{bookmark_id}", "/tasks/{task_id}", "/notes/{note_id}",
                 "/tags/{tag_id}"):
        for method in ("patch", "put"):
            operation = spec["paths"][path].get(method)
            if operation is None:
                continue
            assert operation["requestBody"]["required"] is False, (path, method)
            assert "required" not in body_schema(operation), (path, method)
    # creating still requires them
    assert body_schema(spec["paths"]["/bookmarks"]["post"])["required"] == ["url"]
    assert body_schema(spec["paths"]["/tasks"]["post"])["required"] == ["title"]


def test_every_operation_with_a_body_or_query_parameters_documents_400(app):
    spec = build_spec(app)
    missing = [(method, path) for path, entry in spec["paths"].items()
               for method, operation in entry.items()
               if ("requestBody" in operation
                   or any(p["in"] == "query" for p in operation.get("parameters", [])))
               and "400" not in operation["responses"]]
    assert missing == []
    error = spec["paths"]["/bookmarks"]["get"]["responses"]["400"]
    assert error["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}


def test_a_method_a_known_path_does_not_serve_is_405_with_allow(client):
    answer = client.put("/api/v1/bookmarks")
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert answer.get_json()["error"] == "method PUT not allowed on /api/v1/bookmarks"
    answer = client.post("/api/v1/bookmarks/7")
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) == {
        "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "PUT"}
    assert client.delete("/api/v1/openapi.json").status_code == 405


def test_an_unknown_api_path_is_still_a_json_404_for_every_method(client):
    for method in ("get", "post", "put", "patch", "delete"):
        answer = getattr(client, method)("/api/v1/no-such-thing/3")
        assert answer.status_code == 404, method
        assert answer.get_json() == {"error": "not found: /api/v1/no-such-thing/3"}
        assert "Allow" not in answer.headers

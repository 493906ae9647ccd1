"""Security headers: a strict policy on pages, nothing runnable elsewhere, nothing framed."""

from __future__ import annotations

import io

from auth_actions import GENEROUS_LIMITS, AuthActions


def test_pages_get_the_strict_policy_and_cannot_be_framed(app, client):
    page = client.get("/setup")  # the first run: no account yet
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in page.headers["Permissions-Policy"]
    assert b"<script>" not in page.data
    assert b" style=" not in page.data


def test_json_and_static_files_can_run_nothing(client):
    for path in ("/api/v1/auth/check-users", "/static/js/app.js", "/api/v1/nowhere"):
        response = client.get(path)
        assert response.headers["Content-Security-Policy"] == (
            "default-src 'none'; frame-ancestors 'none'"), path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path


def test_a_view_that_sets_its_own_policy_keeps_it(app):
    app.config.update(GENEROUS_LIMITS)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    uploaded = actions.client.post(
        "/api/v1/files/upload", headers={"Authorization": f"Bearer {token}"},
        data={"file": (io.BytesIO(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), "a.svg")})
    assert uploaded.status_code == 201, uploaded.get_json()
    preview = actions.client.get(f"/api/v1/files/{uploaded.get_json()['id']}/preview",
                                 headers={"Authorization": f"Bearer {token}"})
    assert preview.headers["Content-Security-Policy"].startswith("default-src 'none'; img-src")
    assert preview.headers["X-Content-Type-Options"] == "nosniff"

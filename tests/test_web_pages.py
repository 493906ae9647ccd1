"""The app's pages through the Flask test client: who may see them, what they carry (the
shell, the CSRF token, the page's script, vendored assets only), error pages, and the
Markdown preview of the note editor."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions

PAGES = {
    "/": "dashboard",
    "/bookmarks": "bookmarks",
    "/tasks": "tasks",
    "/notes": "notes",
    "/files": "files",
    "/tags": "tags",
    "/trash": "trash",
    "/settings/data": "data",
}


@pytest.fixture
def actions(make_app):
    return AuthActions(make_app(**GENEROUS_LIMITS))


@pytest.fixture
def browser(actions):
    """The owner, signed in to the UI with a cookie."""
    actions.register_owner()
    client = actions.browser()
    assert AuthActions.web_login(client, "owner", OWNER["password"]).status_code == 302
    return client


def csrf_meta(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, "no CSRF token in the page's head"
    return match.group(1)


@pytest.mark.parametrize(("path", "script"), PAGES.items())
def test_each_page_answers_a_signed_in_user(browser, path, script):
    page = browser.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"/static/js/pages/{script}.js" in html
    assert 'aria-current="page"' in html  # the sidebar marks where the user is
    assert 'id="global-search"' in html
    assert 'id="toasts"' in html
    assert csrf_meta(html)


@pytest.mark.parametrize("path", [p for p in PAGES if p != "/"])
def test_anonymous_visitors_are_sent_to_the_login_page(actions, path):
    actions.register_owner()
    response = actions.browser().get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?" + urlencode({"next": path})


def test_a_bearer_token_does_not_open_the_pages(actions):
    token, _ = actions.register_owner()
    response = actions.client.get("/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_sidebar_links_every_section(browser):
    html = browser.get("/").get_data(as_text=True)
    for path in ["/bookmarks", "/tasks", "/notes", "/messages", "/challenges", "/files",
                 "/tags", "/trash", "/settings/profile"]:
        assert f'href="{path}"' in html


def test_settings_use_the_same_shell(browser):
    html = browser.get("/settings/profile").get_data(as_text=True)
    assert 'id="global-search"' in html
    assert "/static/js/app.js" in html
    assert re.search(r'<a href="/settings/profile" aria-current="page">', html)


def test_the_theme_setting_reaches_the_page(actions, browser):
    token = actions.token("owner", OWNER["password"])
    assert actions.api("PATCH", "/auth/profile", token, json={"theme": "dark"}).status_code == 200
    assert '<html lang="en" data-theme="dark">' in browser.get("/").get_data(as_text=True)


def test_unknown_page_is_an_html_error_page(browser):
    response = browser.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "not found: /no-such-page" in html
    assert "Back to Trackeep" in html


def test_pages_use_no_third_party_host(browser):
    """Everything works offline: scripts, styles and images come from this server."""
    for path in PAGES:
        html = browser.get(path).get_data(as_text=True)
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not re.match(r"(https?:)?//", url), (path, url)


def test_vendored_socketio_client_ships_with_its_licence(browser):
    script = browser.get("/static/vendor/socket.io/socket.io.min.js")
    assert script.status_code == 200
    assert b"Socket.IO v4" in script.data
    licence = browser.get("/static/vendor/socket.io/LICENSE")
    assert licence.status_code == 200
    assert b"MIT License" in licence.data
    script.close()
    licence.close()


def test_page_scripts_are_served_as_javascript(browser):
    for name in ["app", "api", *[f"pages/{s}" for s in PAGES.values()]]:
        response = browser.get(f"/static/js/{name}.js")
        assert response.status_code == 200, name
        assert response.mimetype == "text/javascript", name
        response.close()


# ------------------------------------------------------------------------ Markdown preview
# The note editor previews through POST /api/v1/notes/preview with the page's cookie: the
# same sanitizer as saved notes, and the same CSRF rule as every cookie-authenticated write.


def test_note_preview_from_the_page_renders_sanitized_html(browser):
    token = csrf_meta(browser.get("/notes").get_data(as_text=True))
    content = "# Title\n\n**bold** <img src=x onerror=alert(1)> [x](javascript:alert(1))"
    response = browser.post("/api/v1/notes/preview", json={"content": content},
                            headers={"X-CSRF-Token": token})
    assert response.status_code == 200, response.get_json()
    html = response.get_json()["html"]
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert "<img" not in html
    assert "onerror=alert(1)&gt;" in html  # shown as text, inert
    assert "href" not in html  # the javascript: link is not a link


def test_note_preview_from_the_page_needs_the_csrf_token(browser):
    missing = browser.post("/api/v1/notes/preview", json={"content": "x"})
    assert missing.status_code == 403
    assert "CSRF" in missing.get_json()["error"]
    wrong = browser.post("/api/v1/notes/preview", json={"content": "x"},
                         headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403


def test_internals_are_on_the_admin_page_not_the_dashboard(actions, browser):
    dashboard = browser.get("/").get_data(as_text=True)
    assert "System" not in dashboard
    assert "leaderboard" not in dashboard
    admin = browser.get("/admin/users").get_data(as_text=True)
    assert '<h2 id="system-title">System</h2>' in admin
    assert "leaderboard: memory (ok)" in admin
    token = actions.token("owner", OWNER["password"])
    actions.create_user(token, "ann")
    ann = actions.browser()
    assert AuthActions.web_login(ann, "ann", "user-pass-456").status_code == 302
    assert "leaderboard" not in ann.get("/").get_data(as_text=True)
    assert ann.get("/admin/users").status_code == 403

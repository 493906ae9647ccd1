"""User actions for app tests (flaskr's ``AuthActions``): set up the owner, create users,
log in through the API or the login form, make API keys. (Apps on a clock the test moves are
in ``clocks``.)

Import what you need: ``from auth_actions import AuthActions, OWNER``.
"""

from __future__ import annotations

import re

OWNER = {"email": "owner@example.com", "username": "owner", "password": "owner-pass-123",
         "fullName": "Olive Owner"}
PASSWORD = "user-pass-456"

#: Limits high enough that flow tests never meet them (rate-limit tests use the defaults).
GENEROUS_LIMITS = {"AUTH_RATE_LIMIT": 10_000, "API_RATE_LIMIT": 100_000}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class AuthActions:
    """Account actions against one app, each asserting it worked."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def api(self, method: str, path: str, token: str | None = None, json=None,
            headers: dict | None = None, remote_addr: str | None = None):
        """One API call (``path`` under /api/v1), authenticated by ``token`` if given."""
        all_headers = dict(headers or {})
        if token:
            all_headers.update(bearer(token))
        environ = {"REMOTE_ADDR": remote_addr} if remote_addr else {}
        return self.client.open(f"/api/v1{path}", method=method, json=json,
                                headers=all_headers, environ_base=environ)

    def register_owner(self, **overrides) -> tuple[str, dict]:
        """First run: create the owner through the API; returns ``(token, user)``."""
        response = self.api("POST", "/auth/register", json={**OWNER, **overrides})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return body["token"], body["user"]

    def create_user(self, admin_token: str, username: str, password: str = PASSWORD,
                    role: str = "user") -> dict:
        response = self.api("POST", "/admin/users", admin_token, json={
            "email": f"{username}@example.com", "username": username, "password": password,
            "fullName": username.title(), "role": role})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["user"]

    def login(self, login: str, password: str, remote_addr: str | None = None, **extra):
        return self.api("POST", "/auth/login", json={"email": login, "password": password,
                                                     **extra}, remote_addr=remote_addr)

    def token(self, login: str, password: str = PASSWORD, **extra) -> str:
        response = self.login(login, password, **extra)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["token"]

    def create_key(self, token: str, scopes, name: str = "key", **extra) -> tuple[str, dict]:
        """Make an API key; returns ``(key, its listing)``."""
        response = self.api("POST", "/api-keys", token,
                            json={"name": name, "scopes": list(scopes), **extra})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return body["key"], body["api_key"]

    def browser(self, **kwargs):
        """A new test client with its own cookie jar, as a separate browser."""
        return self.app.test_client(**kwargs)

    @staticmethod
    def web_login(client, login: str, password: str, remember: bool = False):
        """Sign in through the login form (reading its CSRF token first)."""
        page = client.get("/login")
        data = {"csrf_token": csrf_from(page.get_data(as_text=True)), "login": login,
                "password": password}
        if remember:
            data["remember"] = "on"
        return client.post("/login", data=data)

    @staticmethod
    def form_post(client, page: str, action: str, data: dict | None = None):
        """Post a form the way a browser does: with the CSRF token of ``page``."""
        html = client.get(page).get_data(as_text=True)
        return client.post(action, data={"csrf_token": csrf_from(html), **(data or {})})

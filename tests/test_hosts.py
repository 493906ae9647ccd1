"""The Host header: checked against the allowed names, never reflected into handed-out links
when PUBLIC_URL is set; and /metrics open on loopback only, else behind a token or an admin."""

from __future__ import annotations

import io

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions, bearer

from trackeep_desktop.config import load_config
from trackeep_desktop.storage.db import ConfigurationError
from trackeep_desktop.web.hosts import allowed_hosts, host_allowed, host_name


def status(client, path: str, host: str, **kwargs) -> int:
    return client.get(path, headers={"Host": host}, **kwargs).status_code


def test_a_loopback_server_answers_its_loopback_names_only(make_app):
    client = make_app().test_client()
    for host in ("localhost", "localhost:8080", "127.0.0.1:5000", "[::1]:8080", "127.0.0.2"):
        assert status(client, "/health", host) == 200, host
    # DNS rebinding: a page on evil.example whose name now points at 127.0.0.1.
    refused = client.get("/api/v1/auth/check-users", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert "TRACKEEP_ALLOWED_HOSTS" in refused.get_json()["error"]
    page = client.get("/login", headers={"Host": "evil.example:80"})
    assert page.status_code == 400
    assert page.mimetype == "text/html"


def test_configured_names_and_subdomains_are_answered(make_app):
    client = make_app(ALLOWED_HOSTS="trackeep.lan, .example.org").test_client()
    for host in ("trackeep.lan", "TRACKEEP.LAN:8080", "example.org", "home.example.org",
                 "localhost"):
        assert status(client, "/health", host) == 200, host
    for host in ("evil.example", "notexample.org", "trackeep.lan.evil.example"):
        assert status(client, "/health", host) == 400, host


def test_beyond_loopback_the_check_needs_configured_names(make_app):
    anything = make_app(HOST="0.0.0.0").test_client()
    assert status(anything, "/health", "whatever.example") == 200
    checked = make_app(HOST="0.0.0.0", PUBLIC_URL="https://trackeep.example.org/").test_client()
    assert status(checked, "/health", "trackeep.example.org") == 200
    assert status(checked, "/health", "127.0.0.1:8080") == 200  # a probe on the machine
    assert status(checked, "/health", "evil.example") == 400


def test_allowed_hosts_rules():
    base = {"HOST": "127.0.0.1", "ALLOWED_HOSTS": [], "PUBLIC_URL": None,
            "TRUSTED_PROXIES": []}
    assert allowed_hosts(base) == {"localhost", "127.0.0.1", "::1"}
    assert allowed_hosts({**base, "TRUSTED_PROXIES": ["127.0.0.1"]}) is None
    assert allowed_hosts({**base, "ALLOWED_HOSTS": ["*"]}) is None
    assert allowed_hosts({**base, "HOST": "0.0.0.0"}) is None
    assert "x.org" in allowed_hosts({**base, "HOST": "::", "PUBLIC_URL": "https://x.org"})
    assert host_name("[::1]:8080") == "::1"
    assert host_name("Example.ORG:443") == "example.org"
    assert host_name("::1") == "::1"
    assert not host_allowed("", frozenset({"example.org"}))


def test_public_url_is_the_base_of_share_and_paging_links(make_app):
    app = make_app(ALLOWED_HOSTS="*", PUBLIC_URL="https://trackeep.example.org",
                   **GENEROUS_LIMITS)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    forged = {"Host": "evil.example", **bearer(token)}
    uploaded = actions.client.post("/api/v1/files/upload", headers=forged,
                                   data={"file": (io.BytesIO(b"hello"), "a.txt")})
    assert uploaded.status_code == 201, uploaded.get_json()
    share = actions.client.post(f"/api/v1/files/{uploaded.get_json()['id']}/shares",
                                headers=forged, json={})
    assert share.status_code == 201, share.get_json()
    assert share.get_json()["url"].startswith("https://trackeep.example.org/s/")
    for n in range(3):
        actions.api("POST", "/bookmarks", token, json={"url": f"https://example.com/{n}"})
    listing = actions.client.get("/api/v1/bookmarks?limit=1", headers=forged)
    links = listing.headers["Link"]
    assert "evil.example" not in links
    assert "<https://trackeep.example.org/api/v1/bookmarks?limit=1&offset=1>; rel=\"next\"" \
        in links


def test_a_bad_public_url_is_refused_at_start(tmp_path):
    for bad in ("ftp://x.org", "trackeep.example.org", "https://x.org/?a=1"):
        with pytest.raises(ConfigurationError, match="PUBLIC_URL"):
            load_config({"DATA_DIR": str(tmp_path), "PUBLIC_URL": bad})


# ----------------------------------------------------------------------------------- /metrics


def test_metrics_are_open_to_this_machine_on_a_loopback_server(make_app):
    client = make_app().test_client()
    assert client.get("/metrics").status_code == 200
    through_proxy = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert through_proxy.status_code == 401
    assert "METRICS_TOKEN" in through_proxy.get_json()["error"]


def test_metrics_beyond_loopback_need_the_token_or_an_admin(make_app):
    app = make_app(HOST="0.0.0.0", METRICS_TOKEN="scrape-me-0123456789", **GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    remote = {"environ_base": {"REMOTE_ADDR": "192.168.1.20"}}
    client = app.test_client()
    assert client.get("/metrics", **remote).status_code == 401
    wrong = client.get("/metrics", headers=bearer("scrape-me-wrong"), **remote)
    assert wrong.status_code == 401
    scraped = client.get("/metrics", headers=bearer("scrape-me-0123456789"), **remote)
    assert scraped.status_code == 200
    assert b"trackeep_" in scraped.data
    assert client.get("/metrics", headers=bearer(owner), **remote).status_code == 200
    assert client.get("/metrics", headers=bearer(actions.token("ann")),
                      **remote).status_code == 403
    # Listening beyond loopback, even a loopback peer needs the token: it may be a proxy.
    assert client.get("/metrics").status_code == 401

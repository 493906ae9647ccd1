"""Bookmark metadata: fetched in the background, defensively, from a local server on
127.0.0.1 (the tests never reach any other address)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions

from trackeep_desktop.items import metadata
from trackeep_desktop.items.metadata import (
    FetchError,
    FetchRefused,
    fetch_metadata,
    parse_metadata,
)
from trackeep_desktop.storage.db import connection
from trackeep_desktop.storage.models import Bookmark

PAGE = b"""<!doctype html>
<html><head>
<meta charset="utf-8">
<title>  The &amp; Title
</title>
<meta property="og:description" content="What the page is about.">
<meta name="description" content="A plainer description.">
<link rel="stylesheet" href="/style.css">
<link rel="shortcut icon" href="/static/favicon.png">
</head><body><title>not this one</title><p>Hello</p></body></html>"""


class Handler(http.server.BaseHTTPRequestHandler):
    """Pages for every case; ``server.hits`` counts requests per path."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, status, body=b"", content_type="text/html; charset=utf-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def do_GET(self):  # the name http.server calls
        path = self.path.split("?")[0]
        with self.server.lock:
            self.server.hits[path] = self.server.hits.get(path, 0) + 1
        if path == "/page":
            self._send(200, PAGE)
        elif path == "/plain":
            self._send(200, b"<title>Plain</title><p>No icon here</p>")
        elif path == "/latin1":
            self._send(200, "<title>Caf\u00e9 cr\u00e8me</title>".encode("latin-1"),
                       "text/html; charset=iso-8859-1")
        elif path == "/redirect":
            self._send(302, headers=[("Location", "/page")])
        elif path == "/loop":
            self._send(301, headers=[("Location", "/loop")])
        elif path.startswith("/chain/"):
            n = int(path.rsplit("/", 1)[1])
            target = "/page" if n == 0 else f"/chain/{n - 1}"
            self._send(307, headers=[("Location", target)])
        elif path == "/to-elsewhere":
            self._send(302, headers=[("Location", self.server.elsewhere)])
        elif path == "/slow":
            time.sleep(self.server.slow_seconds)
            self._send(200, PAGE)
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"<!-- drip -->")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
            self.close_connection = True
        elif path == "/huge":
            padding = b"<!--" + b"x" * (1200 * 1024) + b"-->"
            self._send(200, b"<html><head>" + padding + b"<title>Too far</title></head>")
        elif path == "/big-head":
            padding = b"<!--" + b"x" * (600 * 1024) + b"-->"
            self._send(200, b"<html><head><title>Early</title>" + padding + b"</head>")
        elif path == "/file.pdf":
            self._send(200, b"%PDF-1.4", "application/pdf")
        else:
            self._send(404, b"<title>Not found</title>")


@pytest.fixture
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.hits = {}
    server.lock = threading.Lock()
    server.slow_seconds = 2.0
    server.elsewhere = "http://[::1]:9/"
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------------- parsing


def test_a_normal_page_gives_title_description_and_icon(site):
    found = fetch_metadata(f"{site.url}/page")
    assert found.title == "The & Title"
    assert found.description == "What the page is about."
    assert found.favicon_url == f"{site.url}/static/favicon.png"
    assert found.is_html


def test_og_title_wins_and_base_href_resolves_the_icon():
    html = ('<head><base href="https://cdn.example/assets/"><title>Plain</title>'
            '<meta property="og:title" content="Open Graph">'
            '<meta name="twitter:description" content="tweet">'
            '<link rel="apple-touch-icon" href="touch.png">'
            '<link rel="icon" href="javascript:alert(1)"><link rel="icon" href="i.ico"></head>')
    found = parse_metadata(html, "https://site.example/a/b")
    assert found.title == "Open Graph"
    assert found.description == "tweet"
    assert found.favicon_url == "https://cdn.example/assets/i.ico"


def test_without_an_icon_link_the_site_favicon_is_assumed(site):
    found = fetch_metadata(f"{site.url}/plain")
    assert found.title == "Plain"
    assert found.description == ""
    assert found.favicon_url == f"{site.url}/favicon.ico"


def test_the_declared_charset_is_used(site):
    assert fetch_metadata(f"{site.url}/latin1").title == "Café crème"


def test_junk_html_never_raises():
    found = parse_metadata("<title>ok</title><<<>>><meta content='x' property=og:descr"
                           "iption/></body><title>no", "http://x.example/")
    assert found.title == "ok"


# ------------------------------------------------------------------------------- limits


def test_redirects_are_followed_up_to_five(site):
    assert fetch_metadata(f"{site.url}/redirect").title == "The & Title"
    assert fetch_metadata(f"{site.url}/chain/4").final_url == f"{site.url}/page"
    with pytest.raises(FetchError, match="redirects"):
        fetch_metadata(f"{site.url}/chain/5")
    with pytest.raises(FetchError, match="redirects"):
        fetch_metadata(f"{site.url}/loop")
    assert site.hits["/loop"] == 6  # the first request and five redirects, no more


def test_a_slow_server_times_out(site):
    started = time.monotonic()
    with pytest.raises(FetchError):
        fetch_metadata(f"{site.url}/slow", timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_a_dripping_server_hits_the_overall_deadline(site):
    started = time.monotonic()
    with pytest.raises(FetchError, match="too long"):
        fetch_metadata(f"{site.url}/drip", timeout=1.0, total_timeout=0.5)
    assert time.monotonic() - started < 2.0


def test_only_the_first_megabyte_is_read(site):
    assert fetch_metadata(f"{site.url}/big-head").title == "Early"
    assert fetch_metadata(f"{site.url}/huge").title == ""  # beyond the cap: never read
    assert fetch_metadata(f"{site.url}/huge", max_bytes=2 * 1024 * 1024).title == "Too far"


def test_other_content_is_not_parsed(site):
    found = fetch_metadata(f"{site.url}/file.pdf")
    assert not found.is_html
    assert found.title == ""


def test_errors_and_other_schemes_are_refused(site):
    with pytest.raises(FetchError, match="404"):
        fetch_metadata(f"{site.url}/missing")
    for url in ("ftp://127.0.0.1/x", "file:///etc/passwd", "javascript:alert(1)"):
        with pytest.raises(FetchRefused):
            fetch_metadata(url)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(FetchError, match="cannot reach"):
        fetch_metadata(f"http://127.0.0.1:{port}/")


# ------------------------------------------------------------------- private addresses


@pytest.mark.parametrize(("address", "public"), [
    ("127.0.0.1", False), ("10.1.2.3", False), ("192.168.0.1", False), ("172.16.0.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("224.0.0.1", False), ("::1", False), ("fe80::1%eth0", False), ("fc00::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
    ("93.184.216.34", True), ("2606:4700:4700::1111", True), ("::ffff:8.8.8.8", True),
])
def test_public_addresses(address, public):
    assert metadata.is_public_address(address) is public


def test_private_addresses_are_refused_when_turned_off(site):
    with pytest.raises(FetchRefused, match="non-public"):
        fetch_metadata(f"{site.url}/page", allow_private=False)
    with pytest.raises(FetchRefused):
        fetch_metadata(f"http://localhost:{site.server_address[1]}/page", allow_private=False)
    assert "/page" not in site.hits  # refused before connecting


def test_every_address_and_every_redirect_is_checked(site, monkeypatch):
    # Pretend 127.0.0.1 is public so the test server counts as an outside site.
    monkeypatch.setattr(metadata, "is_public_address", lambda a: a == "127.0.0.1")
    assert fetch_metadata(f"{site.url}/page", allow_private=False).title
    with pytest.raises(FetchRefused, match="::1"):
        fetch_metadata(f"{site.url}/to-elsewhere", allow_private=False)  # redirect to [::1]

    real = socket.getaddrinfo

    def two_addresses(host, port, *args, **kwargs):
        if host == "mixed.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(metadata.socket, "getaddrinfo", two_addresses)
    with pytest.raises(FetchRefused, match=r"10\.0\.0\.7"):
        fetch_metadata(f"http://mixed.test:{site.server_address[1]}/page", allow_private=False)


# ----------------------------------------------------------------------- in the background


def _app(make_app, **overrides):
    app = make_app(**GENEROUS_LIMITS, **overrides)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    return app, actions, token


@pytest.mark.slow
def test_saving_never_waits_and_metadata_arrives_later(make_app, site):
    app, actions, token = _app(make_app)
    site.slow_seconds = 1.5
    received = []
    app.extensions["trackeep"].capabilities.pubsub.subscribe(
        "events:*", lambda channel, message: received.append((channel, message)))

    started = time.monotonic()
    slow = actions.api("POST", "/bookmarks", token, json={"url": f"{site.url}/slow"})
    assert time.monotonic() - started < 1.0  # the page takes 1.5 s; the save does not wait
    assert slow.status_code == 201
    assert slow.get_json()["fetch_status"] == "pending"
    mine = actions.api("POST", "/bookmarks", token, json={
        "url": f"{site.url}/page", "title": "My own title", "tags": ["kept"]}).get_json()

    assert app.extensions["trackeep_metadata"].wait_idle(10)
    fetched = actions.api("GET", f"/bookmarks/{slow.get_json()['id']}", token).get_json()
    assert fetched["fetch_status"] == "done"
    assert fetched["title"] == "The & Title"
    assert fetched["description"] == "What the page is about."
    assert fetched["favicon_url"] == f"{site.url}/static/favicon.png"
    kept = actions.api("GET", f"/bookmarks/{mine['id']}", token).get_json()
    assert kept["title"] == "My own title"  # what the user typed wins
    assert kept["description"] == "What the page is about."
    assert kept["tags"][0]["name"] == "kept"

    updates = [m for c, m in received if c == "events:1" and m["action"] == "updated"]
    assert {m["id"] for m in updates} == {fetched["id"], kept["id"]}
    assert any(m["item"]["title"] == "The & Title" for m in updates)


def test_failures_are_recorded_and_refetch_works(make_app, site):
    app, actions, token = _app(make_app)
    broken = actions.api("POST", "/bookmarks", token,
                         json={"url": f"{site.url}/missing"}).get_json()
    pdf = actions.api("POST", "/bookmarks", token, json={"url": f"{site.url}/file.pdf"}).get_json()
    assert app.extensions["trackeep_metadata"].wait_idle(10)
    assert actions.api("GET", f"/bookmarks/{broken['id']}", token).get_json()[
        "fetch_status"] == "failed"
    assert actions.api("GET", f"/bookmarks/{pdf['id']}", token).get_json()[
        "fetch_status"] == "skipped"
    again = actions.api("POST", f"/bookmarks/{broken['id']}/fetch-metadata", token)
    assert again.status_code == 202
    assert again.get_json()["fetch_status"] == "pending"
    assert app.extensions["trackeep_metadata"].wait_idle(10)
    assert site.hits["/missing"] == 2


def test_a_server_refusing_private_addresses_fetches_nothing(make_app, site):
    app, actions, token = _app(make_app, FETCH_PRIVATE_ADDRESSES=False)
    bookmark = actions.api("POST", "/bookmarks", token, json={"url": f"{site.url}/page"})
    assert bookmark.status_code == 201  # the bookmark is saved all the same
    assert app.extensions["trackeep_metadata"].wait_idle(10)
    stored = actions.api("GET", f"/bookmarks/{bookmark.get_json()['id']}", token).get_json()
    assert stored["fetch_status"] == "failed"
    assert stored["title"] == ""
    assert site.hits == {}


def test_fetching_can_be_turned_off(make_app, site):
    _, actions, token = _app(make_app, FETCH_METADATA=False)
    bookmark = actions.api("POST", "/bookmarks", token, json={"url": f"{site.url}/page"})
    assert bookmark.get_json()["fetch_status"] == "skipped"
    refetch = actions.api("POST", f"/bookmarks/{bookmark.get_json()['id']}/fetch-metadata",
                          token)
    assert refetch.status_code == 409
    assert site.hits == {}


def test_nothing_is_written_after_the_app_closes(make_app, site):
    app, actions, token = _app(make_app)
    site.slow_seconds = 0.5
    bookmark = actions.api("POST", "/bookmarks", token, json={"url": f"{site.url}/slow"})
    fetcher = app.extensions["trackeep_metadata"]
    deadline = time.monotonic() + 5
    while "/slow" not in site.hits and time.monotonic() < deadline:
        time.sleep(0.01)  # until the worker is inside the fetch
    app.extensions["trackeep"].close()
    assert fetcher.wait_idle(5)
    assert site.hits.get("/slow") == 1  # the fetch ran...
    assert not fetcher.schedule(1, bookmark.get_json()["id"], f"{site.url}/page")
    with connection(app.extensions["trackeep"].db):  # ... and was dropped, not stored
        assert Bookmark.get_by_id(bookmark.get_json()["id"]).fetch_status == "pending"

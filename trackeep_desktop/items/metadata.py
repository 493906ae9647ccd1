"""Bookmark metadata (title, description, icon), fetched in the background.

Saving a bookmark never waits on the network: the API marks it ``fetch_status: pending`` and
hands it to a :class:`MetadataFetcher`, a few worker threads (greenlets under gevent). A
worker fetches the page with :func:`fetch_metadata`, fills only the fields the user left
empty (:func:`trackeep_desktop.items.apply_metadata`) and publishes a change event, so open
pages update when the details arrive.

The fetch is defensive, since the URL comes from the user and the page from anyone:

* only ``http`` and ``https``, at most :data:`MAX_REDIRECTS` redirects, each one checked
  like the first URL;
* a connect and read timeout (:data:`TIMEOUT` seconds per step) and an overall deadline;
* at most :data:`MAX_BYTES` of the body are read, and only HTML is parsed (stdlib
  ``html.parser``: ``og:title``/``<title>``, ``og:description``/``description``, ``<link
  rel=icon>``, falling back to ``/favicon.ico``);
* with ``allow_private=False`` (setting ``FETCH_PRIVATE_ADDRESSES`` off) every address the
  host name resolves to must be public, and the connection goes to the address that was
  checked, so DNS cannot swap in a private one between the check and the connection.
"""

from __future__ import annotations

import codecs
import dataclasses
import http.client
import ipaddress
import logging
import queue
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from trackeep_desktop import items
from trackeep_desktop.clock import SystemClock
from trackeep_desktop.storage.changes import Pipeline, use_pipeline
from trackeep_desktop.storage.db import connection

log = logging.getLogger(__name__)

TIMEOUT = 5.0
TOTAL_TIMEOUT = 15.0
MAX_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
USER_AGENT = "Mozilla/5.0 (compatible; Trackeep bookmark preview)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
_REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(Exception):
    """The page could not be fetched (network error, timeout, bad answer)."""


class FetchRefused(FetchError):
    """The URL is not allowed: a scheme other than http/https, or a private address while
    private addresses are refused."""


@dataclasses.dataclass
class PageMetadata:
    """What a page says about itself; ``is_html`` is False for other content types."""

    title: str = ""
    description: str = ""
    favicon_url: str = ""
    final_url: str = ""
    is_html: bool = True


# ---------------------------------------------------------------------------- addresses


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local,
    shared, reserved or multicast); IPv4-mapped IPv6 addresses are judged as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, allow_private: bool) -> list[tuple[int, str]]:
    """Every ``(family, address)`` ``host`` resolves to; with ``allow_private`` False,
    :class:`FetchRefused` unless all of them are public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from exc
    addresses: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        entry = (family, str(sockaddr[0]))  # an IPv4 or IPv6 address: already text
        if entry not in addresses:
            addresses.append(entry)
    if not addresses:
        raise FetchError(f"{host} has no address")
    if not allow_private:
        for _, address in addresses:
            if not is_public_address(address):
                raise FetchRefused(f"{host} resolves to a non-public address ({address})")
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an address resolved (and checked) beforehand."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address; the certificate is verified for the host."""

    def __init__(self, host: str, port: int, address: str, timeout: float,
                 context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ssl_context = context

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)


# ------------------------------------------------------------------------------ parsing


def _clean(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


class _HeadParser(HTMLParser):
    """Collects the title, meta tags, icon links and ``<base>`` of a page's head."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title_parts: list[str] = []
        self.in_title = False
        self.title_done = False
        self.meta: dict[str, str] = {}
        self.icons: list[tuple[list[str], str]] = []
        self.base: str | None = None
        self.done = False

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "title" and not self.title_done:
            self.in_title = True
        elif tag == "meta":
            key = (values.get("property") or values.get("name") or "").strip().lower()
            content = values.get("content", "")
            if key and content.strip() and key not in self.meta:
                self.meta[key] = content
        elif tag == "link":
            rel = values.get("rel", "").lower().split()
            if ("icon" in rel or "apple-touch-icon" in rel) and values.get("href", "").strip():
                self.icons.append((rel, values["href"].strip()))
        elif tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"].strip()
        elif tag == "body":
            self.done = True  # what we want lives in <head>

    def handle_endtag(self, tag):
        if tag == "title" and self.in_title:
            self.in_title = False
            self.title_done = True
        elif tag == "head":
            self.done = True

    def handle_data(self, data):
        if self.in_title and not self.done:
            self.title_parts.append(data)


def _http_url(url: str) -> str:
    return url if urlsplit(url).scheme in ("http", "https") else ""


def parse_metadata(html: str, page_url: str) -> PageMetadata:
    """Title, description and icon of an HTML page fetched from ``page_url``."""
    parser = _HeadParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception as exc:  # html.parser copes with most junk; never fail a save on it
        log.debug("could not fully parse %s: %s", page_url, exc)
    meta = parser.meta
    title = (meta.get("og:title") or "".join(parser.title_parts)
             or meta.get("twitter:title") or "")
    description = (meta.get("og:description") or meta.get("description")
                   or meta.get("twitter:description") or "")
    base = urljoin(page_url, parser.base) if parser.base else page_url
    icon = ""
    for wanted in ("icon", "apple-touch-icon"):
        for rel, href in parser.icons:
            if wanted in rel:
                icon = _http_url(urljoin(base, href))
                if icon:
                    break
        if icon:
            break
    if not icon:
        icon = urljoin(page_url, "/favicon.ico")
    return PageMetadata(title=_clean(title, items.TITLE_MAX),
                        description=_clean(description, 1000),
                        favicon_url=icon if len(icon) <= items.URL_MAX else "",
                        final_url=page_url)


def _charset(content_type: str, head: bytes) -> str:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type, re.I)
    if not match:
        meta = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", head[:4096], re.I)
        if meta:
            match = re.match(r"(.*)", meta.group(1).decode("ascii", "replace"))
    if match:
        try:
            return codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return "utf-8"


# ------------------------------------------------------------------------------ fetching


def fetch_metadata(url: str, *, allow_private: bool = True, timeout: float = TIMEOUT,
                   total_timeout: float = TOTAL_TIMEOUT, max_bytes: int = MAX_BYTES,
                   max_redirects: int = MAX_REDIRECTS) -> PageMetadata:
    """Fetch ``url`` and read its metadata. Raises :class:`FetchRefused` for URLs that are
    not allowed and :class:`FetchError` for everything that goes wrong on the way."""
    deadline = time.monotonic() + total_timeout
    context = ssl.create_default_context()
    for _ in range(max_redirects + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchRefused(f"only http and https URLs are fetched, not {url[:100]!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise FetchError(f"bad port in {url[:100]!r}") from exc
        addresses = resolve(parts.hostname, port, allow_private)
        response, conn = _request(parts, port, addresses, timeout, context)
        try:
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"redirect without a Location from {url[:100]}")
                url = urljoin(url, location.strip())
                continue
            if response.status != 200:
                raise FetchError(f"{url[:100]} answered HTTP {response.status}")
            content_type = response.getheader("Content-Type", "") or ""
            if content_type and content_type.split(";")[0].strip().lower() not in HTML_TYPES:
                return PageMetadata(final_url=url, is_html=False)
            body = _read_capped(response, max_bytes, deadline)
        finally:
            conn.close()
        text = body.decode(_charset(content_type, body), errors="replace")
        return parse_metadata(text, url)
    raise FetchError(f"more than {max_redirects} redirects")


def _request(parts, port: int, addresses: list[tuple[int, str]], timeout: float,
             context: ssl.SSLContext):
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    last_error: Exception | None = None
    for _, address in addresses:
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = _PinnedHTTPSConnection(parts.hostname, port, address, timeout, context)
        else:
            conn = _PinnedHTTPConnection(parts.hostname, port, address, timeout)
        try:
            conn.request("GET", path, headers={
                "User-Agent": USER_AGENT,
                "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
                "Accept-Encoding": "identity",
            })
            return conn.getresponse(), conn
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            last_error = exc
    raise FetchError(f"cannot reach {parts.hostname}: {last_error}")


def _read_capped(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        while size < max_bytes:
            if time.monotonic() > deadline:
                raise FetchError("the page took too long to arrive")
            chunk = response.read1(min(64 * 1024, max_bytes - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"reading the page failed: {exc}") from exc
    return b"".join(chunks)


# --------------------------------------------------------------------------- the workers


class MetadataFetcher:
    """Fetches bookmark metadata on a few background workers, one bookmark at a time each.

    ``schedule`` returns at once; the workers start with the first job. After ``close``
    nothing more is written (a fetch still under way is abandoned).
    """

    def __init__(self, db, pipeline: Pipeline, *, allow_private: bool, clock=None,
                 workers: int = 2, queue_size: int = 1000,
                 fetch: Callable[..., PageMetadata] = fetch_metadata, **fetch_options):
        self.db = db
        self.pipeline = pipeline
        self.allow_private = allow_private
        self.clock = clock or SystemClock()
        self.fetch = fetch
        self.fetch_options = fetch_options
        self._workers = workers
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._closed = False

    def schedule(self, user_id: int, bookmark_id: int, url: str) -> bool:
        """Queue one bookmark; False when closed or the queue is full (it stays pending)."""
        with self._lock:
            if self._closed:
                return False
            if not self._threads:
                for n in range(self._workers):
                    thread = threading.Thread(target=self._run, daemon=True,
                                              name=f"trackeep-metadata-{n}")
                    thread.start()
                    self._threads.append(thread)
            try:
                self._queue.put_nowait((user_id, bookmark_id, url))
            except queue.Full:
                log.warning("metadata queue full; bookmark %s keeps fetch_status pending",
                            bookmark_id)
                return False
            self._pending += 1
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every scheduled job is done (for tests); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Stop the workers; queued jobs are dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        dropped = 0
        while True:
            try:
                self._queue.get_nowait()
                dropped += 1
            except queue.Empty:
                break
        with self._idle:
            self._pending = max(0, self._pending - dropped)
            self._idle.notify_all()
        for _ in threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                self._process(*job)
            except Exception:
                log.exception("metadata fetch for bookmark %s failed", job[1])
            finally:
                with self._idle:
                    self._pending = max(0, self._pending - 1)
                    self._idle.notify_all()

    def _process(self, user_id: int, bookmark_id: int, url: str) -> None:
        try:
            found = self.fetch(url, allow_private=self.allow_private, **self.fetch_options)
            status = "done" if found.is_html else "skipped"
        except FetchError as exc:
            log.info("no metadata for bookmark %s: %s", bookmark_id, exc)
            found, status = PageMetadata(), "failed"
        if self._closed:
            return
        with connection(self.db), use_pipeline(self.pipeline):  # the update is announced
            items.apply_metadata(
                user_id, bookmark_id, now=self.clock.now(), status=status, title=found.title,
                description=found.description, favicon_url=found.favicon_url)

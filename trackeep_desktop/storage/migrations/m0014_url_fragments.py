"""URL fragments kept (issue 14): every bookmark's ``url`` and ``url_hash`` recomputed under
the rule that keeps the fragment.

Until now a saved URL lost its fragment (``https://app.example.com/#/inbox/42`` was stored as
``https://app.example.com/``), so single-page-app links collapsed into one bookmark. From
now on the fragment is kept and only a bare trailing ``#`` is dropped; ``url_hash`` (the
SHA-256 of the stored URL, which finds duplicates) follows the stored URL.

What this migration can repair is what the database still holds: each bookmark's ``url``
is normalized again by the rule below (a frozen copy of ``items.normalize_url`` as of this
migration) and ``url_hash`` recomputed from it, for every row where either differs (rows
written by hand, by an older normalization, or with a stale hash, which would otherwise hide
or invent duplicates). A URL the rule refuses is left as it is. Fragments dropped by earlier
saves and imports were never stored anywhere, so they cannot be brought back: saving or
importing such a link again now makes a bookmark of its own.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit, urlunsplit

URL_MAX = 4096
BATCH = 1000


def normalize_url(url: str) -> str | None:
    """The URL as it is stored from this migration on, or None when it cannot be saved."""
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    if len(url) > URL_MAX or any(c.isspace() or ord(c) < 32 or 127 <= ord(c) <= 159
                                 for c in url):
        return None
    if "://" not in url and re.match(r"^[\w.-]+\.[a-zA-Z]{2,}(?::\d+)?(?:[/?#]|$)", url):
        url = "https://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host
    if parts.username is not None:
        credentials = parts.username + (f":{parts.password}" if parts.password is not None
                                        else "")
        netloc = f"{credentials}@{host}"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def upgrade(db, migrator):
    param = db.param
    last = 0
    while True:
        rows = db.execute_sql(
            f"SELECT id, url, url_hash FROM bookmark WHERE id > {param} ORDER BY id LIMIT "
            f"{BATCH}", (last,)).fetchall()
        if not rows:
            break
        for row_id, url, digest in rows:
            normalized = normalize_url(url)
            if normalized is None:
                continue
            wanted = url_hash(normalized)
            if normalized != url or wanted != digest:
                db.execute_sql(f"UPDATE bookmark SET url = {param}, url_hash = {param} "
                               f"WHERE id = {param}", (normalized, wanted, row_id))
        last = rows[-1][0]

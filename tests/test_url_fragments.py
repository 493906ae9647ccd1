"""Saved URLs keep their fragment (issue 14): single-page-app links are bookmarks of their own;
duplicate detection ignores only a bare trailing ``#``; imports keep fragments; migration
m0014 repairs the stored URLs and hashes it can."""

from __future__ import annotations

import hashlib
import io

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions, bearer

INBOX = "https://app.example.com/#/inbox/42"
SETTINGS = "https://app.example.com/#/settings"


@pytest.fixture
def owner(make_app):
    app = make_app(FETCH_METADATA=False, **GENEROUS_LIMITS)
    token, _ = AuthActions(app).register_owner()
    return app.test_client(), bearer(token)


def _save(owner, url, **extra):
    client, auth = owner
    return client.post("/api/v1/bookmarks", json={"url": url, "title": "t", **extra},
                       headers=auth)


def test_two_single_page_app_urls_save_as_two_bookmarks(owner):
    client, auth = owner
    first = _save(owner, INBOX)
    second = _save(owner, SETTINGS)
    assert first.status_code == 201
    assert second.status_code == 201
    assert first.get_json()["url"] == INBOX
    assert second.get_json()["url"] == SETTINGS
    listed = client.get("/api/v1/bookmarks", headers=auth).get_json()
    assert sorted(b["url"] for b in listed) == sorted([INBOX, SETTINGS])


def test_the_same_fragment_again_is_a_duplicate(owner):
    first = _save(owner, INBOX).get_json()
    again = _save(owner, "HTTPS://App.Example.com:443/#/inbox/42")
    assert again.status_code == 409
    assert again.get_json()["duplicate"]["id"] == first["id"]


def test_a_bare_trailing_hash_is_ignored_but_nothing_else(owner):
    plain = _save(owner, "https://example.org/page").get_json()
    bare = _save(owner, "https://example.org/page#")
    assert bare.status_code == 409
    assert bare.get_json()["duplicate"]["id"] == plain["id"]
    assert _save(owner, "https://example.org/page#section-2").status_code == 201
    assert _save(owner, "https://example.org/page#Section-2").status_code == 201  # case counts


def test_a_key_in_the_fragment_survives(owner):
    link = "https://share.example.net/file/abc#key=Zm9vYmFyLXNlY3JldA"
    saved = _save(owner, link).get_json()
    client, auth = owner
    assert client.get(f"/api/v1/bookmarks/{saved['id']}", headers=auth).get_json()["url"] == link


def test_the_url_lookup_tells_the_fragments_apart(owner):
    client, auth = owner
    inbox = _save(owner, INBOX).get_json()
    _save(owner, SETTINGS)
    found = client.get("/api/v1/bookmarks", query_string={"url": INBOX}, headers=auth)
    assert [b["id"] for b in found.get_json()] == [inbox["id"]]
    none = client.get("/api/v1/bookmarks", query_string={"url": "https://app.example.com/"},
                      headers=auth)
    assert none.get_json() == []


def test_changing_the_fragment_of_a_bookmark_keeps_the_new_one(owner):
    client, auth = owner
    saved = _save(owner, INBOX).get_json()
    changed = client.patch(f"/api/v1/bookmarks/{saved['id']}", json={"url": SETTINGS},
                           headers=auth)
    assert changed.get_json()["url"] == SETTINGS
    assert _save(owner, INBOX).status_code == 201  # the old address is free again


NETSCAPE = f"""<!DOCTYPE NETSCAPE-Bookmark-file-1>
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
<TITLE>Bookmarks</TITLE>
<H1>Bookmarks</H1>
<DL><p>
    <DT><A HREF="{INBOX}" ADD_DATE="1600000000">Inbox</A>
    <DT><A HREF="{SETTINGS}" ADD_DATE="1600000001">Settings</A>
    <DT><A HREF="https://app.example.com/#/settings" ADD_DATE="1600000002">Settings again</A>
    <DT><A HREF="https://example.org/doc#" ADD_DATE="1600000003">Doc</A>
    <DT><A HREF="https://example.org/doc" ADD_DATE="1600000004">Doc again</A>
    <DT><A HREF="https://example.org/doc#part-2" ADD_DATE="1600000005">Doc part 2</A>
</DL><p>
""".encode()


def test_the_netscape_import_keeps_fragments(owner):
    client, auth = owner
    response = client.post("/api/v1/bookmarks/import", headers=auth,
                           data={"file": (io.BytesIO(NETSCAPE), "bookmarks.html")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    report = response.get_json()
    assert report["imported"] == {"bookmarks": 4}
    assert report["duplicates"] == 2
    urls = sorted(b["url"] for b in client.get("/api/v1/bookmarks", headers=auth).get_json())
    assert urls == sorted([INBOX, SETTINGS, "https://example.org/doc",
                           "https://example.org/doc#part-2"])


def test_the_export_and_netscape_export_keep_fragments(owner):
    client, auth = owner
    _save(owner, INBOX)
    exported = client.get("/api/v1/bookmarks/export", headers=auth).get_data(as_text=True)
    assert f'HREF="{INBOX}"' in exported


# ------------------------------------------------------------------------------ migration


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_migration_m0014_repairs_urls_and_hashes(empty_database_url, monkeypatch):
    from trackeep_desktop.storage import db as dbmod
    from trackeep_desktop.storage import migrations

    db = dbmod.open_database(empty_database_url)
    try:
        everything = migrations.available()
        before = everything.index("m0014_url_fragments")
        monkeypatch.setattr(migrations, "available", lambda: everything[:before])
        migrations.upgrade(db)
        p = db.param
        db.execute_sql("INSERT INTO users (email, username, full_name, password_hash, role, "
                       "is_active, theme, timezone, created_at, updated_at) VALUES "
                       f"('old@example.com', 'old', '', 'x', 'user', {p}, 'system', 'UTC', "
                       "1.0, 1.0)", (True,))
        user_id = db.execute_sql("SELECT id FROM users").fetchone()[0]
        rows = [
            # stored well: untouched
            ("https://example.org/", _sha("https://example.org/")),
            # a stale hash (a row changed by hand): recomputed
            ("https://example.org/stale", _sha("something else")),
            # not normalized (written by hand or an older rule): normalized, hashed again
            ("HTTPS://Example.ORG:443/x#", "0" * 64),
            ("https://app.example.com/#/inbox/42", _sha("https://app.example.com/")),
            # cannot be saved by today's rules: left as it is
            ("ftp://example.org/file", "f" * 64),
        ]
        for url, digest in rows:
            db.execute_sql(
                "INSERT INTO bookmark (user_id, url, url_hash, title, description, "
                "favicon_url, is_favorite, is_read, is_public, fetch_status, created_at, "
                f"updated_at) VALUES ({p}, {p}, {p}, '', '', '', {p}, {p}, {p}, 'skipped', "
                "1.0, 1.0)", (user_id, url, digest, False, False, False))
        monkeypatch.undo()
        assert migrations.upgrade(db) == everything[before:]
        stored = db.execute_sql("SELECT url, url_hash FROM bookmark ORDER BY id").fetchall()
        assert stored == [
            ("https://example.org/", _sha("https://example.org/")),
            ("https://example.org/stale", _sha("https://example.org/stale")),
            ("https://example.org/x", _sha("https://example.org/x")),
            ("https://app.example.com/#/inbox/42", _sha("https://app.example.com/#/inbox/42")),
            ("ftp://example.org/file", "f" * 64),
        ]
        assert migrations.upgrade(db) == []
    finally:
        db.close()
        if hasattr(db, "close_all"):
            db.close_all()


def test_the_migration_rule_matches_the_live_one():
    """m0014's frozen copy normalizes as ``items.normalize_url`` does today."""
    from trackeep_desktop import items
    from trackeep_desktop.storage.migrations import m0014_url_fragments as m0014

    for url in (INBOX, "HTTP://EXAMPLE.com:80/A/b?X=1#frag", "example.com/page#x",
                "https://user:pw@Example.com/", "http://[2001:DB8::1]:80/#a", "https://a.b/c#"):
        assert m0014.normalize_url(url) == items.normalize_url(url)
    for url in ("ftp://x.example/", "javascript:alert(1)", "https://exa mple.com", ""):
        assert m0014.normalize_url(url) is None

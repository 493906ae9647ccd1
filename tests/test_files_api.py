"""Files: streamed upload, size limit, storage by content hash, download and preview headers,
share links, isolation between users, and the domain's name and type rules."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import tracemalloc
from pathlib import Path
from urllib.parse import unquote

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions, bearer, csrf_from
from werkzeug.test import EnvironBuilder, run_wsgi_app

from trackeep_desktop import files
from trackeep_desktop.realtime import events
from trackeep_desktop.storage.models import File, FileShare

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\xdac\xfc\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
       b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


# ---------------------------------------------------------------------------------- helpers


class Files:
    """File actions of one user against one app."""

    def __init__(self, actions: AuthActions, token: str):
        self.actions = actions
        self.token = token
        self.client = actions.client

    def upload(self, content: bytes | io.IOBase, name: str, **fields):
        stream = io.BytesIO(content) if isinstance(content, bytes) else content
        return self.client.post("/api/v1/files/upload", headers=bearer(self.token),
                                data={"file": (stream, name), **fields},
                                content_type="multipart/form-data")

    def uploaded(self, content: bytes, name: str, **fields) -> dict:
        response = self.upload(content, name, **fields)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def get(self, path: str, **kwargs):
        return self.client.get(f"/api/v1{path}", headers={**bearer(self.token),
                                                           **kwargs.pop("headers", {})},
                               **kwargs)

    def call(self, method: str, path: str, json=None):
        return self.actions.api(method, path, self.token, json=json)


def _app_with_users(app):
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    actions.create_user(owner, "bob")
    return actions, Files(actions, actions.token("ann")), Files(actions, actions.token("bob"))


@pytest.fixture
def users(any_app):
    """``(app, ann, bob)``: two users on an app (memory and Redis capabilities)."""
    _, ann, bob = _app_with_users(any_app)
    return any_app, ann, bob


def store_of(app) -> files.BlobStore:
    return files.BlobStore(Path(app.config["DATA_DIR"]) / "files")


def blobs_in(app) -> list[Path]:
    root = store_of(app).root
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp")


def temp_files(app) -> list[Path]:
    temp = store_of(app).temp_dir
    return sorted(temp.iterdir()) if temp.is_dir() else []


# ------------------------------------------------------------------------ upload / download


def test_upload_then_download_gives_the_same_bytes(users):
    app, ann, _ = users
    content = os.urandom(300_000)
    body = ann.uploaded(content, "holiday photos.bin", description="from the trip",
                        tags="travel, 2024")
    assert body["name"] == body["original_name"] == "holiday photos.bin"
    assert body["file_size"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["mime_type"] == "application/octet-stream"
    assert body["description"] == "from the trip"
    assert sorted(t["name"] for t in body["tags"]) == ["2024", "travel"]
    assert body["deleted_at"] is None

    download = ann.get(f"/files/{body['id']}/download")
    assert download.status_code == 200
    assert download.data == content
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    assert download.headers["ETag"].strip('"') == body["sha256"]

    sha = body["sha256"]
    assert blobs_in(app) == [store_of(app).root / sha[:2] / sha[2:4] / sha]
    assert temp_files(app) == []

    listing = ann.get("/files")
    assert listing.status_code == 200
    assert [f["id"] for f in listing.get_json()] == [body["id"]]
    assert listing.headers["X-Total-Count"] == "1"
    assert ann.get(f"/files/{body['id']}").get_json() == body


def test_download_supports_ranges_and_conditional_requests(users):
    _, ann, _ = users
    content = bytes(range(256)) * 40
    body = ann.uploaded(content, "data.bin")
    partial = ann.get(f"/files/{body['id']}/download", headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206
    assert partial.data == content[10:20]
    assert partial.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
    cached = ann.get(f"/files/{body['id']}/download",
                     headers={"If-None-Match": f'"{body["sha256"]}"'})
    assert cached.status_code == 304
    assert cached.data == b""


def test_the_extension_uploads_with_a_files_write_key(users):
    app, ann, _ = users
    key, _ = ann.actions.create_key(ann.token, ["read", "files:write"], name="extension")
    extension = Files(ann.actions, key)
    assert key.startswith("tk_")
    body = extension.uploaded(b"saved from the browser", "page.txt", description="a page")
    assert body["mime_type"] == "text/plain"
    assert body["description"] == "a page"
    assert extension.get("/files").status_code == 200

    notes_only, _ = ann.actions.create_key(ann.token, ["notes:write"], name="notes")
    refused = Files(ann.actions, notes_only).upload(b"nope", "no.txt")
    assert refused.status_code == 403
    assert "scope" in refused.get_json()["error"]
    reader, _ = ann.actions.create_key(ann.token, ["read"], name="reader")
    assert Files(ann.actions, reader).upload(b"nope", "no.txt").status_code == 403
    assert Files(ann.actions, reader).get(f"/files/{body['id']}/download").data == (
        b"saved from the browser")
    assert File.select().count() == 1
    assert temp_files(app) == []


def test_upload_without_a_file_field_is_400(users):
    _, ann, _ = users
    response = ann.client.post("/api/v1/files/upload", headers=bearer(ann.token),
                               data={"description": "no file"},
                               content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.get_json()["field"] == "file"
    as_json = ann.call("POST", "/files/upload", json={"file": "x"})
    assert as_json.status_code == 400


def test_a_50_mb_upload_streams_to_disk(make_app, tmp_path):
    _, ann, _ = _app_with_users(make_app(**GENEROUS_LIMITS))
    big = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with big.open("wb") as fh:
        block = os.urandom(1024 * 1024)
        for n in range(50):
            chunk = block[n:] + block[:n]
            digest.update(chunk)
            fh.write(chunk)
    with big.open("rb") as fh:
        tracemalloc.start()
        try:
            response = ann.upload(fh, "big.bin")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["sha256"] == digest.hexdigest()
    assert response.get_json()["file_size"] == 50 * 1024 * 1024
    # The test client and the server together: a few buffers, never the 50 MB file.
    assert peak < 8 * 1024 * 1024, f"peak Python allocation {peak / 1e6:.1f} MB"


# -------------------------------------------------------------------------------- size limit


@pytest.fixture
def limited(make_app):
    """An app whose upload limit is 1 MB."""
    app = make_app(MAX_UPLOAD_MB=1, **GENEROUS_LIMITS)
    _, ann, _ = _app_with_users(app)
    return app, ann


def _nothing_left(app):
    assert File.select().count() == 0
    assert blobs_in(app) == []
    assert temp_files(app) == []


def test_an_upload_declared_beyond_the_limit_is_413(limited):
    app, ann = limited
    response = ann.upload(os.urandom(2 * 1024 * 1024), "big.bin")
    assert response.status_code == 413
    assert response.get_json()["error"] == (
        "The file is larger than the upload limit of 1 MB.")
    assert response.get_json()["limit_bytes"] == 1024 * 1024
    _nothing_left(app)


def test_an_upload_found_beyond_the_limit_while_streaming_is_413(limited):
    app, ann = limited
    # Within the allowance for the multipart envelope, so only the streaming check sees it.
    response = ann.upload(os.urandom(1024 * 1024 + 1000), "sneaky.bin")
    assert response.status_code == 413
    _nothing_left(app)
    exactly = ann.upload(os.urandom(1024 * 1024), "exact.bin")
    assert exactly.status_code == 201


def test_a_chunked_upload_without_content_length_is_checked_while_streaming(limited):
    app, ann = limited
    builder = EnvironBuilder(path="/api/v1/files/upload", method="POST",
                             headers=bearer(ann.token),
                             data={"file": (io.BytesIO(os.urandom(3 * 1024 * 1024)), "x.bin")})
    environ = builder.get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True  # the server de-chunked the body
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    app_iter, status, _ = run_wsgi_app(app, environ)  # the test client would rebuild it
    body = b"".join(app_iter)
    builder.close()
    assert status.startswith("413"), body
    _nothing_left(app)


def test_browser_uploads_stream_and_are_limited_before_the_csrf_check_reads_them(limited):
    app, _ = limited
    browser = app.test_client()
    AuthActions.web_login(browser, "ann", "user-pass-456")
    token = csrf_from(browser.get("/settings/security").get_data(as_text=True))

    def post(content: bytes, **headers):
        # Without the X-CSRF-Token header the CSRF check reads the form itself, before the
        # view: the body must already stream to a limited spool then.
        return browser.post("/api/v1/files/upload", content_type="multipart/form-data",
                            headers=headers, data={"file": (io.BytesIO(content), "x.bin"),
                                                   "csrf_token": token})

    assert post(os.urandom(1024 * 1024 + 1000)).status_code == 413
    _nothing_left(app)
    forged = browser.post("/api/v1/files/upload", content_type="multipart/form-data",
                          data={"file": (io.BytesIO(b"x"), "x.bin"), "csrf_token": "forged"})
    assert forged.status_code == 403
    _nothing_left(app)
    assert post(b"from a form").status_code == 201
    assert post(b"from fetch", **{"X-CSRF-Token": token}).status_code == 201
    assert len(blobs_in(app)) == 2
    assert temp_files(app) == []


def test_a_client_that_disconnects_leaves_nothing(limited):
    app, ann = limited
    builder = EnvironBuilder(path="/api/v1/files/upload", method="POST",
                             headers=bearer(ann.token),
                             data={"file": (io.BytesIO(os.urandom(500_000)), "x.bin")})
    environ = builder.get_environ()
    body = environ["wsgi.input"].read()
    builder.close()
    environ["wsgi.input"] = io.BytesIO(body[:300_000])  # the connection drops mid-body
    app_iter, status, _ = run_wsgi_app(app, environ)
    b"".join(app_iter)
    assert status.startswith("400")
    _nothing_left(app)


def test_orphaned_temporary_files_are_removed_at_start_up(make_app, tmp_path):
    temp = tmp_path / "data" / "files" / "tmp"
    temp.mkdir(parents=True)
    orphan = temp / "upload-crashed.part"
    orphan.write_bytes(b"half an upload")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    in_flight = temp / "upload-in-flight.part"
    in_flight.write_bytes(b"being written right now")
    make_app()
    assert not orphan.exists()
    assert in_flight.exists()  # another instance may be writing it


# ----------------------------------------------------------------------- dedupe and purge


def test_same_content_is_stored_once_and_purge_keeps_a_shared_blob(users):
    app, ann, bob = users
    content = b"the same bytes, twice" * 1000
    first = ann.uploaded(content, "a.txt")
    second = bob.uploaded(content, "b.txt")
    again = ann.uploaded(content, "a copy.txt")
    assert first["sha256"] == second["sha256"] == again["sha256"]
    assert len(blobs_in(app)) == 1

    for file_id in (first["id"], again["id"]):
        assert ann.call("DELETE", f"/files/{file_id}").status_code == 200
        assert ann.call("DELETE", f"/trash/file/{file_id}").status_code == 200
    assert len(blobs_in(app)) == 1  # bob's row still names it
    assert bob.get(f"/files/{second['id']}/download").data == content

    assert bob.call("DELETE", f"/files/{second['id']}").status_code == 200
    assert len(blobs_in(app)) == 1  # in the trash, not purged
    assert bob.call("POST", f"/trash/file/{second['id']}/restore").status_code == 200
    assert bob.get(f"/files/{second['id']}/download").data == content
    bob.call("DELETE", f"/files/{second['id']}")
    assert bob.call("DELETE", f"/trash/file/{second['id']}").status_code == 200
    assert blobs_in(app) == []
    assert File.select().count() == 0


def test_trash_lists_files_and_purge_takes_their_share_links(users):
    app, ann, _ = users
    body = ann.uploaded(b"shared then purged", "note.txt")
    ann.call("POST", f"/files/{body['id']}/shares", json={})
    assert ann.call("DELETE", f"/files/{body['id']}").status_code == 200
    assert ann.get(f"/files/{body['id']}").status_code == 404
    assert ann.get("/files").get_json() == []
    trash = ann.get("/trash").get_json()
    assert [(e["type"], e["id"], e["title"]) for e in trash] == [("file", body["id"],
                                                                  "note.txt")]
    assert trash[0]["item"]["name"] == "note.txt"
    assert ann.call("DELETE", f"/trash/file/{body['id']}").status_code == 200
    assert FileShare.select().count() == 0
    assert blobs_in(app) == []


def test_concurrent_uploads_of_the_same_content_and_purges_keep_the_store_consistent(
        make_app):
    app = make_app(**GENEROUS_LIMITS)
    _, ann, bob = _app_with_users(app)
    content = os.urandom(200_000)
    keeper = bob.uploaded(content, "keep.bin")
    errors = []

    def churn(user: Files):
        try:
            for _ in range(5):
                client = app.test_client()
                response = client.post("/api/v1/files/upload", headers=bearer(user.token),
                                       data={"file": (io.BytesIO(content), "c.bin")},
                                       content_type="multipart/form-data")
                file_id = response.get_json()["id"]
                client.delete(f"/api/v1/files/{file_id}", headers=bearer(user.token))
                client.delete(f"/api/v1/trash/file/{file_id}", headers=bearer(user.token))
        except Exception as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(user,)) for user in (ann, ann, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert bob.get(f"/files/{keeper['id']}/download").data == content
    assert len(blobs_in(app)) == 1
    assert temp_files(app) == []


# ----------------------------------------------------------------------- names and headers


HOSTILE_NAMES = [
    'quote"d.txt',
    "line\r\nX-Injected: yes.txt",
    "../../etc/passwd",
    "..\\..\\windows\\system32\\evil.dll",
    "Résumé – 2024 final.txt",
    "日本語のファイル.txt",
    "\u202egnp.exe",
    "semi;colon filename=evil.html",
    "back\\slash%2e.txt",
    "..",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_cleaned_and_the_download_header_is_safe(users, name):
    app, ann, _ = users
    uploaded = ann.uploaded(b"harmless text", "upload.txt")
    # A rename carries the name exactly (multipart clients escape quotes and newlines).
    body = ann.call("PATCH", f"/files/{uploaded['id']}", json={"name": name}).get_json()
    shown = body["name"]
    assert shown == files.sanitize_name(name)
    assert "/" not in shown
    assert "\\" not in shown
    assert "\r" not in shown
    assert "\n" not in shown
    assert "\u202e" not in shown
    header = ann.get(f"/files/{body['id']}/download").headers["Content-Disposition"]
    assert "\r" not in header
    assert "\n" not in header
    disposition, ascii_part, encoded = header.split("; ")
    assert disposition == "attachment"
    assert ascii_part.startswith('filename="')
    assert ascii_part.endswith('"')
    fallback = ascii_part[len('filename="'):-1]
    assert fallback.isascii()
    assert '"' not in fallback
    assert "\\" not in fallback
    assert "%" not in fallback
    assert encoded.startswith("filename*=UTF-8''")
    assert unquote(encoded[len("filename*=UTF-8''"):]) == shown
    # The name is never a path: the store holds only the blob named by its hash.
    assert [p.name for p in blobs_in(app)] == [body["sha256"]]


# ------------------------------------------------------------------------------- preview


def test_images_preview_inline_but_svg_only_as_an_attachment(users):
    _, ann, _ = users
    png = ann.uploaded(PNG, "dot.png")
    assert png["mime_type"] == "image/png"
    assert png["previewable"]
    shown = ann.get(f"/files/{png['id']}/preview")
    assert shown.status_code == 200
    assert shown.data == PNG
    assert shown.headers["Content-Type"] == "image/png"
    assert shown.headers["Content-Disposition"].startswith("inline;")
    assert shown.headers["X-Content-Type-Options"] == "nosniff"

    svg = ann.uploaded(SVG, "drawing.svg")
    assert svg["mime_type"] == "image/svg+xml"
    assert not svg["previewable"]
    assert svg["preview_url"] is None
    served = ann.get(f"/files/{svg['id']}/preview")
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in served.headers["Content-Security-Policy"]

    disguised = ann.uploaded(SVG, "innocent.png")  # SVG content wearing a PNG name
    assert disguised["mime_type"] == "image/svg+xml"
    assert ann.get(f"/files/{disguised['id']}/preview").headers[
        "Content-Disposition"].startswith("attachment;")


def test_text_previews_as_plain_text_truncated(users):
    _, ann, _ = users
    long_text = ("line of text é\n" * 20_000).encode()  # 320 KB
    body = ann.uploaded(long_text, "notes.md")
    assert body["mime_type"] == "text/markdown"
    preview = ann.get(f"/files/{body['id']}/preview")
    assert preview.status_code == 200
    assert preview.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert preview.headers["X-Preview-Truncated"] == "true"
    assert preview.headers["Content-Disposition"].startswith("inline;")
    assert len(preview.data) <= files.PREVIEW_TEXT_BYTES
    assert long_text.startswith(preview.data)

    page = ann.uploaded(b"<html><script>alert(1)</script></html>", "page.html")
    shown = ann.get(f"/files/{page['id']}/preview")
    assert shown.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert shown.headers["X-Preview-Truncated"] == "false"
    assert shown.data == b"<html><script>alert(1)</script></html>"


def test_other_types_have_no_preview(users):
    _, ann, _ = users
    body = ann.uploaded(PDF, "paper.pdf")
    assert body["mime_type"] == "application/pdf"
    assert body["file_type"] == "document"
    response = ann.get(f"/files/{body['id']}/preview")
    assert response.status_code == 415
    assert "download" in response.get_json()["error"]


# ------------------------------------------------------------------------ edit, list, events


def test_patch_changes_only_the_fields_sent(users):
    _, ann, _ = users
    body = ann.uploaded(b"x", "draft.txt", description="first", tags="a,b")
    renamed = ann.call("PATCH", f"/files/{body['id']}", json={"name": "final/../v2.txt"})
    assert renamed.status_code == 200
    out = renamed.get_json()
    assert out["name"] == "v2.txt"
    assert out["description"] == "first"
    assert [t["name"] for t in out["tags"]] == ["a", "b"]
    cleared = ann.call("PATCH", f"/files/{body['id']}", json={"description": "", "tags": []})
    assert cleared.get_json()["description"] == ""
    assert cleared.get_json()["tags"] == []
    assert cleared.get_json()["name"] == "v2.txt"
    bad = ann.call("PATCH", f"/files/{body['id']}", json={"name": ""})
    assert bad.status_code == 400
    assert bad.get_json()["field"] == "name"
    sent_back = dict(cleared.get_json(), file_size=1, sha256="0" * 64, description="back")
    echoed = ann.call("PATCH", f"/files/{body['id']}", json=sent_back).get_json()
    assert echoed["file_size"] == 1
    assert echoed["sha256"] == body["sha256"]
    assert echoed["description"] == "back"


def test_list_filters_sorts_and_pages(users):
    _, ann, _ = users
    ids = {}
    for name, content, tags in (("b.png", PNG, "pics"), ("a.txt", b"alpha", "docs,pics"),
                                ("c.pdf", PDF, "docs")):
        ids[name] = ann.uploaded(content, name, tags=tags)["id"]

    def names(query: str):
        response = ann.get(f"/files?{query}")
        assert response.status_code == 200, response.get_json()
        return [f["name"] for f in response.get_json()]

    assert names("sort=name") == ["a.txt", "b.png", "c.pdf"]
    assert names("sort=-name") == ["c.pdf", "b.png", "a.txt"]
    assert names("tag=pics&sort=name") == ["a.txt", "b.png"]
    assert names("tag=pics,docs") == ["a.txt"]
    assert names("tag=pics&tag=docs") == ["a.txt"]
    assert names("type=image") == ["b.png"]
    assert names("q=A.TX") == ["a.txt"]
    assert names("q=%25") == []  # a LIKE wildcard is matched literally
    page = ann.get("/files?sort=name&limit=2&offset=1")
    assert [f["name"] for f in page.get_json()] == ["b.png", "c.pdf"]
    assert page.headers["X-Total-Count"] == "3"
    assert 'rel="prev"' in page.headers["Link"]
    assert ann.get("/files?limit=500").status_code == 400
    assert ann.get("/files?sort=owner").status_code == 400
    assert ann.get("/files?type=spreadsheet").status_code == 400


def test_writes_publish_change_events_to_their_user_only(users):
    app, ann, bob = users
    pubsub = app.extensions["trackeep"].capabilities.pubsub
    ann_id = ann.get("/auth/me").get_json()["user"]["id"]
    bob_id = bob.get("/auth/me").get_json()["user"]["id"]
    seen: dict[int, list] = {ann_id: [], bob_id: []}
    done = threading.Event()

    def collect(user_id):
        def callback(channel, message):
            seen[user_id].append(message)
            if message["action"] == "deleted":
                done.set()
        return callback

    subs = [pubsub.subscribe(events.channel_for(u), collect(u)) for u in (ann_id, bob_id)]
    try:
        body = ann.uploaded(b"evented", "e.txt")
        ann.call("PATCH", f"/files/{body['id']}", json={"description": "d"})
        ann.call("DELETE", f"/files/{body['id']}")
        assert done.wait(5)
    finally:
        for sub in subs:
            sub.unsubscribe()
    assert [(m["type"], m["action"], m["id"]) for m in seen[ann_id]] == [
        ("file", "created", body["id"]), ("file", "updated", body["id"]),
        ("file", "deleted", body["id"])]
    assert seen[ann_id][1]["item"]["description"] == "d"
    assert seen[bob_id] == []


def test_users_cannot_reach_each_others_files(users):
    _, ann, bob = users
    body = ann.uploaded(b"private", "private.txt")
    file_id = body["id"]
    for method, path in (("GET", f"/files/{file_id}"), ("GET", f"/files/{file_id}/download"),
                         ("GET", f"/files/{file_id}/preview"),
                         ("PATCH", f"/files/{file_id}"), ("DELETE", f"/files/{file_id}"),
                         ("GET", f"/files/{file_id}/shares"),
                         ("POST", f"/files/{file_id}/shares")):
        response = bob.call(method, path, json={} if method in ("PATCH", "POST") else None)
        assert response.status_code == 404, (method, path)
    assert bob.get("/files").get_json() == []
    assert ann.get(f"/files/{file_id}/download").data == b"private"


# --------------------------------------------------------------------------- share links


def test_share_links_download_until_they_expire_or_are_revoked(clocked):
    app = clocked.app
    _, ann, bob = _app_with_users(app)
    content = b"for anyone with the link"
    body = ann.uploaded(content, "shared report.txt")
    anonymous = app.test_client()

    expiring = ann.call("POST", f"/files/{body['id']}/shares", json={"expires_in_hours": 1})
    assert expiring.status_code == 201
    link = expiring.get_json()
    assert link["url"].endswith(f"/s/{link['token']}")
    assert link["state"] == "active"
    assert link["prefix"] == link["token"][:6]
    assert len(link["token"]) >= 40
    got = anonymous.get(f"/s/{link['token']}")
    assert got.status_code == 200
    assert got.data == content
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["X-Content-Type-Options"] == "nosniff"

    forever = ann.call("POST", f"/files/{body['id']}/shares").get_json()
    assert forever["expires_at"] is None
    clocked.advance(2 * 3600)
    expired = anonymous.get(f"/s/{link['token']}")
    assert anonymous.get(f"/s/{forever['token']}").status_code == 200

    assert ann.call("DELETE", f"/files/{body['id']}/shares/{forever['id']}").status_code == 204
    revoked = anonymous.get(f"/s/{forever['token']}")
    unknown = anonymous.get("/s/" + "A" * 43)
    for response in (expired, revoked, unknown):
        assert response.status_code == 404
    assert expired.data == revoked.data == unknown.data  # nothing tells them apart

    listed = ann.get(f"/files/{body['id']}/shares").get_json()["shares"]
    assert [(s["id"], s["state"]) for s in listed] == [(forever["id"], "revoked"),
                                                       (link["id"], "expired")]
    assert [s["download_count"] for s in listed] == [1, 1]
    assert all("token" not in s for s in listed)
    stored = "\n".join(str(row.__data__) for row in FileShare.select())
    assert link["token"] not in stored
    assert forever["token"] not in stored

    # Another user can neither list, revoke nor make links to the file.
    assert bob.get(f"/files/{body['id']}/shares").status_code == 404
    assert bob.call("DELETE", f"/files/{body['id']}/shares/{link['id']}").status_code == 404
    other = bob.uploaded(b"bob's", "bob.txt")
    assert ann.call("DELETE", f"/files/{other['id']}/shares/{link['id']}").status_code == 404


def test_share_links_of_a_trashed_file_stop_until_it_is_restored(users):
    app, ann, _ = users
    body = ann.uploaded(b"trash me", "t.txt")
    link = ann.call("POST", f"/files/{body['id']}/shares").get_json()
    anonymous = app.test_client()
    ann.call("DELETE", f"/files/{body['id']}")
    assert anonymous.get(f"/s/{link['token']}").status_code == 404
    ann.call("POST", f"/trash/file/{body['id']}/restore")
    assert anonymous.get(f"/s/{link['token']}").status_code == 200


def test_share_link_input_is_checked(users):
    _, ann, _ = users
    body = ann.uploaded(b"x", "x.txt")
    for bad in (0, -1, "soon", True, files.MAX_SHARE_HOURS + 1):
        response = ann.call("POST", f"/files/{body['id']}/shares",
                            json={"expires_in_hours": bad})
        assert response.status_code == 400, bad
        assert response.get_json()["field"] == "expires_in_hours"


def test_share_downloads_are_rate_limited_per_client(make_app):
    app = make_app(SHARE_RATE_LIMIT=2, **GENEROUS_LIMITS)
    _, ann, _ = _app_with_users(app)
    body = ann.uploaded(b"popular", "p.txt")
    token = ann.call("POST", f"/files/{body['id']}/shares").get_json()["token"]
    anonymous = app.test_client()
    assert [anonymous.get(f"/s/{token}").status_code for _ in range(3)] == [200, 200, 429]
    assert anonymous.get("/s/" + "B" * 43).status_code == 429  # guessing counts too
    other = anonymous.get(f"/s/{token}", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


# ------------------------------------------------------------------------- domain rules


@pytest.mark.parametrize(("name", "head", "expected"), [
    ("photo.png", PNG, "image/png"),
    ("photo.txt", PNG, "image/png"),  # the bytes win
    ("photo.png", b"<html><script>x</script>", "text/html"),
    ("photo.png", b"\x00\x01garbage", "application/octet-stream"),  # an unbacked image claim
    ("x.svg", SVG, "image/svg+xml"),
    ("x.txt", b"<svg onload=alert(1)>", "image/svg+xml"),
    ("doc.docx", b"PK\x03\x04rest", "application/vnd.openxmlformats-officedocument."
                                    "wordprocessingml.document"),
    ("a.zip", b"PK\x03\x04rest", "application/zip"),
    ("data.json", b'{"a": 1}', "application/json"),
    ("notes", "plain words é".encode(), "text/plain"),
    ("paper.bin", PDF, "application/pdf"),
    ("a.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    ("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
    ("song.m4a", b"\x00\x00\x00\x18ftypM4A ", "audio/mp4"),
    ("a.tar.gz", b"\x1f\x8b\x08\x00", "application/gzip"),
    ("empty.png", b"", "application/octet-stream"),
])
def test_mime_type_comes_from_name_and_content(name, head, expected):
    assert files.detect_mime(name, head) == expected


@pytest.mark.parametrize(("raw", "shown"), [
    ("report.pdf", "report.pdf"),
    ("C:\\Users\\me\\report.pdf", "report.pdf"),
    ("a/b/../c.txt", "c.txt"),
    ("  spaced \t out  .txt", "spaced out .txt"),
    ("tab\there", "tab here"),
    ("zero\u200bwidth.txt", "zerowidth.txt"),
    ("", "file"),
    ('quote"d\r\nname.txt', 'quote"d name.txt'),
    ("...", "file"),
    (".bashrc", ".bashrc"),
    ("x" * 300 + ".tar", "x" * 251 + ".tar"),
])
def test_names_are_cleaned_for_display(raw, shown):
    assert files.sanitize_name(raw) == shown


def test_spool_refuses_bytes_past_its_limit_and_removes_itself(tmp_path):
    store = files.BlobStore(tmp_path)
    spool = store.spool(limit=10)
    spool.write(b"12345")
    with pytest.raises(files.TooLarge):
        spool.write(b"678901")
    assert not spool.path.exists()
    assert not spool.active

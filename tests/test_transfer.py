"""Import and export: the full archive round trip, refusals that leave nothing behind,
Netscape bookmark files from Chrome, Firefox and Safari, progress events and the CLI."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from pathlib import Path

import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions, bearer

from trackeep_desktop import cli, files, transfer
from trackeep_desktop.realtime import events
from trackeep_desktop.storage.models import Bookmark, File, Tag, User

FIXTURES = Path(__file__).parent / "fixtures" / "bookmarks"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\xdac\xfc\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
       b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


class User_:
    """API calls of one signed-in user."""

    def __init__(self, app, token: str):
        self.app = app
        self.client = app.test_client()
        self.token = token

    def call(self, method: str, path: str, json_body=None, expect: int | None = None):
        response = self.client.open(f"/api/v1{path}", method=method, json=json_body,
                                    headers=bearer(self.token))
        if expect is not None:
            assert response.status_code == expect, (path, response.get_json())
        return response

    def upload(self, path: str, content: bytes, name: str, **fields):
        return self.client.post(f"/api/v1{path}", headers=bearer(self.token),
                                data={"file": (io.BytesIO(content), name), **fields},
                                content_type="multipart/form-data")

    def export(self) -> bytes:
        response = self.call("GET", "/export", expect=200)
        assert response.mimetype == "application/zip"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        return response.get_data()

    @property
    def id(self) -> int:
        return self.call("GET", "/auth/me").get_json()["user"]["id"]


def _setup(app, *names: str) -> tuple[AuthActions, list[User_]]:
    app.config["FETCH_METADATA"] = False  # no background fetches of example.com pages
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    for name in names:
        actions.create_user(owner, name)
    return actions, [User_(app, actions.token(name)) for name in names]


def fill_account(user: User_) -> None:
    """Something of every kind, tagged, edited, some of it in the trash."""
    work = user.call("POST", "/tags", {"name": "Work", "color": "#123456"}, 201).get_json()
    user.call("POST", "/tags", {"name": "unused"}, 201)
    user.call("PATCH", f"/tags/{work['id']}", {"name": "Work stuff"}, 200)
    b1 = user.call("POST", "/bookmarks", {"url": "https://example.com/a", "title": "A",
                                          "description": "first", "tags": ["Work stuff", "x"],
                                          "is_favorite": True}, 201).get_json()
    user.call("PATCH", f"/bookmarks/{b1['id']}", {"is_read": True}, 200)
    b2 = user.call("POST", "/bookmarks", {"url": "https://example.com/b", "title": "B",
                                          "is_public": True}, 201).get_json()
    user.call("DELETE", f"/bookmarks/{b2['id']}", expect=200)
    parent = user.call("POST", "/tasks", {"title": "Parent", "priority": "urgent",
                                          "due_date": "2030-01-02T03:04:05Z",
                                          "tags": ["x"]}, 201).get_json()
    user.call("POST", "/tasks", {"title": "Child", "parent_id": parent["id"],
                                 "status": "completed"}, 201)
    doomed = user.call("POST", "/tasks", {"title": "Doomed", "progress": 40}, 201).get_json()
    user.call("POST", "/tasks", {"title": "Doomed child", "parent_id": doomed["id"]}, 201)
    user.call("DELETE", f"/tasks/{doomed['id']}", expect=200)
    pinned = user.call("POST", "/notes", {"title": "Pinned", "content": "# Hi\n\n*there*",
                                          "is_pinned": True, "tags": ["Work stuff"]},
                       201).get_json()
    gone = user.call("POST", "/notes", {"title": "Gone", "content": "bye"}, 201).get_json()
    user.call("DELETE", f"/notes/{gone['id']}", expect=200)
    shared = b"the same content in two files" * 100
    for name, content, tags in (("dot.png", PNG, "x"), ("one.txt", shared, "Work stuff"),
                                ("two.txt", shared, ""), ("trashed.bin", b"\x00\x01" * 500, "")):
        response = user.upload("/files/upload", content, name, description=f"about {name}",
                               tags=tags)
        assert response.status_code == 201, response.get_json()
        if name == "trashed.bin":
            user.call("DELETE", f"/files/{response.get_json()['id']}", expect=200)
    user.call("POST", "/time-entries", {"start_time": "2026-03-28T21:00:00Z",
                                        "end_time": "2026-03-29T02:00:00Z",
                                        "task_id": parent["id"], "tags": ["x"],
                                        "billable": True, "hourly_rate": 75.5,
                                        "description": "Night shift"}, 201)
    forgotten = user.call("POST", "/time-entries", {"start_time": "2026-01-05T09:00:00Z",
                                                    "end_time": "2026-01-05T09:30:00Z",
                                                    "bookmark_id": b1["id"]}, 201).get_json()
    user.call("DELETE", f"/time-entries/{forgotten['time_entry']['id']}", expect=200)
    user.call("POST", "/time-entries", {"note_id": pinned["id"], "source": "mobile"}, 201)


def comparable(archive: bytes) -> dict:
    """A manifest with what an import may change (ids, export time, the account) replaced by
    positions, so two exports of the same data compare equal."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        blobs = {name: zf.read(name) for name in zf.namelist() if name.startswith("blobs/")}
    for key in ("exported_at", "user", "app_version"):
        manifest.pop(key)
    positions: dict[str, dict[int, int]] = {}
    for section in ("tags", "bookmarks", "tasks", "notes", "files", "time_entries"):
        positions[section] = {entry["id"]: index
                              for index, entry in enumerate(manifest[section])}
        for entry in manifest[section]:
            entry["id"] = positions[section][entry["id"]]
            if section == "tasks" and entry["parent_id"] is not None:
                entry["parent_id"] = positions[section][entry["parent_id"]]
            if section == "time_entries":
                for key, linked in (("task_id", "tasks"), ("bookmark_id", "bookmarks"),
                                    ("note_id", "notes")):
                    if entry[key] is not None:
                        entry[key] = positions[linked][entry[key]]
    manifest["blobs"] = blobs
    return manifest


# ---------------------------------------------------------------------------- full export


def test_export_then_import_restores_everything_exactly(any_app):
    _, (ann, bob) = _setup(any_app, "ann", "bob")
    fill_account(ann)
    archive = ann.export()
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert zf.testzip() is None
    assert manifest["format"] == "trackeep-export"
    assert manifest["version"] == 1
    assert manifest["counts"] == {"tags": 3, "bookmarks": 2, "tasks": 4, "notes": 2,
                                  "files": 4, "time_entries": 3}
    assert len([n for n in zf.namelist() if n.startswith("blobs/")]) == 3  # deduplicated

    response = bob.upload("/import", archive, "backup.zip")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["imported"] == manifest["counts"]

    assert comparable(bob.export()) == comparable(archive)
    # What the API shows matches too, file bytes included.
    for path in ("/bookmarks", "/tasks", "/notes", "/files", "/tags", "/trash"):
        mine = ann.call("GET", path).get_json()
        theirs = bob.call("GET", path).get_json()
        assert len(mine) == len(theirs), path
    bob_files = {f["name"]: f for f in bob.call("GET", "/files").get_json()}
    for original in ann.call("GET", "/files").get_json():
        copy = bob_files[original["name"]]
        ids = ("id", "user_id", "download_url", "file_path", "preview_url", "tags")
        assert {k: v for k, v in copy.items() if k not in ids} == {
            k: v for k, v in original.items() if k not in ids}
        assert [t["name"] for t in copy["tags"]] == [t["name"] for t in original["tags"]]
        assert bob.call("GET", f"/files/{copy['id']}/download").data == ann.call(
            "GET", f"/files/{original['id']}/download").data
    # Time entries: the same times, tags, rates and links (to the copies), the timer running.
    def entries(user):
        return [{k: v for k, v in e.items() if k not in ("id", "user_id", "task_id",
                                                          "bookmark_id", "note_id", "linked",
                                                          "duration", "amount")}
                | {"linked": e["linked"] and (e["linked"]["type"], e["linked"]["title"])}
                for e in user.call("GET", "/time-entries").get_json()["time_entries"]]
    assert entries(bob) == entries(ann)
    assert len(entries(bob)) == 2  # the deleted one is kept, deleted
    assert bob.call("GET", "/time-entries/running").get_json()["time_entry"]["linked"][
        "title"] == "Pinned"


@pytest.mark.slow
def test_import_into_a_fresh_instance_takes_the_bytes_from_the_archive(make_app, tmp_path,
                                                                       database_url):
    first = make_app(**GENEROUS_LIMITS)
    _, (ann,) = _setup(first, "ann")
    fill_account(ann)
    archive = ann.export()
    first.extensions["trackeep"].close()

    if database_url.startswith("sqlite"):
        second = make_app(DATA_DIR=str(tmp_path / "elsewhere"), **GENEROUS_LIMITS,
                          DATABASE_URL=f"sqlite:///{tmp_path / 'elsewhere.db'}")
        _, (restored,) = _setup(second, "ann")
    else:  # the same PostgreSQL database, another data folder: the blobs are not there
        second = make_app(DATA_DIR=str(tmp_path / "elsewhere"), **GENEROUS_LIMITS)
        actions = AuthActions(second)
        owner = actions.token("owner", OWNER["password"])
        actions.create_user(owner, "ann2")
        restored = User_(second, actions.token("ann2"))
    assert restored.upload("/import", archive, "backup.zip").status_code == 201
    assert comparable(restored.export()) == comparable(archive)


def test_import_refuses_an_account_that_is_not_empty(app):
    _, (ann, bob) = _setup(app, "ann", "bob")
    fill_account(ann)
    archive = ann.export()
    bob.call("POST", "/tags", {"name": "mine"}, 201)
    response = bob.upload("/import", archive, "backup.zip")
    assert response.status_code == 409
    assert "empty" in response.get_json()["error"]
    assert Tag.select().join(User).where(User.username == "bob").count() == 1


def _rewrite(archive: bytes, change) -> bytes:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    change(entries)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def _manifest_change(change):
    def apply(entries):
        manifest = json.loads(entries["manifest.json"])
        change(manifest)
        entries["manifest.json"] = json.dumps(manifest).encode()
    return apply


def _damage_blob(entries):
    name = next(n for n in entries if n.startswith("blobs/"))
    entries[name] = bytes(len(entries[name]))


def _drop_blob(entries):
    del entries[next(n for n in entries if n.startswith("blobs/"))]


BAD_ARCHIVES = {
    "not a zip": lambda archive: b"just some bytes, not an archive",
    "no manifest": lambda archive: _rewrite(archive, lambda e: e.pop("manifest.json")),
    "manifest not json": lambda archive: _rewrite(
        archive, lambda e: e.update({"manifest.json": b"{not json"})),
    "another format": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m.update(format="something-else"))),
    "a future version": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m.update(version=99))),
    "a bad value at the end": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m["tasks"][-1].update(status="someday"))),
    "a bad url": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m["bookmarks"][-1].update(url="javascript:alert(1)"))),
    "an unknown tag": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m["notes"][-1].update(tags=["nowhere"]))),
    "a subtask of a subtask": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m["tasks"][0].update(parent_id=m["tasks"][1]["id"]))),
    "a NUL in a title": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m["bookmarks"][-1].update(title="a\x00b"))),
    "a lone surrogate in a note": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m["notes"][-1].update(content="\ud800"))),
    "a manifest nested 1000 deep": lambda archive: _rewrite(archive, lambda e: e.update({
        "manifest.json": b'{"extra": ' + b"[" * 1000 + b"]" * 1000 + b", "
                         + e["manifest.json"].lstrip()[1:]})),
    "a time entry ending before it starts": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m["time_entries"][0].update(end_time=m["time_entries"][0]["start_time"]))),
    "a time entry on a task not in the archive": lambda archive: _rewrite(
        archive, _manifest_change(lambda m: m["time_entries"][0].update(task_id=999_999))),
    "two running timers": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m["time_entries"][0].update(end_time=None))),
    "a time entry on two items": lambda archive: _rewrite(archive, _manifest_change(
        lambda m: m["time_entries"][0].update(note_id=m["notes"][0]["id"]))),
    "a damaged blob": lambda archive: _rewrite(archive, _damage_blob),
    "a missing blob": lambda archive: _rewrite(archive, _drop_blob),
}


@pytest.mark.parametrize("damage", sorted(BAD_ARCHIVES))
def test_a_bad_archive_is_refused_whole(make_app, tmp_path, damage):
    first = make_app(**GENEROUS_LIMITS)
    _, (ann, bob) = _setup(first, "ann", "bob")
    fill_account(ann)
    archive = BAD_ARCHIVES[damage](ann.export())
    # A second instance on a data folder of its own: every blob would be new there.
    second = make_app(DATA_DIR=str(tmp_path / "fresh"), **GENEROUS_LIMITS)
    importer = User_(second, bob.token)
    response = importer.upload("/import", archive, "backup.zip")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == "file"
    assert transfer.account_is_empty(importer.id)
    store = files.BlobStore(tmp_path / "fresh" / "files")
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_import_and_export_need_their_scopes(app):
    actions, (ann, bob) = _setup(app, "ann", "bob")
    reader, _ = actions.create_key(ann.token, ["read"])
    assert User_(app, reader).call("GET", "/export").status_code == 200
    files_only, _ = actions.create_key(ann.token, ["files:write"])
    assert User_(app, files_only).call("GET", "/export").status_code == 403
    writer, _ = actions.create_key(bob.token, ["bookmarks:write", "tasks:write", "notes:write",
                                               "files:write"])
    archive = ann.export()
    assert User_(app, writer).upload("/import", archive, "a.zip").status_code == 201
    partial, _ = actions.create_key(bob.token, ["bookmarks:write"])
    assert User_(app, partial).upload("/import", archive, "a.zip").status_code == 403


# ---------------------------------------------------------------------- Netscape bookmarks


EXPECTED = {
    "chrome": {
        "report": {"imported": {"bookmarks": 4}, "total": 6, "duplicates": 1, "invalid": 1},
        "bookmarks": {
            "https://www.python.org/": ("Welcome to Python.org", [], 1600000000, ""),
            "https://flask.palletsprojects.com/en/stable/": ("Flask & friends", ["Dev"],
                                                             1600000100, ""),
            "https://www.sqlite.org/index.html": ("SQLite Home Page", ["Databases", "Dev"],
                                                  1600000200, ""),
            "https://example.com/read-later": ("Read later", [], 1600000400, ""),
        },
    },
    "firefox": {
        "report": {"imported": {"bookmarks": 4}, "total": 5, "duplicates": 0, "invalid": 1},
        "bookmarks": {
            "https://cooking.example.org/bread": (
                "Sourdough bread", ["baking", "Recipes", "weekend"], 1690000001,
                "A slow loaf <3"),
            "https://www.mozilla.org/en-US/firefox/": ("Get Involved", [], 1690000003, ""),
            "https://intranet.example.com/wiki?page=Home&lang=en": (
                "Wiki — Home", ["Work misc"], 1690000005, ""),
            "https://developer.mozilla.org/": ("MDN Web Docs", [], 1690000006, ""),
        },
    },
    "safari": {
        "report": {"imported": {"bookmarks": 3}, "total": 3, "duplicates": 0, "invalid": 0},
        "bookmarks": {
            "https://www.apple.com/": ("Apple", [], None, ""),
            "https://news.ycombinator.com/": ("Hacker News", ["News"], None, ""),
            "https://example.org/article": ("An article", ["Reading List"], None,
                                            "Preview text of the article"),
        },
    },
}


@pytest.mark.parametrize("browser", sorted(EXPECTED))
def test_bookmark_files_of_each_browser_import_with_folders_as_tags(any_app, browser):
    _, (ann,) = _setup(any_app, "ann")
    content = (FIXTURES / f"{browser}.html").read_bytes()
    response = ann.upload("/bookmarks/import", content, f"{browser}.html")
    assert response.status_code == 201, response.get_json()
    assert response.get_json() == EXPECTED[browser]["report"]
    saved = {b["url"]: b for b in ann.call("GET", "/bookmarks?limit=200").get_json()}
    assert set(saved) == set(EXPECTED[browser]["bookmarks"])
    for url, (title, tags, added, description) in EXPECTED[browser]["bookmarks"].items():
        bookmark = saved[url]
        assert bookmark["title"] == title
        assert sorted((t["name"] for t in bookmark["tags"]), key=str.casefold) == tags
        assert bookmark["description"] == description
        assert bookmark["fetch_status"] == "skipped"  # no network storm after an import
        row = Bookmark.get_by_id(bookmark["id"])
        if added is not None:
            assert row.created_at == added
    again = ann.upload("/bookmarks/import", content, f"{browser}.html").get_json()
    report = EXPECTED[browser]["report"]
    assert again == {"imported": {"bookmarks": 0}, "total": report["total"],
                     "duplicates": report["total"] - report["invalid"],
                     "invalid": report["invalid"]}


def test_urls_already_saved_are_skipped(app):
    _, (ann,) = _setup(app, "ann")
    ann.call("POST", "/bookmarks", {"url": "https://www.python.org"}, 201)
    report = ann.upload("/bookmarks/import", (FIXTURES / "chrome.html").read_bytes(),
                        "b.html").get_json()
    assert report["imported"] == {"bookmarks": 3}
    assert report["duplicates"] == 2


BAD_BOOKMARK_FILES = {
    "an image": PNG,
    "json": b'{"roots": {"bookmark_bar": {"children": []}}}',
    "a web page": b"<html><body><p>Hello <a href='https://example.com'>there</a></p></body>",
    "empty": b"",
    "blank": b"   \n\t ",
}


@pytest.mark.parametrize("kind", sorted(BAD_BOOKMARK_FILES))
def test_a_file_that_is_not_a_bookmark_file_is_400_and_imports_nothing(app, kind):
    _, (ann,) = _setup(app, "ann")
    response = ann.upload("/bookmarks/import", BAD_BOOKMARK_FILES[kind], "bookmarks.html")
    assert response.status_code == 400
    assert "bookmark" in response.get_json()["error"]
    assert Bookmark.select().count() == 0
    assert Tag.select().count() == 0


def test_a_failure_midway_leaves_no_bookmark_behind(app, monkeypatch):
    _, (ann,) = _setup(app, "ann")
    from trackeep_desktop import items

    real = items.create_bookmark
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the disk is full")
        return real(*args, **kwargs)

    monkeypatch.setattr(items, "create_bookmark", failing)
    response = ann.upload("/bookmarks/import", (FIXTURES / "chrome.html").read_bytes(),
                          "b.html")
    assert response.status_code == 500
    assert Bookmark.select().count() == 0
    assert Tag.select().count() == 0


def test_exported_bookmarks_import_back_the_same(app):
    _, (ann, bob) = _setup(app, "ann", "bob")
    ann.upload("/bookmarks/import", (FIXTURES / "firefox.html").read_bytes(), "f.html")
    ann.call("POST", "/bookmarks", {"url": "https://example.com/q?a=1&b=<2>",
                                    "title": 'Quotes "and" <tags>',
                                    "description": "line one\nline two"}, 201)
    exported = ann.call("GET", "/bookmarks/export", expect=200)
    assert exported.mimetype == "text/html"
    assert exported.data.startswith(b"<!DOCTYPE NETSCAPE-Bookmark-file-1>")
    assert bob.upload("/bookmarks/import", exported.data, "e.html").status_code == 201

    def shown(user):
        return sorted((b["url"], b["title"], b["description"],
                       sorted(t["name"] for t in b["tags"]), int(Bookmark.get_by_id(
                           b["id"]).created_at))
                      for b in user.call("GET", "/bookmarks").get_json())

    assert shown(bob) == shown(ann)


def test_the_bookmark_export_streams_every_bookmark_once_across_batches(app, monkeypatch):
    """Keyset batches on (created_at, id): ties in created_at across a batch boundary are
    neither lost nor repeated, and the body is sent as a stream of batches."""
    monkeypatch.setattr(transfer.netscape, "EXPORT_BATCH", 7)
    _, (ann, bob) = _setup(app, "ann", "bob")
    lines = ["<!DOCTYPE NETSCAPE-Bookmark-file-1>", "<DL><p>"]
    lines += [f'<DT><A HREF="https://example.com/{n}" ADD_DATE="{1600000000 + n // 5}" '
              f'TAGS="t{n % 3}">Page {n}</A>' for n in range(50)]
    body = "\n".join([*lines, "</DL>"]).encode()
    assert ann.upload("/bookmarks/import", body, "big.html").status_code == 201
    bob.call("POST", "/bookmarks", {"url": "https://example.com/bob-only"}, 201)
    response = ann.call("GET", "/bookmarks/export", expect=200)
    assert response.is_streamed
    text = response.get_data(as_text=True)
    hrefs = [line.split('"')[1] for line in text.splitlines() if "<DT><A HREF" in line]
    assert sorted(hrefs) == sorted(f"https://example.com/{n}" for n in range(50))
    assert len(hrefs) == len(set(hrefs)) == 50
    assert 'TAGS="t1"' in text
    assert text.rstrip().endswith("</DL><p>")
    pieces = list(transfer.export_bookmarks(ann.id))
    assert len(pieces) == 2 + -(-50 // 7)  # the head, one piece per batch, the tail


def test_import_progress_reaches_the_users_event_channel(app):
    _, (ann,) = _setup(app, "ann")
    lines = ["<!DOCTYPE NETSCAPE-Bookmark-file-1>", "<DL><p>"]
    lines += [f'<DT><A HREF="https://example.com/{n}" ADD_DATE="1600000000">Page {n}</A>'
              for n in range(1000)]
    pubsub = app.extensions["trackeep"].capabilities.pubsub
    messages = []
    finished = threading.Event()

    def collect(channel, message):
        if message["type"] == "import":
            messages.append(message)
            if message["action"] == "finished":
                finished.set()

    subscription = pubsub.subscribe(events.channel_for(ann.id), collect)
    try:
        body = "\n".join([*lines, "</DL>"]).encode()
        assert ann.upload("/bookmarks/import", body, "big.html").status_code == 201
        assert finished.wait(5)
    finally:
        subscription.unsubscribe()
    progress = [m["item"] for m in messages if m["action"] == "progress"]
    assert progress[-1] == {"stage": "saving", "done": 1000, "total": 1000}
    assert any(p["stage"] == "checking" for p in progress)
    assert messages[-1]["item"]["imported"] == {"bookmarks": 1000}


def test_bookmark_parser_tolerates_odd_but_real_markup():
    html = ("<!DOCTYPE NETSCAPE-Bookmark-file-1>\r\n<dl><p><dt><h3>Café &amp; co</h3>"
            "<dl><p><dt><a href='https://example.com/x' add_date='1600000000000'>X"
            "<dt><a href=\"https://example.com/y\">Y</a><dd>About Y</dl></dl>")
    parsed = transfer.parse_netscape(io.BytesIO(html.encode("utf-8")))
    assert [(b.url, b.title, b.tags, b.add_date, b.description) for b in parsed.bookmarks] == [
        ("https://example.com/x", "X", ["Café & co"], 1600000000.0, ""),
        ("https://example.com/y", "Y", ["Café & co"], None, "About Y"),
    ]
    latin1 = ('<!DOCTYPE NETSCAPE-Bookmark-file-1><META CONTENT="text/html; '
              'charset=windows-1252"><DL><DT><A HREF="https://example.com/">Caf\xe9</A></DL>')
    parsed = transfer.parse_netscape(io.BytesIO(latin1.encode("cp1252")))
    assert parsed.bookmarks[0].title == "Café"


# ------------------------------------------------------------------------------------ CLI


@pytest.mark.slow
def test_cli_imports_a_bookmark_file_and_an_archive(make_app, tmp_path, database_url, capsys):
    app = make_app(**GENEROUS_LIMITS)
    _, (ann, _bob) = _setup(app, "ann", "bob")
    fill_account(ann)
    archive = tmp_path / "backup.zip"
    archive.write_bytes(ann.export())
    app.extensions["trackeep"].close()
    common = ["--data-dir", app.config["DATA_DIR"], "--database-url", database_url,
              "--log-level", "WARNING"]

    assert cli.main(["import", str(FIXTURES / "chrome.html"), "--user", "bob", *common]) == 0
    out, err = capsys.readouterr()
    assert "imported: 4 bookmarks" in out
    assert "1 already saved" in out
    assert "saving: 4/4" in err
    assert Bookmark.select().join(User).where(User.username == "bob").count() == 4

    bob_tags = Tag.select().join(User).where(User.username == "bob")
    assert cli.main(["import", str(archive), "--user", "bob", *common]) == 1
    assert "empty account" in capsys.readouterr().err
    assert bob_tags.count() == 2  # nothing more

    actions = AuthActions(make_app(**GENEROUS_LIMITS))
    actions.create_user(actions.token("owner", OWNER["password"]), "carol")
    assert cli.main(["import", str(archive), "--user", "carol@example.com", *common]) == 0
    out, err = capsys.readouterr()
    assert "imported: 3 tags, 2 bookmarks, 4 tasks, 2 notes, 4 files" in out
    assert "files: 3/3" in err
    carol = User.get(User.username == "carol")
    assert File.select().where(File.user == carol.id).count() == 4

    assert cli.main(["import", str(archive), "--user", "nobody", *common]) == 1
    assert "no account" in capsys.readouterr().err
    assert cli.main(["import", str(tmp_path / "missing.html"), "--user", "bob", *common]) == 2

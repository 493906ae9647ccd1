"""Backups that restore: an online snapshot during a write burst, restored into a fresh
data folder (and, on PostgreSQL, the test database after its schema is reset); damaged
archives refused with the target untouched; a non-empty target refused without --force;
retention; the API and page for admins."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
from pathlib import Path

import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions, bearer

from trackeep_desktop import backup, cli
from trackeep_desktop.storage.models import Bookmark, File

QUIET = {**GENEROUS_LIMITS, "FETCH_METADATA": False}


def upload(client, token: str, content: bytes, name: str) -> dict:
    response = client.post("/api/v1/files/upload", headers=bearer(token),
                           data={"file": (io.BytesIO(content), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def is_postgres(url: str) -> bool:
    return url.startswith("postgres")


def make_backup(app, dest: Path, **kwargs) -> backup.BackupInfo:
    state = app.extensions["trackeep"]
    return backup.create_backup(database_url=state.config["DATABASE_URL"],
                                data_dir=state.config["DATA_DIR"], dest_dir=dest,
                                version=state.version, **kwargs)


def restore_target(request, tmp_path: Path, database_url: str) -> tuple[Path, str]:
    """A fresh data folder and, for SQLite, a database in it; on PostgreSQL this worker's
    other test database, its schema reset to empty."""
    data = tmp_path / "restored"
    if is_postgres(database_url):
        return data, request.getfixturevalue("empty_database_url")
    return data, f"sqlite:///{data / 'trackeep.db'}"


@pytest.fixture
def owner_app(make_app):
    app = make_app(**QUIET)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    return app, actions, token


def test_backup_during_a_write_burst_restores_every_acknowledged_row(
        request, owner_app, make_app, tmp_path, database_url):
    app, actions, token = owner_app
    contents = [f"file {n} ".encode() * (n * 500 + 1) for n in range(5)]
    uploaded = [upload(actions.client, token, c, f"f{n}.txt") for n, c in enumerate(contents)]
    for n in range(20):
        assert actions.api("POST", "/bookmarks", token,
                           json={"url": f"https://before.example/{n}", "title": f"b{n}"}
                           ).status_code == 201

    acknowledged: list[tuple[float, int]] = []
    stop = threading.Event()
    failures: list[int] = []

    def writer():
        client = app.test_client()
        deadline = time.monotonic() + 20
        n = 0
        while not stop.is_set() and time.monotonic() < deadline and n < 5000:
            response = client.post("/api/v1/bookmarks", headers=bearer(token),
                                   json={"url": f"https://burst.example/{n}", "title": "x"})
            if response.status_code == 201:
                acknowledged.append((time.monotonic(), response.get_json()["id"]))
            else:
                failures.append(response.status_code)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(acknowledged) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        info = make_backup(app, tmp_path / "backups")
        time.sleep(0.2)  # writes go on after the snapshot
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert failures == []
    before = {i for at, i in acknowledged if at < info.snapshot_started}
    assert len(before) >= 30
    assert info.path.name.startswith("trackeep-backup-")
    assert info.path.suffix == ".tar"

    with tarfile.open(info.path) as tar:
        assert tar.getnames()[0] == "manifest.json"
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["database"] == ("postgresql" if is_postgres(database_url) else "sqlite")
    assert "m0004_files" in manifest["migrations"]
    assert manifest["counts"]["file"] == 5
    assert manifest["counts"]["bookmark"] >= 20 + len(before)
    assert all(len(m["sha256"]) == 64 for m in manifest["members"].values())

    app.extensions["trackeep"].close()
    data_dir, url = restore_target(request, tmp_path, database_url)
    assert cli.main(["restore", str(info.path), "--data-dir", str(data_dir),
                     "--database-url", url]) == 0

    restored = make_app(DATA_DIR=str(data_dir), DATABASE_URL=url, **QUIET)
    with restored.app_context():
        ids = {b.id for b in Bookmark.select(Bookmark.id)}
        assert before <= ids
        assert {f"https://before.example/{n}" for n in range(20)} <= {
            b.url for b in Bookmark.select(Bookmark.url)}
        assert File.select().count() == 5
    again = AuthActions(restored)
    new_token = again.token(OWNER["username"], OWNER["password"])
    sample = sorted(before)[:: max(1, len(before) // 10)]
    for bookmark_id in sample:
        assert again.api("GET", f"/bookmarks/{bookmark_id}", new_token).status_code == 200
    for item, content in zip(uploaded, contents, strict=True):
        download = again.api("GET", f"/files/{item['id']}/download", new_token)
        assert download.status_code == 200
        assert hashlib.sha256(download.data).hexdigest() == hashlib.sha256(content).hexdigest()
    # the secret key came along, so the old credentials still sign in
    assert again.api("GET", "/bookmarks", token).status_code == 200


@pytest.fixture
def small_backup(owner_app, tmp_path):
    app, actions, token = owner_app
    upload(actions.client, token, b"hello backup " * 100, "hello.txt")
    actions.api("POST", "/bookmarks", token, json={"url": "https://a.example/", "title": "a"})
    return make_backup(app, tmp_path / "backups")


def _flip_byte(path: Path, member: str) -> Path:
    with tarfile.open(path) as tar:
        offset = tar.getmember(member).offset_data
    data = bytearray(path.read_bytes())
    data[offset + 10] ^= 0xFF
    damaged = path.with_name("flipped.tar")
    damaged.write_bytes(bytes(data))
    return damaged


def _truncate(path: Path) -> Path:
    damaged = path.with_name("truncated.tar")
    damaged.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    return damaged


@pytest.mark.parametrize("damage", ["flip-db", "flip-file", "truncate"])
def test_a_damaged_archive_is_refused_and_the_target_left_untouched(
        small_backup, tmp_path, capsys, damage):
    path = small_backup.path
    with tarfile.open(path) as tar:
        names = tar.getnames()
    if damage == "truncate":
        damaged = _truncate(path)
    else:
        member = next(n for n in names if n.startswith(
            "database/" if damage == "flip-db" else "files/"))
        damaged = _flip_byte(path, member)
    target = tmp_path / "target"
    url = f"sqlite:///{target / 'trackeep.db'}"

    with pytest.raises(backup.CorruptArchive) as refused:
        backup.verify_archive(damaged)
    message = str(refused.value)
    assert "damaged" in message or "truncated" in message or "incomplete" in message

    assert cli.main(["restore", str(damaged), "--data-dir", str(target),
                     "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert "Nothing was restored" in err
    assert not target.exists()
    assert list(tmp_path.glob(".target-restore-*")) == []


def test_a_non_empty_target_is_refused_without_force(small_backup, tmp_path, capsys,
                                                     database_url):
    target = tmp_path / "target"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    # PostgreSQL: the test database itself, which the backed-up app still uses (--force
    # replaces its tables in one transaction)
    url = database_url if is_postgres(database_url) else f"sqlite:///{target / 'trackeep.db'}"
    assert cli.main(["restore", str(small_backup.path), "--data-dir", str(target),
                     "--database-url", url]) == 1
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]

    assert cli.main(["restore", str(small_backup.path), "--data-dir", str(target),
                     "--database-url", url, "--force"]) == 0
    assert is_postgres(database_url) or (target / "trackeep.db").is_file()
    assert (target / "notes.txt").read_text() == "mine"  # what the backup lacks stays
    blobs = [p for p in (target / "files").rglob("*") if p.is_file()]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in blobs] == [
        p.name for p in blobs]
    assert len(blobs) == 1


def test_a_non_empty_database_is_refused_without_force(small_backup, tmp_path, database_url):
    """The source database itself is not empty: refused, then replaced with --force."""
    data = tmp_path / "other"
    with pytest.raises(backup.TargetNotEmpty):
        backup.restore_backup(small_backup.path, data_dir=data, database_url=database_url)
    assert not data.exists()


def test_retention_keeps_the_newest(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    for day in range(1, 11):
        (folder / f"trackeep-backup-202601{day:02d}-030000.tar").write_bytes(b"x")
    (folder / "unrelated.tar").write_bytes(b"x")
    removed = backup.prune_backups(folder, keep=7)
    assert len(removed) == 3
    left = sorted(p.name for p in folder.iterdir())
    assert left[0] == "trackeep-backup-20260104-030000.tar"
    assert "unrelated.tar" in left
    assert len(left) == 8


def test_the_schedule_is_daily_on_the_desktop_and_off_for_serve(tmp_path):
    from trackeep_desktop.config import load_config

    base = {"DATA_DIR": str(tmp_path)}
    assert backup.interval_hours(load_config(base, environ={})) == 0
    assert backup.interval_hours(load_config({**base, "DESKTOP_MODE": True}, environ={})) == 24
    assert backup.interval_hours(load_config(
        {**base, "DESKTOP_MODE": True}, environ={"TRACKEEP_BACKUP_INTERVAL_HOURS": "0"})) == 0
    config = load_config(base, environ={"TRACKEEP_BACKUP_INTERVAL_HOURS": "6"})
    assert backup.interval_hours(config) == 6
    assert backup.backup_dir(config) == tmp_path.resolve() / "backups"
    assert config["BACKUP_KEEP"] == 7


def test_scheduled_backups_run_on_the_periodic_runner_and_prune(make_app, tmp_path):
    app = make_app(BACKUP_INTERVAL_HOURS=0.5 / 3600, BACKUP_KEEP=2,
                   BACKUP_DIR=str(tmp_path / "sched"))
    AuthActions(app).register_owner()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        made = backup.list_backups(tmp_path / "sched")
        if app.extensions["trackeep"].backups.last is not None and len(made) == 2:
            break
        time.sleep(0.1)
    time.sleep(2.5)  # more runs; retention keeps two
    app.extensions["trackeep"].backups.wait()
    assert len(backup.list_backups(tmp_path / "sched")) == 2


def test_the_api_backs_up_now_with_progress_for_admins_only(owner_app, tmp_path):
    _app, actions, token = owner_app
    upload(actions.client, token, b"some bytes", "a.bin")
    user = actions.create_user(token, "someone")
    user_token = actions.token("someone")
    assert actions.api("GET", "/backups", user_token).status_code == 403
    assert actions.api("POST", "/backups", user_token).status_code == 403

    started = actions.api("POST", "/backups", token)
    assert started.status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listing = actions.api("GET", "/backups", token).get_json()
        if not listing["status"]["running"]:
            break
        time.sleep(0.05)
    assert listing["status"]["error"] is None
    assert listing["status"]["last"]["name"] == listing["backups"][0]["name"]
    assert listing["backups"][0]["size"] > 0
    name = listing["backups"][0]["name"]
    download = actions.api("GET", f"/backups/{name}", token)
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    saved = tmp_path / name
    saved.write_bytes(download.data)
    assert backup.verify_archive(saved)["counts"]["users"] == 2
    assert actions.api("GET", f"/backups/{name}", user_token).status_code == 403
    assert actions.api("GET", "/backups/../secret_key", token).status_code == 404
    assert user["username"] == "someone"


def test_the_backups_page_is_for_admins(owner_app):
    _app, actions, _token = owner_app
    browser = actions.browser()
    AuthActions.web_login(browser, OWNER["username"], OWNER["password"])
    page = browser.get("/settings/backups")
    assert page.status_code == 200
    assert b"Back up now" in page.data
    assert b"js/pages/backups.js" in page.data
    assert b"/settings/backups" in browser.get("/settings/data").data


def test_a_file_purged_between_the_snapshot_and_the_copy_means_a_new_snapshot(
        owner_app, tmp_path):
    app, actions, token = owner_app
    kept = upload(actions.client, token, b"kept " * 300, "kept.txt")
    gone = upload(actions.client, token, b"purged " * 300, "gone.txt")
    assert actions.api("DELETE", f"/files/{gone['id']}", token).status_code in (200, 204)
    snapshots = []

    def progress(stage, done, total):
        if stage == "database" and done == 1:
            snapshots.append(time.monotonic())
            if len(snapshots) == 1:  # after the first snapshot, before any blob is copied
                purged = actions.api("DELETE", f"/trash/file/{gone['id']}", token)
                assert purged.status_code in (200, 204)
                assert not (Path(app.config["DATA_DIR"]) / "files" / gone["sha256"][:2]
                            / gone["sha256"][2:4] / gone["sha256"]).exists()

    info = make_backup(app, tmp_path / "backups", progress=progress)
    assert len(snapshots) == 2
    manifest = backup.verify_archive(info.path)
    blobs = [name.rsplit("/", 1)[1] for name in manifest["members"] if name.startswith("files/")]
    assert blobs == [kept["sha256"]]
    assert list((tmp_path / "backups").iterdir()) == [info.path]  # no partial left behind


def test_time_entries_come_back_from_a_backup(request, owner_app, make_app, tmp_path,
                                              database_url):
    """The backup is a snapshot of every table: time entries (with their tags, their task
    and a timer still running) restore as they were, and the timer runs on."""
    app, actions, token = owner_app
    task = actions.api("POST", "/tasks", token, json={"title": "Invoice"}).get_json()["id"]
    done = actions.api("POST", "/time-entries", token, json={
        "start_time": "2026-03-28T21:00:00Z", "end_time": "2026-03-29T02:00:00Z",
        "task_id": task, "tags": ["client"], "billable": True, "hourly_rate": 80,
        "description": "Across the DST night"}).get_json()["time_entry"]
    running = actions.api("POST", "/time-entries", token, json={
        "description": "Still going"}).get_json()["time_entry"]
    info = make_backup(app, tmp_path / "backups")
    with tarfile.open(info.path) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["counts"]["time_entry"] == 2
    assert "m0012_time_entries" in manifest["migrations"]

    app.extensions["trackeep"].close()
    data_dir, url = restore_target(request, tmp_path, database_url)
    assert cli.main(["restore", str(info.path), "--data-dir", str(data_dir),
                     "--database-url", url]) == 0
    restored = AuthActions(make_app(DATA_DIR=str(data_dir), DATABASE_URL=url, **QUIET))
    again = restored.token(OWNER["username"], OWNER["password"])
    back = restored.api("GET", f"/time-entries/{done['id']}", again).get_json()["time_entry"]
    for field in ("start_time", "end_time", "duration", "task_id", "tags", "billable",
                  "hourly_rate", "amount", "description"):
        assert back[field] == done[field], field
    assert back["amount"] == 400.0
    still = restored.api("GET", "/time-entries/running", again).get_json()["time_entry"]
    assert still["id"] == running["id"]
    assert still["is_running"] is True
    report = restored.api("GET", "/time-entries/report?start_date=2026-03-28"
                          "&end_date=2026-03-29", again).get_json()
    assert report["total_seconds"] == 5 * 3600

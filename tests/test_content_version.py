"""The per-user content version: every committed write bumps it, once per user and
transaction, inside that transaction; cached searches are keyed by it, so a write made by any
process on the same database (``trackeep import`` beside a server without Redis, a second
server) makes the other processes' cached answers unreachable."""

from __future__ import annotations

import time

import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions

from trackeep_desktop import cli, items, search
from trackeep_desktop.capabilities.cache import MemoryCache
from trackeep_desktop.realtime.pipeline import build_pipeline
from trackeep_desktop.search import cache as search_cache
from trackeep_desktop.storage import changes, versions
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import User

BOOKMARK_FILE = """<!DOCTYPE NETSCAPE-Bookmark-file-1>
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
<TITLE>Bookmarks</TITLE>
<DL><p>
    <DT><A HREF="https://aurora.example/forecast" ADD_DATE="1600000000">Aurora forecast</A>
</DL><p>
"""


def _searcher(actions: AuthActions, token: str):
    def search_titles(q: str) -> tuple[bool, list[str]]:
        body = actions.api("GET", f"/search?q={q}", token).get_json()
        return body["cached"], sorted(r["title"] for r in body["results"])
    return search_titles


# ------------------------------------------------------------- across processes, no Redis


def test_a_write_by_another_server_on_the_database_makes_cached_searches_stale(make_app):
    """Two embedded servers on one database, each with its own in-memory cache: nothing but
    the database tells the reader of the writer's writes."""
    reader = AuthActions(make_app(**GENEROUS_LIMITS))
    token, _ = reader.register_owner()
    writer = AuthActions(make_app(**GENEROUS_LIMITS))
    writer_token = writer.token(OWNER["username"], OWNER["password"])
    reader_titles = _searcher(reader, token)

    note = writer.api("POST", "/notes", writer_token, json={"title": "Comet tail"}).get_json()
    assert reader_titles("comet") == (False, ["Comet tail"])
    assert reader_titles("comet") == (True, ["Comet tail"])
    writer.api("POST", "/notes", writer_token, json={"title": "Comet head"})
    assert reader_titles("comet") == (False, ["Comet head", "Comet tail"])
    assert reader_titles("comet")[0] is True
    assert writer.api("DELETE", f"/notes/{note['id']}", writer_token).status_code == 200
    assert reader_titles("comet") == (False, ["Comet head"])
    writer.api("POST", f"/trash/note/{note['id']}/restore", writer_token)
    assert reader_titles("comet") == (False, ["Comet head", "Comet tail"])


def test_trackeep_import_beside_a_running_server_makes_its_cached_searches_stale(
        make_app, tmp_path, database_url):
    """The issue's case: ``trackeep import`` (its own application, its own in-memory cache)
    writes while a server without Redis has the answer cached."""
    app = make_app(**GENEROUS_LIMITS)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    server_titles = _searcher(actions, token)
    actions.api("POST", "/notes", token, json={"title": "Aurora notes"})
    assert server_titles("aurora") == (False, ["Aurora notes"])
    assert server_titles("aurora") == (True, ["Aurora notes"])

    bookmarks = tmp_path / "bookmarks.html"
    bookmarks.write_text(BOOKMARK_FILE)
    assert cli.main(["import", str(bookmarks), "--user", OWNER["username"],
                     "--data-dir", str(tmp_path / "cli-data"), "--database-url", database_url,
                     "--log-level", "WARNING"]) == 0
    assert server_titles("aurora") == (False, ["Aurora forecast", "Aurora notes"])
    assert server_titles("aurora")[0] is True


# ------------------------------------------------------------------------- the version itself


@pytest.fixture
def user(database):
    """A user, with the change pipeline active around the test (as a request has it)."""
    now = time.time()
    with changes.use_pipeline(build_pipeline()):
        yield User.create(email="a@example.com", username="a", password_hash="x",
                          created_at=now, updated_at=now)


def _make_user(name: str) -> User:
    now = time.time()
    return User.create(email=f"{name}@example.com", username=name, password_hash="x",
                       created_at=now, updated_at=now)


def version(user_id: int) -> int:
    return versions.content_version(user_id)[0]


class Boom(Exception):
    pass


def fails_in_a_transaction(write) -> None:
    """``write()`` in a transaction (a savepoint if one is open) that then rolls back."""
    with database.atomic():
        write()
        raise Boom


def test_each_committed_write_bumps_the_version_once_and_a_rolled_back_one_not_at_all(user):
    now = time.time()
    assert version(user.id) == 0
    note = items.create_note(user.id, {"title": "Kayak", "tags": ["river", "sea"]}, now=now)
    assert version(user.id) == 1  # a note and two new tags: one transaction, one bump
    items.update_note(user.id, note.id, {"content": "paddles"}, now=now + 1)
    assert version(user.id) == 2

    with database.atomic():
        for i in range(20):
            items.create_task(user.id, {"title": f"Task {i}"}, now=now)
        items.move_to_trash(user.id, "note", note.id, now=now + 2)
        assert version(user.id) == 2  # bumped right before the commit, not before
    assert version(user.id) == 3

    with pytest.raises(Boom):
        fails_in_a_transaction(lambda: items.create_note(user.id, {"title": "Never"}, now=now))
    assert version(user.id) == 3
    assert search.search(user.id, "never")["total"] == 0

    # A savepoint rolled back inside a transaction that commits: its change was heard, so
    # the transaction bumps (one bump too many costs a cache miss, never a stale answer).
    with database.atomic(), pytest.raises(Boom):
        fails_in_a_transaction(lambda: items.create_note(user.id, {"title": "Gone"}, now=now))
    assert version(user.id) == 4
    assert search.search(user.id, "gone")["total"] == 0
    items.restore_from_trash(user.id, "note", note.id, now=now + 3)
    assert version(user.id) == 5


def test_a_transaction_bumps_each_of_its_users_once(user):
    other = _make_user("b")
    quiet = _make_user("c")
    with database.atomic():
        for owner in (other, user, other, user):
            items.create_note(owner.id, {"title": "Shared word"}, now=time.time())
    assert (version(user.id), version(other.id), version(quiet.id)) == (1, 1, 0)


def test_a_change_outside_a_transaction_bumps_at_once(user):
    changes.record_change(user.id, "search", "rebuilt", event=False)
    assert version(user.id) == 1
    search.rebuild_index()  # tells of every user with documents: none yet
    assert version(user.id) == 1
    items.create_note(user.id, {"title": "Indexed"}, now=time.time())
    search.rebuild_index()
    assert version(user.id) == 3


def test_a_failing_bump_fails_the_write_with_it(user, monkeypatch):
    def broken(user_ids):
        raise Boom("the version could not be bumped")

    monkeypatch.setattr(versions, "bump_content_versions", broken)
    with pytest.raises(Boom):
        items.create_note(user.id, {"title": "Half written"}, now=time.time())
    monkeypatch.undo()
    assert search.search(user.id, "half")["total"] == 0
    assert version(user.id) == 0


def test_before_commit_runs_inside_the_transaction_and_a_rollback_drops_it(database):
    ran = []
    database.before_commit(lambda: ran.append("at once"))
    with database.atomic():
        database.after_commit(lambda: ran.append("after"))
        database.before_commit(lambda: ran.append("before"))
        with database.atomic():  # a savepoint's release is not the commit
            database.before_commit(lambda: ran.append("nested"))
        assert ran == ["at once"]
    assert ran == ["at once", "before", "nested", "after"]
    with pytest.raises(Boom):
        fails_in_a_transaction(lambda: database.before_commit(lambda: ran.append("dropped")))
    with database.atomic():
        pass
    assert ran == ["at once", "before", "nested", "after"]
    assert database.pending_before_commit() == []


def test_saving_a_loaded_user_never_writes_its_version_back(user):
    loaded = User.get_by_id(user.id)
    items.create_note(user.id, {"title": "Bump"}, now=time.time())
    loaded.theme = "dark"
    loaded.save()
    assert version(user.id) == 1
    assert User.get_by_id(user.id).theme == "dark"


def test_a_cache_key_changes_with_the_version_and_with_the_account(user):
    cache = MemoryCache()
    query = search.parse_query("word")

    def key() -> str:
        return search_cache.cache_key(cache, user.id, query, (), 20, 0)

    first = key()
    assert key() == first
    assert first.startswith(f"search:{user.id}:0:0:")
    items.create_note(user.id, {"title": "Word"}, now=time.time())
    assert key().startswith(f"search:{user.id}:0:1:")
    # Another account given the same id later (SQLite reuses the highest id) at the same
    # version: a different key all the same.
    database.execute_sql(f"UPDATE users SET created_at = created_at + 1, content_version = 0 "
                         f"WHERE id = {database.param}", (user.id,))
    assert key().startswith(f"search:{user.id}:0:0:")
    assert key() != first


def test_the_migration_gives_existing_accounts_version_zero(empty_database_url, monkeypatch):
    from trackeep_desktop.storage import db as dbmod
    from trackeep_desktop.storage import migrations

    db = dbmod.open_database(empty_database_url)
    try:
        everything = migrations.available()
        before = everything.index("m0008_content_version")  # later migrations may follow
        monkeypatch.setattr(migrations, "available", lambda: everything[:before])
        migrations.upgrade(db)
        db.execute_sql("INSERT INTO users (email, username, full_name, password_hash, role, "
                       "is_active, theme, timezone, created_at, updated_at) VALUES "
                       f"('old@example.com', 'old', '', 'x', 'user', {db.param}, 'system', "
                       "'UTC', 1.0, 1.0)", (True,))
        monkeypatch.undo()
        assert migrations.upgrade(db) == everything[before:]
        assert db.execute_sql("SELECT content_version FROM users").fetchall() == [(0,)]
        db.execute_sql("UPDATE users SET content_version = content_version + 1")
        assert db.execute_sql("SELECT content_version FROM users").fetchall() == [(1,)]
    finally:
        db.close()
        if hasattr(db, "close_all"):
            db.close_all()

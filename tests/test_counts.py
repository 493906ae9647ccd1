"""The kept counts (``item_count``, ``items.counts``): after any sequence of writes they equal
a full recount of the rows, on SQLite and PostgreSQL; concurrent writers on PostgreSQL lose no
increment; ``trackeep stats rebuild`` repairs them; m0009 counts an upgraded database."""

from __future__ import annotations

import contextlib
import io
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackeep_desktop import errors, files, items
from trackeep_desktop.items import counts
from trackeep_desktop.realtime.pipeline import build_pipeline
from trackeep_desktop.storage import changes
from trackeep_desktop.storage.db import connection
from trackeep_desktop.storage.migrations import m0009_read_paths
from trackeep_desktop.storage.models import Bookmark, File, ItemCount, Note, Tag, Task, User
from trackeep_desktop.transfer.netscape import import_bookmarks

MODELS = {"bookmark": Bookmark, "task": Task, "note": Note, "file": File}
TAG_NAMES = ["red", "Green", "blue", "x y"]


def make_user(name: str) -> User:
    now = time.time()
    return User.create(email=f"{name}@example.com", username=name, password_hash="x",
                       created_at=now, updated_at=now)


@pytest.fixture
def world(database, tmp_path):
    """Two users, a blob store and the pipeline active (as in a request)."""
    store = files.BlobStore(tmp_path / "files")
    with changes.use_pipeline(build_pipeline(store=store)):
        yield [make_user("ann").id, make_user("bob").id], store


def pick(model, user_id: int, index: int, *, trashed: bool = False):
    """The user's live (or trashed) row number ``index`` (modulo their count), or None."""
    query = model.select().where(model.user == user_id)
    query = query.where(model.deleted_at.is_null(not trashed))
    rows = list(query.order_by(model.id))
    return rows[index % len(rows)] if rows else None


def pick_tag(user_id: int, index: int) -> Tag | None:
    tags = list(Tag.select().where(Tag.user == user_id).order_by(Tag.id))
    return tags[index % len(tags)] if tags else None


class Writer:
    """Applies one drawn operation through the domain, as the API would."""

    def __init__(self, store: files.BlobStore):
        self.store = store
        self.serial = 0
        self.now = 1_700_000_000.0

    def bookmark_file(self, tags: list[str]) -> bytes:
        self.serial += 1
        return ("<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n"
                f'<DT><A HREF="https://import.example/{self.serial}" TAGS="{",".join(tags)}">'
                f"one</A>\n"
                f'<DT><A HREF="https://import.example/{self.serial}/2">two</A>\n'
                "</DL><p>\n").encode()

    def __call__(self, op: str, user_id: int, index: int, other: int, tags: list[str],
                 flag: bool, status: str) -> None:
        self.serial += 1
        self.now += 1
        now = self.now
        kind = list(MODELS)[other % 4]
        if op == "bookmark":
            items.create_bookmark(user_id, {"url": f"https://e.example/{self.serial}",
                                            "is_read": flag, "tags": tags}, now=now)
        elif op == "task":
            parent = pick(Task, user_id, other) if flag else None
            items.create_task(user_id, {"title": "t", "status": status, "tags": tags,
                                        "parent_id": parent.id if parent else None}, now=now)
        elif op == "note":
            items.create_note(user_id, {"title": "n", "is_pinned": flag, "tags": tags}, now=now)
        elif op == "file":
            spool = self.store.spool()
            spool.write(f"content {self.serial % 3}".encode())
            files.create_file(user_id, spool, name="f.txt", now=now, store=self.store,
                              tags=tags)
        elif op == "update":
            item = pick(MODELS[kind], user_id, index)
            if item is None:
                return
            if kind == "bookmark":
                items.update_bookmark(user_id, item.id, {"is_read": flag, "tags": tags},
                                      now=now)
            elif kind == "task":
                items.update_task(user_id, item.id, {"status": status, "tags": tags}, now=now)
            elif kind == "note":
                items.update_note(user_id, item.id, {"is_pinned": flag, "tags": tags},
                                  now=now)
            else:
                files.update_file(user_id, item.id, {"tags": tags}, now=now)
        elif op == "trash":
            item = pick(MODELS[kind], user_id, index)
            if item is not None:
                items.move_to_trash(user_id, kind, item.id, now=now)
        elif op in ("restore", "purge"):
            item = pick(MODELS[kind], user_id, index, trashed=True)
            if item is None:
                return
            if op == "restore":
                items.restore_from_trash(user_id, kind, item.id, now=now)
            else:
                items.purge(user_id, kind, item.id)
        elif op == "empty":
            items.empty_trash(user_id)
        elif op == "expire":
            items.purge_expired(now, 3 if flag else 1000, user_id=user_id if flag else None)
        elif op == "tag":
            items.create_tag(user_id, {"name": tags[0] if tags else f"t{index}"}, now=now)
        elif op in ("rename", "delete tag", "merge"):
            tag = pick_tag(user_id, index)
            if tag is None:
                return
            if op == "rename":
                items.update_tag(user_id, tag.id, {"name": f"r{other}"}, now=now)
            elif op == "delete tag":
                items.delete_tag(user_id, tag.id)
            else:
                into = pick_tag(user_id, other)
                items.merge_tags(user_id, tag.id, into.id if into else 0, now=now)
        elif op == "import":
            import_bookmarks(user_id, io.BytesIO(self.bookmark_file(tags)), now=now)


OPERATIONS = st.lists(st.tuples(
    st.sampled_from(["bookmark", "task", "note", "file", "update", "update", "trash",
                     "trash", "restore", "purge", "empty", "expire", "tag", "rename",
                     "delete tag", "merge", "import"]),
    st.integers(0, 1),  # which user
    st.integers(0, 40), st.integers(0, 40),
    st.lists(st.sampled_from(TAG_NAMES), max_size=3, unique=True),
    st.booleans(),
    st.sampled_from(items.TASK_STATUSES),
), max_size=30)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(OPERATIONS)
def test_the_kept_counts_equal_a_recount_after_any_writes(world, operations):
    users, store = world
    write = Writer(store)
    for op, who, index, other, tags, flag, status in operations:
        # A refusal (a subtask's parent in the trash, a name taken...) counts nothing.
        with contextlib.suppress(errors.DomainError):
            write(op, users[who], index, other, tags, flag, status)
        assert counts.stored() == counts.recount(), (op, who, index, other, tags, flag, status)


def test_the_dashboard_and_the_tags_read_the_kept_counts(world):
    (ann, bob), _ = world
    now = time.time()
    items.create_bookmark(ann, {"url": "https://a.example", "tags": ["x"]}, now=now)
    read = items.create_bookmark(ann, {"url": "https://b.example", "is_read": True,
                                       "tags": ["x", "y"]}, now=now)
    items.create_note(ann, {"title": "n", "is_pinned": True, "tags": ["y"]}, now=now)
    task = items.create_task(ann, {"title": "t", "status": "completed"}, now=now)
    items.move_to_trash(ann, "task", task.id, now=now)
    items.create_bookmark(bob, {"url": "https://a.example", "tags": ["x"]}, now=now)
    stats = items.dashboard_stats(ann)
    assert (stats["totalBookmarks"], stats["unreadBookmarks"], stats["pinnedNotes"],
            stats["totalTasks"], stats["trashCount"], stats["totalTags"]) == (2, 1, 1, 0, 1, 2)
    assert stats["tasksByStatus"] == dict.fromkeys(items.TASK_STATUSES, 0)
    by_name = {t["name"]: t for t in items.tags_json(ann)}
    assert by_name["x"]["counts"] == {"bookmark": 2, "task": 0, "note": 0, "file": 0}
    assert by_name["y"]["count"] == 2
    items.move_to_trash(ann, "bookmark", read.id, now=now)
    assert {t["name"]: t["count"] for t in items.tags_json(ann)} == {"x": 1, "y": 1}
    assert items.dashboard_stats(ann)["trashCount"] == 2
    assert {t["name"]: t["count"] for t in items.tags_json(bob)} == {"x": 1}


def test_a_full_export_imported_into_an_empty_account_is_counted(world, tmp_path):
    from trackeep_desktop.transfer.export import build_manifest, iter_export
    from trackeep_desktop.transfer.importer import import_archive

    (ann, _), store = world
    write = Writer(store)
    for op, kind_index in (("bookmark", 0), ("task", 1), ("note", 2), ("file", 3),
                           ("trash", 0), ("trash", 2)):
        write(op, ann, 0, kind_index, ["red", "blue"], True, "pending")
    write("tag", ann, 0, 0, ["lonely"], True, "pending")
    archive = tmp_path / "export.zip"
    with archive.open("wb") as out:
        for chunk in iter_export(build_manifest(User.get_by_id(ann), now=time.time()), store):
            out.write(chunk)
    carl = make_user("carl").id
    import_archive(carl, archive, store=store)
    assert counts.stored(carl) == counts.recount(carl)
    def nonzero(kept: dict[str, int]) -> dict[str, int]:
        return {name: n for name, n in kept.items() if n}

    assert nonzero(counts.user_counts(carl)) == nonzero(counts.user_counts(ann))
    assert ({t["name"]: t["counts"] for t in items.tags_json(carl)}
            == {t["name"]: t["counts"] for t in items.tags_json(ann)})


def test_a_failed_write_counts_nothing(world):
    (ann, _), _ = world
    hooks = changes.active_pipeline().in_transaction

    def refuse(change):
        raise RuntimeError("index unavailable")

    hooks.append(refuse)
    try:
        with pytest.raises(RuntimeError):
            items.create_bookmark(ann, {"url": "https://never.example", "tags": ["x"]},
                                  now=1.0)
    finally:
        hooks.remove(refuse)
    assert counts.stored(ann) == counts.recount(ann) == {}


def test_rebuild_repairs_counts_and_the_migration_counts_the_rows(world):
    (ann, bob), store = world
    write = Writer(store)
    for op in ("bookmark", "task", "note", "file", "trash"):
        for user_id in (ann, bob):
            write(op, user_id, 0, 1, ["red"], False, "in_progress")
    write("tag", ann, 0, 0, ["lonely"], False, "pending")
    expected = counts.recount()
    ItemCount.update(n=ItemCount.n + 5).execute()
    ItemCount.delete().where(ItemCount.name == "bookmark").execute()
    assert counts.stored() != expected
    assert items.rebuild_counts(ann) > 0
    assert counts.stored(ann) == counts.recount(ann)
    assert counts.stored(bob) != counts.recount(bob)  # only the one user was rebuilt
    items.rebuild_counts()
    assert counts.stored() == expected
    ItemCount.delete().execute()
    from trackeep_desktop.storage.db import database

    m0009_read_paths._count(database.obj)  # the migration's frozen count of existing rows
    assert counts.stored() == expected


def test_trackeep_stats_rebuild(make_app, database_url, capsys):
    from auth_actions import GENEROUS_LIMITS, AuthActions

    from trackeep_desktop import cli

    app = make_app(FETCH_METADATA=False, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    for n in range(3):
        actions.api("POST", "/bookmarks", token, json={"url": f"https://e.example/{n}",
                                                       "tags": ["t"]})
    with connection(app.extensions["trackeep"].db):
        expected = counts.stored()
        ItemCount.delete().execute()
    assert cli.main(["stats", "rebuild", "--database-url", database_url,
                     "--data-dir", app.config["DATA_DIR"]]) == 0
    # bookmark, bookmark:unread, tags, and the tag's bookmarks
    assert "rebuilt 4 count(s)" in capsys.readouterr().out
    with connection(app.extensions["trackeep"].db):
        assert counts.stored() == expected
    assert actions.api("GET", "/dashboard/stats", token).get_json()["totalBookmarks"] == 3


def test_concurrent_writers_lose_no_increment(world):
    """Eight threads, each on its own connection, save tagged bookmarks, trash and restore
    them and retag them at once: the counts are a recount's, and no writer failed (a lost
    increment or a deadlock would show). On PostgreSQL they run truly at once; SQLite
    serializes them (every transaction begins IMMEDIATE)."""
    (ann, _), _ = world
    db = User._meta.database.obj
    pipeline = changes.active_pipeline()
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            with connection(db), changes.use_pipeline(pipeline):
                barrier.wait()
                for n in range(12):
                    bookmark = items.create_bookmark(
                        ann, {"url": f"https://w{worker}.example/{n}",
                              "tags": ["shared", f"w{worker % 2}"]}, now=float(n))
                    if n % 3 == 0:
                        items.move_to_trash(ann, "bookmark", bookmark.id, now=float(n))
                    if n % 6 == 0:
                        items.restore_from_trash(ann, "bookmark", bookmark.id, now=float(n))
                    if n % 3 == 1:
                        items.update_bookmark(ann, bookmark.id, {"is_read": True,
                                                                 "tags": ["shared"]},
                                              now=float(n))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert counts.stored() == counts.recount()
    kept = counts.user_counts(ann)
    assert kept["bookmark"] + kept["bookmark:trash"] == 96
    shared = Tag.get(Tag.name == "shared").id
    assert counts.tag_counts(ann)[shared]["bookmark"] == kept["bookmark"]

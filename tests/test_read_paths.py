"""The read paths are O(page): every offered sort of every list is read in order from an
index of the user's live rows (SQLite as the program runs it, without statistics; PostgreSQL
with sequential scans and sorts priced out), a page's subtasks and tags come from their
indexes, and the trash is one ordered UNION ALL with offset and keyset paging."""

from __future__ import annotations

import base64

import pytest

from trackeep_desktop import items
from trackeep_desktop.items.lists import order_by
from trackeep_desktop.storage.db import is_postgres
from trackeep_desktop.storage.models import Bookmark, File, ItemTag, Note, Tag, Task, User

#: Sorts no index serves (a bookmark's url can be 4,096 characters: see m0009).
UNINDEXED = {("bookmark", "url")}


def varied(model, i: int) -> dict:
    """Values spread as a real list's are (few ties but in the few-valued keys)."""
    moment = 1_700_000_000.0 + (i * 7919) % 4000 if i % 3 else None
    if model is Bookmark:
        return {"title": f"b{(i * 7919) % 1000}", "read_at": moment}
    if model is Task:
        return {"title": f"t{(i * 7919) % 1000}", "due_date": moment, "completed_at": moment,
                "progress": i % 101, "priority": items.TASK_PRIORITIES[i % 4],
                "status": items.TASK_STATUSES[i % 4]}
    if model is Note:
        return {"title": f"n{(i * 7919) % 1000}", "is_pinned": i % 7 == 0}
    return {"name": f"f{(i * 7919) % 1000}", "size": i}


@pytest.fixture
def seeded(database):
    """Two users with 2,000 items of each type and some tags, analyzed on PostgreSQL (as
    autovacuum would); SQLite plans without statistics, as the program runs it."""
    now = 1_700_000_000.0
    users = [User.create(email=f"u{n}@example.com", username=f"u{n}", password_hash="x",
                         created_at=now, updated_at=now).id for n in (1, 2)]
    common = {"created_at": now, "updated_at": now}
    with database.atomic():
        for model, extra in ((Bookmark, {"url": "https://e.example/", "url_hash": "0" * 64}),
                             (Task, {}), (Note, {}),
                             (File, {"mime_type": "text/plain", "kind": "other",
                                     "sha256": "0" * 64})):
            for start in range(0, 4000, 500):
                model.insert_many([
                    {**common, **extra, **varied(model, i), "user": users[i % 2],
                     "created_at": now + i, "updated_at": now + i % 997,
                     "deleted_at": now if i % 20 == 0 else None}
                    for i in range(start, start + 500)]).execute()
        mine = [t.id for t in Task.select(Task.id).where(Task.user == users[0]).order_by(Task.id)]
        Task.update(parent=mine[0]).where(Task.id.in_(mine[1::10])).execute()
        tag = Tag.create(user=users[0], name="t", name_key="t", color="#000000", **common)
        ItemTag.insert_many([{"tag": tag.id, "item_type": "bookmark", "item_id": i}
                             for i in range(1, 4000, 3)]).execute()
    if is_postgres(database):
        database.execute_sql("ANALYZE")
    return database


def plan(db, sql: str, params: list, *, seqscan: bool = True) -> str:
    """The query plan as one text: SQLite's EXPLAIN QUERY PLAN or PostgreSQL's EXPLAIN
    (``seqscan=False``: with sequential scans priced out, for tables too small to need an
    index)."""
    if is_postgres(db):
        with db.atomic():
            if not seqscan:
                db.execute_sql("SET LOCAL enable_seqscan = off")
            rows = db.execute_sql("EXPLAIN " + sql.replace("?", "%s"), params).fetchall()
        return "\n".join(row[0] for row in rows)
    return "\n".join(row[-1] for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql,
                                                       params).fetchall())


def sorted_by_index(text: str, table: str) -> bool:
    """The plan reads ``table`` through one of its live indexes and sorts at most ties."""
    if f"{table}_live_" not in text:
        return False
    if "USE TEMP B-TREE FOR ORDER BY" in text:  # SQLite sorting everything (RIGHT PART: ties)
        return False
    lines = [line.strip() for line in text.splitlines()]
    return not any(line.startswith(("Sort  (", "->  Sort  (")) for line in lines)  # PostgreSQL


@pytest.mark.parametrize("item_type", ["bookmark", "task", "note"])
def test_every_offered_sort_reads_a_live_index_in_order(seeded, item_type):
    database = seeded
    for key in items.SORTS[item_type]:
        if (item_type, key) in UNINDEXED:
            continue
        for sort in (key, f"-{key}"):
            sql = (f"SELECT id FROM {item_type} WHERE user_id = ? AND deleted_at IS NULL "
                   f"ORDER BY {order_by(item_type, sort)} LIMIT 50")
            text = plan(database, sql, [1])
            assert sorted_by_index(text, item_type), (sort, text)
    default = (f"SELECT id FROM {item_type} WHERE user_id = ? AND deleted_at IS NULL "
               f"ORDER BY {order_by(item_type, None)} LIMIT 50")
    text = plan(database, default, [1])
    assert sorted_by_index(text, item_type), text
    assert "RIGHT PART" not in text, text  # the default order is the index's: no ties sorted
    assert "Incremental" not in text, text


def test_subtasks_and_tags_of_a_page_use_their_indexes(seeded):
    database = seeded
    ids = list(range(1, 51, 5))
    marks = ", ".join(["?"] * len(ids))
    text = plan(database, f"SELECT id FROM task WHERE parent_id IN ({marks}) AND +user_id = ? "
                "AND deleted_at IS NULL ORDER BY created_at, id", [*ids, 1])
    assert "task_parent_id" in text, text
    text = plan(database, "SELECT it.item_id, t.id FROM item_tag it JOIN tag t "
                f"ON t.id = it.tag_id WHERE it.item_type = ? AND it.item_id IN ({marks}) "
                "AND t.user_id = ? ORDER BY t.name_key", ["bookmark", *ids, 1], seqscan=False)
    assert "item_tag_item_type_item_id_tag_id" in text, text


# ----------------------------------------------------------------------------------- trash


@pytest.fixture
def trashed(database, tmp_path):
    """A user whose trash has 40 entries of four types, many deleted at the same moment."""
    from trackeep_desktop import files
    from trackeep_desktop.realtime.pipeline import build_pipeline
    from trackeep_desktop.storage import changes

    store = files.BlobStore(tmp_path / "files")
    now = 1_700_000_000.0
    user = User.create(email="t@example.com", username="t", password_hash="x",
                       created_at=now, updated_at=now)
    with changes.use_pipeline(build_pipeline(store=store)):
        for n in range(40):
            kind = ("bookmark", "task", "note", "file")[n % 4]
            if kind == "bookmark":
                item = items.create_bookmark(user.id, {"url": f"https://e.example/{n}",
                                                       "tags": ["t"]}, now=now)
            elif kind == "task":
                item = items.create_task(user.id, {"title": f"t{n}"}, now=now)
            elif kind == "note":
                item = items.create_note(user.id, {"title": f"n{n}"}, now=now)
            else:
                spool = store.spool()
                spool.write(b"x")
                item = files.create_file(user.id, spool, name=f"f{n}.txt", now=now,
                                         store=store)
            items.move_to_trash(user.id, kind, item.id, now=now + n // 6)  # ties of 6
        yield user.id


def walk(user_id: int, limit: int, *, by_cursor: bool, item_type: str | None = None) -> list:
    seen, offset, cursor = [], 0, None
    while True:
        page = items.trash_page(user_id, limit=limit, offset=0 if by_cursor else offset,
                                cursor=cursor, item_type=item_type)
        seen += [(kind, item_id) for kind, item_id, _ in page.entries]
        assert len(page.entries) <= limit
        if by_cursor:
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor
        else:
            if not page.entries:
                return seen
            offset += limit


def test_the_trash_pages_in_its_order_by_offset_and_by_cursor(trashed):
    expected = [(e.item_type, e.item.id) for e in items.list_trash(trashed)]  # the old sort
    assert len(expected) == 40
    for limit in (1, 3, 7, 40, 200):
        assert walk(trashed, limit, by_cursor=False) == expected, limit
        assert walk(trashed, limit, by_cursor=True) == expected, limit
    for kind in ("bookmark", "task", "note", "file"):
        wanted = [entry for entry in expected if entry[0] == kind]
        assert walk(trashed, 4, by_cursor=True, item_type=kind) == wanted
        assert items.trash_page(trashed, limit=4, item_type=kind).total == 10
    assert items.trash_page(trashed, limit=5).total == 40
    assert items.trash_page(trashed, limit=5, item_type="nothing").entries == []


def test_the_trash_reads_each_type_from_its_index(seeded):
    sql_params = []
    for name in ("bookmark", "file", "note", "task"):
        sql_params.append(f"SELECT 0 AS kind, id, deleted_at FROM {name} "
                          "WHERE user_id = ? AND deleted_at IS NOT NULL")
    text = plan(seeded, " UNION ALL ".join(sql_params)
                + " ORDER BY deleted_at DESC, kind, id DESC LIMIT 50", [1, 1, 1, 1])
    for name in ("bookmark", "file", "note", "task"):
        assert f"{name}_trash" in text, text


def test_the_trash_api_offers_a_cursor_beside_offsets(make_app):
    from auth_actions import GENEROUS_LIMITS, AuthActions

    app = make_app(FETCH_METADATA=False, **GENEROUS_LIMITS)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    for n in range(5):
        note = actions.api("POST", "/notes", token, json={"title": f"n{n}"}).get_json()
        actions.api("DELETE", f"/notes/{note['id']}", token)
    first = actions.api("GET", "/trash?limit=2", token)
    cursor = first.headers["X-Next-Cursor"]
    by_offset = actions.api("GET", "/trash?limit=2&offset=2", token)
    by_cursor = actions.api("GET", f"/trash?limit=2&cursor={cursor}", token)
    assert by_cursor.get_data() == by_offset.get_data()
    assert by_cursor.headers["X-Total-Count"] == "5"
    assert by_cursor.headers["X-Next-Cursor"] == by_offset.headers["X-Next-Cursor"]
    links = by_cursor.headers["Link"]
    assert 'rel="first"' in links
    assert f"cursor={by_cursor.headers['X-Next-Cursor']}" in links
    assert 'rel="prev"' not in links
    last = actions.api("GET", f"/trash?limit=2&cursor={by_cursor.headers['X-Next-Cursor']}",
                       token)
    assert len(last.get_json()) == 1
    assert "X-Next-Cursor" not in last.headers
    huge = base64.urlsafe_b64encode(b"1.0:0:99999999999999999999").decode()
    for bad in ("x", "bm90OmEmYg", "MTow", "bmFuOjA6MQ", huge):  # not base64, 2 parts, nan
        answer = actions.api("GET", f"/trash?cursor={bad}", token)
        assert answer.status_code == 400, bad
        assert answer.get_json()["field"] == "cursor"
    both = actions.api("GET", f"/trash?cursor={cursor}&offset=2", token)
    assert both.status_code == 400
    assert both.get_json()["field"] == "offset"

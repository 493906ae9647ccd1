"""Counts kept as the rows change: the dashboard's figures, each tag's items, the lists' totals.

Counting a user's rows on each request costs O(items): at 100,000 items the dashboard took
175 ms and the tag list 100 ms. Instead the ``item_count`` table (migration m0009) holds the
counts, and every write that changes what is counted changes them in its own transaction,
so they commit and roll back with the rows they count:

* ``tag_id`` 0, the user's own counters: ``bookmark``, ``task``, ``note``, ``file`` (live
  items of each type), ``<type>:trash``, ``bookmark:unread``, ``note:pinned`` and
  ``task:<status>`` (of live items) and ``tags``;
* ``tag_id`` of a tag, ``name`` an item type: the live items of that type carrying the tag.

How the writes report (the domain functions of :mod:`.bookmarks`, :mod:`.tasks`,
:mod:`.notes`, :mod:`.trash` and :mod:`.tags`, the files' records and the imports):

* a new item: :func:`added`; its tags are counted by ``set_tags`` (tag links of live items);
* any change of an item: :func:`snapshot` before it, :func:`changed` after: the counters of
  its old state go down and those of its new one up, and when it moves to or from the trash
  so do the counts of its tags;
* a purge: :func:`removed`, before the row and its links go;
* tags: :func:`linked` for links added to or removed from a live item, :func:`tag_created`
  and :func:`tag_deleted`.

A write's changes are summed while it runs (:func:`batch`; every ``write_transaction`` opens
one) and written when it ends in one statement: ``INSERT ... ON CONFLICT DO UPDATE SET n =
item_count.n + excluded.n``, an increment in the database and never a read-modify-write, so
concurrent writers on PostgreSQL lose none; its rows go in key order, so two writers never
wait on each other's rows in opposite orders. :func:`rebuild` recounts from the rows
(``trackeep stats rebuild``), and :func:`recount` is the same count read without writing it
(the tests compare it with :func:`stored`). On PostgreSQL the rebuild locks ``item_count``
against writers first (``EXCLUSIVE``: reads go on): a write that committed before it is in
the recount, one still running adds its changes after it, none is counted twice.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from trackeep_desktop.storage.db import database, is_postgres

from .rows import sql as _sql
from .types import _TYPES, TASK_STATUSES

#: Counters of a live item besides its type's total: type -> [(name, SQL condition, test)].
ATTRIBUTES: dict[str, list[tuple[str, str, Any]]] = {
    "bookmark": [("bookmark:unread", "NOT is_read", lambda item: not item.is_read)],
    "note": [("note:pinned", "is_pinned", lambda item: bool(item.is_pinned))],
    "task": [(f"task:{status}", f"status = '{status}'",
              lambda item, status=status: item.status == status) for status in TASK_STATUSES],
}

#: A user's own counters have this ``tag_id``.
USER = 0

#: (user_id, tag_id, name) -> change
Deltas = Counter[tuple[int, int, str]]

#: The running batches, outermost first.
_batches: contextvars.ContextVar[tuple[Deltas, ...]] = contextvars.ContextVar(
    "trackeep_count_batches", default=())


# ------------------------------------------------------------------------------------ writing


def _write(deltas: Mapping[tuple[int, int, str], int]) -> None:
    """Add the non-zero changes to their rows, in key order (see the module)."""
    rows = sorted((key, n) for key, n in deltas.items() if n)
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        database.execute_sql(
            _sql("INSERT INTO item_count (user_id, tag_id, name, n) VALUES "
                 + ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                 + " ON CONFLICT (user_id, tag_id, name) DO UPDATE SET n = item_count.n + "
                 "excluded.n"),
            [value for (user_id, tag_id, name), n in chunk
             for value in (user_id, tag_id, name, n)])


def adjust(deltas: Mapping[tuple[int, int, str], int]) -> None:
    """Change counters by ``{(user_id, tag_id, name): n}``: in the running :func:`batch`, or
    now when there is none."""
    running = _batches.get()
    if running:
        running[-1].update(deltas)
    else:
        _write(deltas)


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Sum the count changes made inside and write them at the end (inside the caller's
    transaction). A nested batch hands its sum to the outer one; one left by an exception
    drops its own (as its savepoint rolls back)."""
    outer = _batches.get()
    pending: Deltas = Counter()
    token = _batches.set((*outer, pending))
    try:
        yield
    finally:
        _batches.reset(token)
    if outer:
        outer[-1].update(pending)
    else:
        _write(pending)


def counters_of(item_type: str, item: Any) -> list[str]:
    """The user counters an item adds one to, by its state."""
    if item.deleted_at is not None:
        return [f"{item_type}:trash"]
    return [item_type, *(name for name, _, test in ATTRIBUTES.get(item_type, ()) if test(item))]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What an item counted for before a change (see :func:`changed`)."""

    counters: tuple[str, ...]
    live: bool


def snapshot(item_type: str, item: Any) -> Snapshot:
    """Take before changing an item."""
    return Snapshot(tuple(counters_of(item_type, item)), item.deleted_at is None)


def _tag_ids(item_type: str, item_id: int) -> list[int]:
    cursor = database.execute_sql(
        _sql("SELECT tag_id FROM item_tag WHERE item_type = ? AND item_id = ?"),
        (item_type, item_id))
    return [row[0] for row in cursor.fetchall()]


def added(user_id: int, item_type: str, item: Any) -> None:
    """A new item (its tag links are counted as they are made, by :func:`linked`)."""
    if item_type in _TYPES:
        adjust({(user_id, USER, name): 1 for name in counters_of(item_type, item)})


def changed(user_id: int, item_type: str, before: Snapshot, item: Any) -> None:
    """An item changed since ``before``: its counters move, and its tags' counts follow it
    into or out of the trash."""
    if item_type not in _TYPES:
        return
    deltas: Deltas = Counter()
    deltas.subtract({(user_id, USER, name): 1 for name in before.counters})
    deltas.update({(user_id, USER, name): 1 for name in counters_of(item_type, item)})
    live = item.deleted_at is None
    if live != before.live:
        sign = 1 if live else -1
        deltas.update({(user_id, tag_id, item_type): sign
                       for tag_id in _tag_ids(item_type, item.id)})
    adjust(deltas)


def removed(user_id: int, item_type: str, item: Any) -> None:
    """An item about to be deleted for good, links and all (call before they go)."""
    if item_type not in _TYPES:
        return
    deltas: Deltas = Counter({(user_id, USER, name): -1
                              for name in counters_of(item_type, item)})
    if item.deleted_at is None:
        deltas.update({(user_id, tag_id, item_type): -1
                       for tag_id in _tag_ids(item_type, item.id)})
    adjust(deltas)


def linked(user_id: int, item_type: str, live: bool, added_tags: Iterable[int],
           removed_tags: Iterable[int] = ()) -> None:
    """Tag links added to and removed from live items (or, with ``live`` false, items in the
    trash: not counted); a tag id once per link."""
    if not live or item_type not in _TYPES:
        return
    deltas: Deltas = Counter((user_id, tag_id, item_type) for tag_id in added_tags)
    deltas.subtract((user_id, tag_id, item_type) for tag_id in removed_tags)
    adjust(deltas)


def tag_created(user_id: int, n: int = 1) -> None:
    """``n`` new tags."""
    adjust({(user_id, USER, "tags"): n})


def tag_deleted(user_id: int, tag_id: int) -> None:
    """A tag is gone (call after its row is deleted: on PostgreSQL that delete waits for any
    writer still linking to it, whose count this one then sees and drops)."""
    for pending in _batches.get():  # what this write counted for it goes with it
        for key in [key for key in pending if key[:2] == (user_id, tag_id)]:
            del pending[key]
    adjust({(user_id, USER, "tags"): -1})
    database.execute_sql(_sql("DELETE FROM item_count WHERE user_id = ? AND tag_id = ?"),
                         (user_id, tag_id))


# ------------------------------------------------------------------------------------ reading


def user_counts(user_id: int) -> dict[str, int]:
    """The user's own counters (absent ones are 0)."""
    cursor = database.execute_sql(
        _sql("SELECT name, n FROM item_count WHERE user_id = ? AND tag_id = 0"), (user_id,))
    return dict(cursor.fetchall())


def tag_counts(user_id: int, tag_ids: Iterable[int] | None = None) -> dict[int, dict[str, int]]:
    """``{tag_id: {item_type: n}}`` for the user's tags (or only these), types with a count."""
    sql = "SELECT tag_id, name, n FROM item_count WHERE user_id = ? AND tag_id > 0"
    params: list[Any] = [user_id]
    if tag_ids is not None:
        ids = list(tag_ids)
        if not ids:
            return {}
        sql += f" AND tag_id IN ({', '.join(['?'] * len(ids))})"
        params += ids
    found: dict[int, dict[str, int]] = {}
    for tag_id, name, n in database.execute_sql(_sql(sql), params).fetchall():
        found.setdefault(tag_id, {})[name] = n
    return found


# -------------------------------------------------------------------------------- recounting


def _count_statements(user_id: int | None) -> list[tuple[str, list]]:
    """SELECTs of ``(user_id, tag_id, name, n)``: every count from the rows."""
    mine = " AND user_id = ?" if user_id is not None else ""
    params = [user_id] if user_id is not None else []
    out: list[tuple[str, list]] = []
    for table in _TYPES:
        out.append((f"SELECT user_id, 0, '{table}', COUNT(*) FROM {table} "
                    f"WHERE deleted_at IS NULL{mine} GROUP BY user_id", params))
        out.append((f"SELECT user_id, 0, '{table}:trash', COUNT(*) FROM {table} "
                    f"WHERE deleted_at IS NOT NULL{mine} GROUP BY user_id", params))
        out.append((f"SELECT t.user_id, it.tag_id, '{table}', COUNT(*) FROM item_tag it "
                    f"JOIN tag t ON t.id = it.tag_id "
                    f"JOIN {table} i ON i.id = it.item_id AND i.user_id = t.user_id "
                    f"WHERE it.item_type = '{table}' AND i.deleted_at IS NULL"
                    + (" AND t.user_id = ?" if user_id is not None else "")
                    + " GROUP BY t.user_id, it.tag_id", params))
        for name, condition, _ in ATTRIBUTES.get(table, ()):
            out.append((f"SELECT user_id, 0, '{name}', COUNT(*) FROM {table} "
                        f"WHERE deleted_at IS NULL AND {condition}{mine} GROUP BY user_id",
                        params))
    out.append((f"SELECT user_id, 0, 'tags', COUNT(*) FROM tag WHERE 1 = 1{mine} "
                "GROUP BY user_id", params))
    return out


def recount(user_id: int | None = None) -> dict[tuple[int, int, str], int]:
    """Every count from the rows (of one user, or of everyone), zeros left out."""
    found: dict[tuple[int, int, str], int] = {}
    for sql, params in _count_statements(user_id):
        for row_user, tag_id, name, n in database.execute_sql(_sql(sql), params).fetchall():
            if n:
                found[(row_user, tag_id, name)] = n
    return found


def stored(user_id: int | None = None) -> dict[tuple[int, int, str], int]:
    """Every count in ``item_count`` (of one user, or of everyone), zeros left out."""
    sql = "SELECT user_id, tag_id, name, n FROM item_count WHERE n <> 0"
    params = []
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    return {(u, t, name): n for u, t, name, n in database.execute_sql(_sql(sql), params)}


def rebuild(user_id: int | None = None) -> int:
    """Recount from the rows and replace ``item_count`` (of one user, or of everyone), in
    the caller's transaction or one of its own; returns how many counters it holds."""
    with database.atomic():
        if is_postgres():  # writers wait until the recount commits (see the module)
            database.execute_sql("LOCK TABLE item_count IN EXCLUSIVE MODE")
        if user_id is None:
            database.execute_sql("DELETE FROM item_count")
        else:
            database.execute_sql(_sql("DELETE FROM item_count WHERE user_id = ?"), (user_id,))
        for sql, params in _count_statements(user_id):
            database.execute_sql(
                _sql(f"INSERT INTO item_count (user_id, tag_id, name, n) {sql}"), params)
        where = " WHERE user_id = ?" if user_id is not None else ""
        return database.execute_sql(_sql(f"SELECT COUNT(*) FROM item_count{where}"),
                                    [user_id] if user_id is not None else []).fetchone()[0]

"""Read paths (issue 17): an index for every list's sort, the trash's index, and the counts.

**Indexes.** Each item table had one index for its lists, ``(user_id, deleted_at,
created_at)``. SQLite took its two equality terms (``user_id = ? AND deleted_at IS NULL``)
for a selective start and used it where it serves nothing (a page of tasks' subtasks scanned
all the user's tasks instead of the ``parent_id`` index). It goes, and in its place come
partial indexes over the user's live rows (``WHERE deleted_at IS NULL``), one per sort the
lists offer, each ending in the tie-breaker ``id``, so a page is read in order from the
index and the scan stops at the page's end (O(page), not O(items)):

* descending sorts (``-created_at``, the default) read ``(user_id, key, id)`` backwards;
  ascending ones read it forwards and sort only the ties, since lists break ties by ``id``
  descending either way;
* keys with few distinct values (a task's priority and status, a note's pinned flag) and the
  nullable keys (``read_at``, ``due_date``, ``completed_at``: empty ones last either way, as
  ``(key IS NULL), key``) have one index per direction, with ``id DESC`` written in: there a
  tie is a large part of the list;
* notes' default ``-pinned,-updated_at`` has ``(user_id, is_pinned, updated_at, id)``; every
  type's ``(user_id, updated_at, id)`` also gives the dashboard its recent activity;
* the expressions are the lists' own (``lower(title)``; the priority and status ranks as
  ``CASE ... END`` with literal values, which a query only matches when it writes them
  inline): a query whose expression differs by a bound parameter does not use the index;
* no index on a bookmark's ``url`` (up to 4,096 characters: PostgreSQL's btree entries stop
  at about 2,700 bytes, so such an index would refuse long URLs): ``sort=url`` sorts the
  user's live bookmarks.

The trash gets ``(user_id, deleted_at, id) WHERE deleted_at IS NOT NULL`` per table, which
its listing reads as one ``UNION ALL ... ORDER BY deleted_at DESC`` and the purge of expired
items as a range. ``item_tag (item_type, item_id)`` becomes ``(item_type, item_id, tag_id)``,
so the tags of a page of items are read from the index alone.

**Counts.** ``item_count`` keeps, per user, what the dashboard, the tag list and the lists'
totals show, so that no request counts rows: with ``tag_id`` 0 the user's own counters
(``bookmark``, ``task``, ``note``, ``file``: live items; ``<type>:trash``; ``bookmark:unread``,
``note:pinned``, ``task:<status>`` of live items; ``tags``), and with a tag's id the live
items of each type carrying it (``name`` is the type). The writes keep them in their own
transactions (:mod:`trackeep_desktop.items.counts`); this migration counts them once from the
rows, as ``trackeep stats rebuild`` does.

Numbered 0009: 0008 is another change (the ``content_version`` of users). The runner applies
pending migrations in name order and checks no sequence, and this one neither reads nor
writes what 0008 adds, so either may be applied first.
"""

PRIORITY_RANK = ("CASE priority WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 "
                 "WHEN 'urgent' THEN 3 ELSE 0 END")
STATUS_RANK = ("CASE status WHEN 'pending' THEN 0 WHEN 'in_progress' THEN 1 "
               "WHEN 'completed' THEN 2 WHEN 'cancelled' THEN 3 ELSE 0 END")


def _both(name: str, key: str) -> list[tuple[str, str]]:
    """Two indexes for a key whose ties are large: one per direction."""
    return [(f"{name}_asc", f"{key}, id DESC"), (f"{name}_desc", f"{key} DESC, id DESC")]


def _nullable(name: str, column: str) -> list[tuple[str, str]]:
    """Empty values last in either direction: ``(column IS NULL), column``."""
    return [(f"{name}_asc", f"({column} IS NULL), {column}, id DESC"),
            (f"{name}_desc", f"({column} IS NULL), {column} DESC, id DESC")]


#: table -> [(index suffix, columns after user_id)], over the live rows.
LIVE_INDEXES = {
    "bookmark": [("created", "created_at, id"), ("updated", "updated_at, id"),
                 ("title", "lower(title), id"), *_nullable("read_at", "read_at")],
    "task": [("created", "created_at, id"), ("updated", "updated_at, id"),
             ("title", "lower(title), id"), ("progress", "progress, id"),
             *_both("priority", f"({PRIORITY_RANK})"), *_both("status", f"({STATUS_RANK})"),
             *_nullable("due_date", "due_date"), *_nullable("completed_at", "completed_at")],
    "note": [("created", "created_at, id"), ("updated", "updated_at, id"),
             ("title", "lower(title), id"), ("pinned_updated", "is_pinned, updated_at, id"),
             *_both("pinned", "is_pinned")],
    "file": [("created", "created_at, id"), ("updated", "updated_at, id"),
             ("name", "lower(name), id"), ("size", "size, id")],
}


#: Counters of live items beyond their type's total: (table, name, condition).
ATTRIBUTE_COUNTS = [
    ("bookmark", "bookmark:unread", "NOT is_read"),
    ("note", "note:pinned", "is_pinned"),
    *[("task", f"task:{status}", f"status = '{status}'")
      for status in ("pending", "in_progress", "completed", "cancelled")],
]


def _count(db) -> None:
    """``item_count`` from the rows (what ``trackeep stats rebuild`` does, frozen here)."""
    insert = "INSERT INTO item_count (user_id, tag_id, name, n) "
    for table in LIVE_INDEXES:
        db.execute_sql(f"{insert} SELECT user_id, 0, '{table}', COUNT(*) FROM {table} "
                       "WHERE deleted_at IS NULL GROUP BY user_id")
        db.execute_sql(f"{insert} SELECT user_id, 0, '{table}:trash', COUNT(*) FROM {table} "
                       "WHERE deleted_at IS NOT NULL GROUP BY user_id")
        db.execute_sql(f"{insert} SELECT t.user_id, it.tag_id, '{table}', COUNT(*) "
                       f"FROM item_tag it JOIN tag t ON t.id = it.tag_id "
                       f"JOIN {table} i ON i.id = it.item_id AND i.user_id = t.user_id "
                       f"WHERE it.item_type = '{table}' AND i.deleted_at IS NULL "
                       "GROUP BY t.user_id, it.tag_id")
    for table, name, condition in ATTRIBUTE_COUNTS:
        db.execute_sql(f"{insert} SELECT user_id, 0, '{name}', COUNT(*) FROM {table} "
                       f"WHERE deleted_at IS NULL AND {condition} GROUP BY user_id")
    db.execute_sql(f"{insert} SELECT user_id, 0, 'tags', COUNT(*) FROM tag GROUP BY user_id")


def upgrade(db, migrator):
    db.execute_sql(
        "CREATE TABLE item_count ("
        "user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE, "
        "tag_id INTEGER NOT NULL, "
        "name VARCHAR(64) NOT NULL, "
        "n BIGINT NOT NULL DEFAULT 0, "
        "PRIMARY KEY (user_id, tag_id, name))")
    for table, indexes in LIVE_INDEXES.items():
        db.execute_sql(f"DROP INDEX IF EXISTS {table}_user_id_deleted_at_created_at")
        for suffix, columns in indexes:
            db.execute_sql(f"CREATE INDEX {table}_live_{suffix} ON {table} (user_id, {columns}) "
                           "WHERE deleted_at IS NULL")
        db.execute_sql(f"CREATE INDEX {table}_trash ON {table} (user_id, deleted_at, id) "
                       "WHERE deleted_at IS NOT NULL")
    db.execute_sql("DROP INDEX IF EXISTS itemtag_item_type_item_id")
    db.execute_sql("CREATE INDEX item_tag_item_type_item_id_tag_id "
                   "ON item_tag (item_type, item_id, tag_id)")
    _count(db)

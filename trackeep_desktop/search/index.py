"""Index writes: keeping the search index (SQLite FTS5 or PostgreSQL full text) in step with
every item write, rebuilding it, and making cached results stale."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from typing import Any

import peewee

from trackeep_desktop.storage.changes import Change, record_change
from trackeep_desktop.storage.db import database, is_postgres
from trackeep_desktop.storage.models import Bookmark, File, Note, SearchDocument, Task

from .documents import Document, document_for
from .query import _TOKEN, FILE_TEXT_SEPARATOR, INDEXED_TYPES, PG_CONFIG

log = logging.getLogger(__name__)


_DOC_COLUMNS = ("user_id", "item_type", "item_id", "title", "is_favorite", "is_unread",
                "is_pinned", "status", "created_at", "updated_at", "deleted")

# SQLite: a document's rowid in ``search_fts`` carries what most searches filter on, so that
# FTS5 answers them from its own index without looking each match up (migration m0006):
#
#     rowid = user_id << 40 | search_document.id << 3 | in the trash << 2 | type code
#
# A user's documents are one rowid range, which FTS5 seeks to; the trash bit and the type are
# tested on the rowid; and newer documents have larger rowids, so FTS5's rowid order is
# "most recent first" when read backwards.
_USER_SHIFT = 40
_DOC_SHIFT = 3
_TRASH_BIT = 4
_TYPE_MASK = 3
_DOC_MASK = (1 << (_USER_SHIFT - _DOC_SHIFT)) - 1
_MAX_USER_ID = (1 << (63 - _USER_SHIFT)) - 1
TYPE_CODES = {t: code for code, t in enumerate(INDEXED_TYPES)}
#: The ``search_document`` id of the ``search_fts`` row in a statement.
_DOC_ID_SQL = f"((search_fts.rowid >> {_DOC_SHIFT}) & {_DOC_MASK})"


def fts_rowid(user_id: int, doc_id: int, item_type: str, deleted: bool) -> int:
    """The ``search_fts`` rowid of a document (SQLite)."""
    if not 0 < user_id <= _MAX_USER_ID or not 0 < doc_id <= _DOC_MASK:
        raise ValueError(f"search index: user {user_id} or document {doc_id} out of range")
    return ((user_id << _USER_SHIFT) | (doc_id << _DOC_SHIFT)
            | (_TRASH_BIT if deleted else 0) | TYPE_CODES[item_type])


def user_rowids(user_id: int) -> tuple[int, int]:
    """The first and last ``search_fts`` rowid a user's documents may have (SQLite)."""
    low = user_id << _USER_SHIFT
    return low, low + (1 << _USER_SHIFT) - 1


def _tag_names(item_type: str, item_id: int) -> list[str]:
    cursor = database.execute_sql(
        "SELECT t.name FROM item_tag it JOIN tag t ON t.id = it.tag_id "
        f"WHERE it.item_type = {database.param} AND it.item_id = {database.param} "
        "ORDER BY t.name_key", (item_type, item_id))
    return [row[0] for row in cursor.fetchall()]


def _sqlite_document(item_type: str, item_id: int) -> tuple[int, int] | None:
    """``(document id, search_fts rowid)`` of an indexed item, or None (SQLite)."""
    row = database.execute_sql(
        "SELECT id, user_id, deleted FROM search_document WHERE item_type = ? AND item_id = ?",
        (item_type, item_id)).fetchone()
    if row is None:
        return None
    return row[0], fts_rowid(row[1], row[0], item_type, bool(row[2]))


def _stored_body(item_type: str, item_id: int) -> str | None:
    """A document's indexed body, or None if it is not indexed."""
    if is_postgres():
        row = database.execute_sql(
            "SELECT body FROM search_document WHERE item_type = %s AND item_id = %s",
            (item_type, item_id)).fetchone()
    else:
        found = _sqlite_document(item_type, item_id)
        row = found and database.execute_sql("SELECT body FROM search_fts WHERE rowid = ?",
                                             (found[1],)).fetchone()
    return None if row is None else row[0]


def _pg_words(text: str) -> str:
    """Text as words only, for ``to_tsvector``: PostgreSQL's parser would keep host names,
    URLs and e-mail addresses whole, where FTS5 (and the query parser) split them."""
    return " ".join(_TOKEN.findall(unicodedata.normalize("NFC", text)))


def write_document(doc: Document) -> None:
    """Insert or replace one document (call inside the write's transaction)."""
    values = [getattr(doc, c) for c in _DOC_COLUMNS]
    if is_postgres():
        _write_pg_document(doc, values)
        return
    # SELECT, then INSERT or UPDATE: an upsert with RETURNING costs several times more here.
    found = _sqlite_document(doc.item_type, doc.item_id)
    if found is None:
        doc_id = database.execute_sql(
            f"INSERT INTO search_document ({', '.join(_DOC_COLUMNS)}) "
            f"VALUES ({', '.join(['?'] * len(_DOC_COLUMNS))})", values).lastrowid
    else:
        doc_id, old_rowid = found
        database.execute_sql(
            f"UPDATE search_document SET {', '.join(f'{c} = ?' for c in _DOC_COLUMNS)} "
            "WHERE id = ?", (*values, doc_id))
        database.execute_sql("DELETE FROM search_fts WHERE rowid = ?", (old_rowid,))
    database.execute_sql("INSERT INTO search_fts (rowid, title, body, tags) VALUES (?, ?, ?, ?)",
                         (fts_rowid(doc.user_id, doc_id, doc.item_type, doc.deleted),
                          doc.title, doc.body, doc.tags))


#: Bodies up to this many characters cannot overflow a tsvector (1 MB): a character is at
#: most 4 bytes of UTF-8, and each word of the text costs at most 5 times its bytes in a
#: tsvector (4-byte entry, padding and a 2-byte position for a 1-letter word and its space).
_PG_SAFE_BODY_CHARS = 32_000


def _write_pg_document(doc: Document, values: list) -> None:
    """The PostgreSQL upsert. A tsvector holds at most 1 MB: a body whose words overflow it
    (a large CSV of distinct numbers, say) is indexed by its first half, then quarter...,
    each try in a savepoint so the failed one does not abort the write's transaction (only
    for bodies long enough to overflow: a savepoint costs two more round trips)."""
    config = PG_CONFIG
    sql = (f"INSERT INTO search_document ({', '.join(_DOC_COLUMNS)}, body, tags, tsv) "
           f"VALUES ({', '.join(['%s'] * len(_DOC_COLUMNS))}, %s, %s, "
           f"setweight(to_tsvector('{config}', %s), 'A') || "
           f"setweight(to_tsvector('{config}', %s), 'A') || "
           f"setweight(to_tsvector('{config}', %s), 'B')) "
           "ON CONFLICT (item_type, item_id) DO UPDATE SET "
           + ", ".join(f"{c} = EXCLUDED.{c}" for c in (*_DOC_COLUMNS, "body", "tags", "tsv")))

    def params(body: str) -> tuple:
        return (*values, doc.body, doc.tags, _pg_words(doc.title), _pg_words(doc.tags),
                _pg_words(body))

    body = doc.body
    if len(body) <= _PG_SAFE_BODY_CHARS:
        database.execute_sql(sql, params(body))
        return
    while True:
        try:
            with database.atomic():
                database.execute_sql(sql, params(body))
            return
        except peewee.OperationalError as exc:
            if "too long for tsvector" not in str(exc) or len(body) < 1000:
                raise
            body = body[: len(body) // 2]


def index_item(item_type: str, item: Any, *, store=None) -> None:
    """(Re)index an item from its current row (a file's text is read once, then kept)."""
    body = None
    if item_type == "file":
        stored = _stored_body(item_type, item.id)
        if stored is not None and FILE_TEXT_SEPARATOR in stored:
            body = stored.split(FILE_TEXT_SEPARATOR, 1)[1]
    write_document(document_for(item_type, item, _tag_names(item_type, item.id), body=body,
                                store=store))


def mark_deleted(item_type: str, item: Any) -> None:
    """Flag an item's document as in the trash (its text stays, for a restore). On SQLite
    its ``search_fts`` row moves to the rowid with the trash bit set."""
    found = None if is_postgres() else _sqlite_document(item_type, item.id)
    database.execute_sql(
        f"UPDATE search_document SET deleted = {database.param}, updated_at = {database.param} "
        f"WHERE item_type = {database.param} AND item_id = {database.param}",
        (True, item.updated_at, item_type, item.id))
    if found is not None and not found[1] & _TRASH_BIT:
        database.execute_sql(
            "INSERT INTO search_fts (rowid, title, body, tags) "
            "SELECT ?, title, body, tags FROM search_fts WHERE rowid = ?",
            (found[1] | _TRASH_BIT, found[1]))
        database.execute_sql("DELETE FROM search_fts WHERE rowid = ?", (found[1],))


def remove_item(item_type: str, item_id: int) -> None:
    """Drop an item's document from the index."""
    if not is_postgres():
        found = _sqlite_document(item_type, item_id)
        if found is not None:
            database.execute_sql("DELETE FROM search_fts WHERE rowid = ?", (found[1],))
    database.execute_sql(
        f"DELETE FROM search_document WHERE item_type = {database.param} "
        f"AND item_id = {database.param}", (item_type, item_id))


def index_subscriber(store=None) -> Callable[[Change], None]:
    """The pipeline's in-transaction subscriber that keeps the index in step with each change
    of a bookmark, task, note or file (file text read from ``store``)."""

    def index_change(change: Change) -> None:
        if change.item_type not in INDEXED_TYPES or change.item is None:
            return
        if change.action in ("created", "updated", "restored"):
            index_item(change.item_type, change.item, store=store)
        elif change.action == "deleted":
            mark_deleted(change.item_type, change.item)
        elif change.action == "purged":
            remove_item(change.item_type, change.item.id)

    return index_change


IndexedModel = Bookmark | Task | Note | File

_MODELS: dict[str, type[IndexedModel]] = {
    "bookmark": Bookmark, "task": Task, "note": Note, "file": File}


def rebuild_index(*, store=None, batch: int = 1000,
                  progress: Callable[[int], None] | None = None) -> int:
    """Rebuild the whole index from the item tables (trashed items included, flagged);
    returns how many documents it holds. Runs in one transaction."""
    done = 0
    with database.atomic():
        if not is_postgres():
            database.execute_sql("DELETE FROM search_fts")
        database.execute_sql("DELETE FROM search_document")
        for item_type, model in _MODELS.items():
            last = 0
            while True:
                rows: list[IndexedModel] = list(
                    model.select().where(model.id > last).order_by(model.id).limit(batch))
                if not rows:
                    break
                tags = _tags_by_item(item_type, [r.id for r in rows])
                for row in rows:
                    write_document(document_for(item_type, row, tags.get(row.id, []),
                                                store=store))
                done += len(rows)
                last = rows[-1].id
                if progress is not None:
                    progress(done)
    users = [row[0] for row in database.execute_sql(
        "SELECT DISTINCT user_id FROM search_document").fetchall()]
    for user_id in users:  # their cached answers are stale
        record_change(user_id, "search", "rebuilt", event=False)
    log.info("rebuilt the search index: %d document(s)", done)
    return done


def _tags_by_item(item_type: str, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    if not ids:
        return found
    marks = ", ".join([database.param] * len(ids))
    cursor = database.execute_sql(
        "SELECT it.item_id, t.name FROM item_tag it JOIN tag t ON t.id = it.tag_id "
        f"WHERE it.item_type = {database.param} AND it.item_id IN ({marks}) "
        "ORDER BY t.name_key", (item_type, *ids))
    for item_id, name in cursor.fetchall():
        found.setdefault(item_id, []).append(name)
    return found


def ensure_index(*, store=None) -> int:
    """Build the index if it is empty while items exist (a database upgraded from before
    search); returns how many documents were indexed (0 when nothing was to do)."""
    if SearchDocument.select().exists():
        return 0
    if not any(model.select().exists() for model in _MODELS.values()):
        return 0
    log.info("building the search index for the existing items (once)")
    return rebuild_index(store=store)


def generation_namespace(user_id: int) -> str:
    """The cache namespace whose generation invalidates a user's cached searches."""
    return f"search:{user_id}"

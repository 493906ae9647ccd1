"""Search on SQLite: the FTS5 rowid carries the user, the trash flag and the type.

Until now a row of ``search_fts`` had the rowid of its ``search_document`` row, so every
match was looked up in ``search_document`` to learn whose it was, whether it was in the trash
and its type (about 2.5 µs a match, most of a search's cost beyond FTS5's own). From here on:

    rowid = user_id << 40 | search_document.id << 3 | deleted << 2 | type code

with the type codes bookmark 0, task 1, note 2, file 3. A user's documents are one rowid
range that FTS5 seeks to, and the trash flag and the type are tested on the rowid itself.
This migration rebuilds ``search_fts`` with the new rowids (same columns, tokenizer, prefix
indexes and rank). PostgreSQL keeps its ``tsv`` column and is not touched.
"""

import peewee

ROWID_SQL = ("((d.user_id << 40) | (d.id << 3) | (CASE WHEN d.deleted THEN 4 ELSE 0 END) | "
             "(CASE d.item_type WHEN 'bookmark' THEN 0 WHEN 'task' THEN 1 "
             "WHEN 'note' THEN 2 ELSE 3 END))")


def upgrade(db, migrator):
    if isinstance(db, peewee.PostgresqlDatabase):
        return
    db.execute_sql("CREATE VIRTUAL TABLE search_fts_new USING fts5(title, body, tags, "
                   "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")
    db.execute_sql("INSERT INTO search_fts_new (search_fts_new, rank) "
                   "VALUES ('rank', 'bm25(10.0, 1.0, 5.0)')")
    db.execute_sql(f"INSERT INTO search_fts_new (rowid, title, body, tags) "
                   f"SELECT {ROWID_SQL}, f.title, f.body, f.tags "
                   "FROM search_document d JOIN search_fts f ON f.rowid = d.id")
    db.execute_sql("DROP TABLE search_fts")
    db.execute_sql("ALTER TABLE search_fts_new RENAME TO search_fts")

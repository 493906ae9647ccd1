"""Search: the full-text index over bookmarks, tasks, notes and files, and saved searches.

``search_document`` holds one row per indexed item with the attributes search filters on.
The text lives beside it, by backend:

* SQLite: the FTS5 table ``search_fts`` (columns ``title``, ``body``, ``tags``; rowid =
  ``search_document.id``), diacritics folded (``unicode61 remove_diacritics 2``) with prefix
  indexes for 2 and 3 characters, and ``rank`` set to bm25 with titles boosted.
* PostgreSQL: ``body`` and ``tags`` columns and a ``tsv`` tsvector column with a GIN index,
  built with the text search configuration ``trackeep_search``: a copy of ``simple`` that also
  strips accents when the ``unaccent`` extension can be created, and plain ``simple`` when not.

The index is derived state: ``trackeep search reindex`` rebuilds it from the item tables, and
the application builds it at start-up when it is empty while items exist (an upgraded install).
"""

import peewee


def _create_search_config(db) -> None:
    """``trackeep_search``: ``simple`` + ``unaccent`` if the extension is there or can be made."""
    try:
        with db.atomic():  # a savepoint: a refused CREATE EXTENSION must not end the migration
            db.execute_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
        unaccent = True
    except peewee.DatabaseError:
        unaccent = False
    db.execute_sql("CREATE TEXT SEARCH CONFIGURATION trackeep_search (COPY = pg_catalog.simple)")
    if unaccent:
        db.execute_sql("ALTER TEXT SEARCH CONFIGURATION trackeep_search "
                       "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple")


def upgrade(db, migrator):
    class User(peewee.Model):  # only what the foreign keys need; m0002 created the table
        id = peewee.AutoField()

        class Meta:
            database = db
            table_name = "users"

    class SearchDocument(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        item_type = peewee.CharField(max_length=16)
        item_id = peewee.IntegerField()
        title = peewee.TextField(default="")
        is_favorite = peewee.BooleanField(default=False)
        is_unread = peewee.BooleanField(default=False)
        is_pinned = peewee.BooleanField(default=False)
        status = peewee.CharField(max_length=16, null=True)
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()
        deleted = peewee.BooleanField(default=False)

        class Meta:
            database = db
            table_name = "search_document"
            indexes = (
                (("item_type", "item_id"), True),
                (("user", "deleted", "updated_at"), False),
            )

    class SavedSearch(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        name = peewee.CharField(max_length=100)
        name_key = peewee.CharField(max_length=400)
        query = peewee.TextField()
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()

        class Meta:
            database = db
            table_name = "saved_search"
            indexes = ((("user", "name_key"), True),)

    db.create_tables([SearchDocument, SavedSearch])
    if isinstance(db, peewee.PostgresqlDatabase):
        _create_search_config(db)
        db.execute_sql("ALTER TABLE search_document ADD COLUMN body TEXT NOT NULL DEFAULT '', "
                       "ADD COLUMN tags TEXT NOT NULL DEFAULT '', "
                       "ADD COLUMN tsv tsvector NOT NULL DEFAULT ''::tsvector")
        db.execute_sql("CREATE INDEX search_document_tsv ON search_document USING GIN (tsv)")
    else:
        db.execute_sql("CREATE VIRTUAL TABLE search_fts USING fts5(title, body, tags, "
                       "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")
        # ORDER BY rank: bm25 with titles (and tag names) boosted over the body.
        db.execute_sql("INSERT INTO search_fts (search_fts, rank) "
                       "VALUES ('rank', 'bm25(10.0, 1.0, 5.0)')")

"""A per-user content version: ``users.content_version``, a counter every committed write
bumps for each user whose data it changed, inside its own transaction (``storage.versions``).

Cached answers carry it in their keys, so a write made by any process on the database (the
CLI's ``trackeep import`` beside a server without Redis, a second server) makes every other
process's cached answers unreachable. ``ADD COLUMN ... NOT NULL DEFAULT 0`` on both
databases: SQLite writes no row for it, and PostgreSQL (11 and later) does not rewrite the
table.
"""


def upgrade(db, migrator):
    db.execute_sql("ALTER TABLE users ADD COLUMN content_version BIGINT NOT NULL DEFAULT 0")

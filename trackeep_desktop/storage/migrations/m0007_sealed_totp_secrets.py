"""TOTP secrets are stored sealed (``accounts.sealing``): a Fernet token of about 140
characters where a 32-character base32 secret was, so the columns widen to 255 on
PostgreSQL (SQLite does not enforce the length). The secrets themselves are sealed at the
next start-up, by the app that has the key (``accounts.seal_stored_totp_secrets``): a
migration sees only the database, never the ``SECRET_KEY``."""

import peewee


def upgrade(db, migrator):
    if not isinstance(db, peewee.PostgresqlDatabase):
        return
    for column in ("totp_secret", "totp_pending_secret"):
        db.execute_sql(f"ALTER TABLE users ALTER COLUMN {column} TYPE VARCHAR(255)")

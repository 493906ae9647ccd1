"""Numbered schema migrations and the runner behind ``trackeep db upgrade`` / ``db status``.

Each migration is a module ``mNNNN_name.py`` with ``upgrade(db, migrator)``. A migration
defines the tables it creates itself (frozen copies), never importing the live models, so an
old migration keeps meaning what it meant when it was written. Each runs in one transaction
and is recorded in the ``migration`` table.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
import time

import peewee
from playhouse.migrate import SchemaMigrator

log = logging.getLogger(__name__)


class AppliedMigration(peewee.Model):
    name = peewee.CharField(primary_key=True, max_length=100)
    applied_at = peewee.DoubleField()

    class Meta:
        table_name = "migration"


@dataclasses.dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]


def available() -> list[str]:
    """Every migration module name, in order."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("m")]
    return sorted(names)


def status(db: peewee.Database) -> MigrationStatus:
    """Which migrations this database has, and which it still needs."""
    with AppliedMigration.bind_ctx(db):
        db.create_tables([AppliedMigration], safe=True)
        applied = {row.name for row in AppliedMigration.select()}
    names = available()
    return MigrationStatus(
        applied=[n for n in names if n in applied],
        pending=[n for n in names if n not in applied],
    )


def upgrade(db: peewee.Database) -> list[str]:
    """Apply every pending migration in order; return the names applied."""
    done = []
    for name in status(db).pending:
        module = importlib.import_module(f"{__name__}.{name}")
        migrator = SchemaMigrator.from_database(db)
        with db.atomic(), AppliedMigration.bind_ctx(db):
            module.upgrade(db, migrator)
            AppliedMigration.create(name=name, applied_at=time.time())
        log.info("applied migration %s", name)
        done.append(name)
    return done


MIGRATION_LOCK_ID = 7_146_251_001  # any constant; keeps two instances from migrating at once


def upgrade_safely(db: peewee.Database) -> list[str]:
    """:func:`upgrade`, serialized across processes (an advisory lock on PostgreSQL; SQLite
    serializes writers itself)."""
    if not isinstance(db, peewee.PostgresqlDatabase):
        return upgrade(db)
    with db.connection_context():
        db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            return upgrade(db)
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))

"""The database: one peewee proxy, bound at start-up to SQLite or PostgreSQL by URL.

SQLite gets its pragmas here (WAL, foreign keys, busy timeout) and nowhere else; PostgreSQL
goes through psycopg 3, which yields under gevent where psycopg2 would block the process.
Both have :meth:`~BeforeCommit.before_commit`, the twin of peewee's ``after_commit``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import peewee
from playhouse.pool import PooledPostgresqlDatabase

#: Every model binds to this proxy; :func:`bind_database` points it at a real database.
database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 5000,
    "synchronous": "normal",  # durable with WAL across application crashes; fast commits
    "cache_size": -16 * 1024,  # 16 MiB page cache
}


class ConfigurationError(ValueError):
    """A setting has a value the program cannot use."""


class BeforeCommit(peewee.Database):
    """Mixed into both databases: :meth:`before_commit`, the twin of peewee's ``after_commit``
    (the per-user content versions are bumped there: ``storage.versions``)."""

    def before_commit(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Run ``fn()`` inside this thread's transaction, right before its ``COMMIT`` (at once
        when no transaction is open). A rollback drops it; if it raises, the commit fails and
        the transaction is rolled back (``atomic()`` does that), the error propagating. While
        it runs peewee has already left the transaction (``transaction_depth()`` is 0, though
        ``COMMIT`` is still to come): it may execute statements, not open a transaction."""
        if self.transaction_depth() == 0:
            fn()
        else:
            self._before_commit_callbacks().append(fn)
        return fn

    def pending_before_commit(self) -> list[Callable[[], None]]:
        """The callbacks the open transaction will run before it commits (a copy)."""
        return list(self._before_commit_callbacks())

    def _before_commit_callbacks(self) -> list[Callable[[], None]]:
        # peewee's connection state, per thread (per greenlet under gevent); not in its stubs
        state = self._state  # type: ignore[attr-defined]
        callbacks = getattr(state, "before_commit_callbacks", None)
        if callbacks is None:
            callbacks = state.before_commit_callbacks = []
        return callbacks

    def commit(self) -> None:
        callbacks = self._before_commit_callbacks()
        while callbacks:
            callbacks.pop(0)()
        super().commit()

    def rollback(self) -> None:
        self._before_commit_callbacks().clear()
        super().rollback()


class SqliteDatabase(BeforeCommit, peewee.SqliteDatabase):
    """peewee's SQLite database with :meth:`~BeforeCommit.before_commit`."""


class PostgresqlDatabase(BeforeCommit, PooledPostgresqlDatabase):
    """peewee's pooled PostgreSQL database with :meth:`~BeforeCommit.before_commit`."""


def open_database(url: str) -> peewee.Database:
    """Return an unconnected peewee database for ``url``.

    ``sqlite:///path/to/file.db`` (or ``sqlite:///:memory:``), ``postgresql://user@host/db``
    (``postgres://`` too); query parameters are passed to the driver.
    """
    parsed = urlparse(url)
    params: dict[str, Any] = dict(parse_qsl(parsed.query))  # for the driver, as given
    if parsed.scheme == "sqlite":
        path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
        if not path:
            raise ConfigurationError(f"database URL {url!r} names no file")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Transactions begin IMMEDIATE (the write lock at once): a deferred one that reads
        # and then writes fails straight away with "database is locked" when another
        # connection committed in between (a WAL snapshot cannot be upgraded), while an
        # immediate one waits for the busy timeout.
        return SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=5,
                                     lock_type="IMMEDIATE", **params)
    if parsed.scheme in ("postgres", "postgresql"):
        if not parsed.path.strip("/"):
            raise ConfigurationError(f"database URL {url!r} names no database")
        return PostgresqlDatabase(
            parsed.path.strip("/"),
            user=parsed.username,
            password=parsed.password,
            host=parsed.hostname,
            port=parsed.port,
            prefer_psycopg3=True,
            max_connections=int(params.pop("max_connections", 32)),
            stale_timeout=300,
            timeout=int(params.pop("pool_timeout", 10)),  # wait for a free connection
            **params,
        )
    raise ConfigurationError(
        f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def bind_database(url: str) -> peewee.Database:
    """Open the database at ``url`` and bind the module proxy to it."""
    db = open_database(url)
    database.initialize(db)
    return db


def is_postgres(db: peewee.Database | None = None) -> bool:
    db = db or database.obj
    return isinstance(db, peewee.PostgresqlDatabase)


def checkpoint(db: peewee.Database | None = None) -> None:
    """Fold the SQLite write-ahead log into the main file (a clean shutdown does this)."""
    db = db or database.obj
    if isinstance(db, peewee.SqliteDatabase) and db.database != ":memory:":
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")


@contextlib.contextmanager
def connection(db: peewee.Database | None = None) -> Iterator[peewee.Database]:
    """Use the thread's open connection, or open one for the block and close it after.

    Unlike peewee's ``connection_context`` this never closes a connection it did not open,
    so it is safe inside a request or a transaction.
    """
    db = db or database.obj
    opened = db.connect(reuse_if_open=True)
    try:
        yield db
    finally:
        if opened:
            db.close()

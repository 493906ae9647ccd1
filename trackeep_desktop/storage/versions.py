"""Per-user content versions: ``users.content_version`` (migration ``m0008``), a counter that
every committed transaction which changed a user's data bumps, inside that transaction.

The in-memory cache of a process (embedded mode, no Redis) hears only that process's writes;
the database is what every process shares. So a cache of a user's content keys its entries by
the version (:func:`content_version`, one primary-key query) as well: once a write by *any*
process commits, with the CLI's ``trackeep import`` beside a server or two servers on one
SQLite file, the entries stored under the old version are never read again (they age out).

:func:`content_version_subscriber` is the change pipeline's in-transaction subscriber
(:mod:`trackeep_desktop.storage.changes`). It notes the users of each change and bumps each
of them once per transaction, by one ``UPDATE users SET content_version = content_version + 1``
right before the ``COMMIT`` (:meth:`~trackeep_desktop.storage.db.BeforeCommit.before_commit`):

* the data and its new version become visible together, and a rollback bumps nothing;
* an import of 10,000 bookmarks in one transaction is one UPDATE, not 10,000;
* the user's row is locked (PostgreSQL) only from the bump to the commit, not for the whole
  write: an import does not hold up the user's sign-ins (``last_login_at``) or other writes,
  and users are bumped in id order, so two transactions never wait on each other's rows.

A change recorded outside any transaction (``rebuild_index`` telling of the rebuilt users)
bumps at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from trackeep_desktop.storage.changes import Change
from trackeep_desktop.storage.db import database


def content_version(user_id: int) -> tuple[int, float]:
    """``(content_version, created_at)`` of the user's row, in one primary-key query; (0, 0.0)
    for a user that does not exist. ``created_at`` tells apart two accounts given the same id
    one after the other (SQLite gives the highest id again once it is deleted): a key made of
    both is never one of an earlier account's entries."""
    row = database.execute_sql(
        f"SELECT content_version, created_at FROM users WHERE id = {database.param}",
        (user_id,)).fetchone()
    return (0, 0.0) if row is None else (int(row[0]), float(row[1]))


def bump_content_versions(user_ids: Iterable[int]) -> None:
    """Increment the content version of each user, in id order (one UPDATE each)."""
    for user_id in sorted(set(user_ids)):
        database.execute_sql(
            "UPDATE users SET content_version = content_version + 1 "
            f"WHERE id = {database.param}", (user_id,))


class _PendingBump:
    """The users one transaction changed, bumped when it is about to commit."""

    def __init__(self) -> None:
        self.users: set[int] = set()

    def __call__(self) -> None:
        bump_content_versions(self.users)


def content_version_subscriber() -> Callable[[Change], None]:
    """The pipeline's in-transaction subscriber that bumps the content version of each user a
    transaction changed, once, right before it commits (see the module docstring)."""
    local = threading.local()  # per greenlet under gevent, as peewee's connection state

    def note(change: Change) -> None:
        db = database.obj
        before_commit = getattr(db, "before_commit", None)
        if db is None or before_commit is None or db.transaction_depth() == 0:
            bump_content_versions([change.user_id])
            return
        pending = getattr(local, "pending", None)
        # A pending bump this transaction has not registered (or has run, or dropped in a
        # rollback) is an earlier transaction's: this one gets its own.
        if pending is None or not any(fn is pending for fn in db.pending_before_commit()):
            pending = local.pending = _PendingBump()
            before_commit(pending)
        pending.users.add(change.user_id)

    return note

"""Deleting an account: every row of the user, every blob no other row names, every session
(ended on every instance, their sockets closed through the sessions-ended announcement).

Not re-exported by :mod:`trackeep_desktop.accounts` (it reaches into items, files and search,
which import accounts): ``from trackeep_desktop.accounts import deletion``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trackeep_desktop.accounts import sessions as account_sessions
from trackeep_desktop.accounts.users import (
    InvalidInput,
    NotAllowed,
    _lock_admins,
    _other_active_admins,
    verify_password,
    verify_second_factor,
)
from trackeep_desktop.capabilities.base import Cache, PubSub, SessionStore
from trackeep_desktop.files.store import BlobStore, lock_blobs, remove_unreferenced
from trackeep_desktop.search.index import generation_namespace, user_rowids
from trackeep_desktop.storage.db import database, is_postgres
from trackeep_desktop.storage.models import (
    ApiKey,
    BackupCode,
    Bookmark,
    DurableSession,
    File,
    FileShare,
    ItemCount,
    ItemTag,
    Note,
    PairingCode,
    SavedSearch,
    SearchDocument,
    Tag,
    Task,
    TimeEntry,
    User,
)

log = logging.getLogger(__name__)

#: Every table with a ``user`` column, children before parents (item tags and share links
#: go through their tag and file first).
USER_TABLES = (SearchDocument, SavedSearch, ItemCount, TimeEntry, Task, Note, Bookmark, File,
               Tag, BackupCode, ApiKey, PairingCode)


@dataclass(frozen=True)
class Deleted:
    """What an account deletion removed."""

    rows: int
    blobs: int
    sessions: int


def check_deletable(user: User, *, by: User | None = None) -> None:
    """Raise :class:`NotAllowed` when ``by`` (an admin; None for the user themselves) may not
    delete ``user``: an admin does not delete themselves here, and the last active admin
    cannot go."""
    if by is not None and by.id == user.id:
        raise NotAllowed("You cannot delete your own account from the admin page; use "
                         "Settings → Security.")
    if user.role == "admin" and user.is_active and _other_active_admins(user) == 0:
        raise NotAllowed("This is the last admin: make another user an admin first.")


def delete_account(user: User, *, store: BlobStore, sessions: SessionStore, pubsub: PubSub,
                   cache: Cache | None = None, by: User | None = None) -> Deleted:
    """Delete ``user`` and everything of theirs (see the module). The sessions end first, so
    no request of theirs is served while the rows go (after the checks: a refused deletion
    ends nothing; they are made again under the admin lock)."""
    check_deletable(user, by=by)
    ended = account_sessions.end_sessions(sessions, pubsub, user.id)
    rows = 0
    with database.atomic():
        _lock_admins()
        fresh = User.get_or_none(User.id == user.id)
        if fresh is None:
            return Deleted(0, 0, ended)
        check_deletable(fresh, by=by)
        rows += DurableSession.delete().where(DurableSession.user_id == user.id).execute()
        lock_blobs()
        hashes = [f.sha256 for f in File.select(File.sha256).where(File.user == user.id)]
        tags = Tag.select(Tag.id).where(Tag.user == user.id)
        rows += ItemTag.delete().where(ItemTag.tag.in_(tags)).execute()
        user_files = File.select(File.id).where(File.user == user.id)
        rows += FileShare.delete().where(FileShare.file.in_(user_files)).execute()
        if not is_postgres():
            first, last = user_rowids(user.id)
            database.execute_sql("DELETE FROM search_fts WHERE rowid BETWEEN ? AND ?",
                                 (first, last))
        Task.update(parent=None).where(Task.user == user.id).execute()
        for model in USER_TABLES:
            rows += model.delete().where(model.user == user.id).execute()
        rows += User.delete().where(User.id == user.id).execute()
    with database.atomic():  # after the commit, as the pipeline's blob sweeper does
        blobs = remove_unreferenced(store, hashes)
    if cache is not None:
        # An id may be given again (SQLite): no answer cached for this one may be served.
        cache.bump_generation(generation_namespace(user.id))
    # Sessions started while the rows went (a login racing the deletion) end too.
    ended += account_sessions.end_sessions(sessions, pubsub, user.id)
    account_sessions.announce_credentials_changed(pubsub, [user.id])  # its key sockets
    log.info("account %s (%d) deleted: %d rows, %d blobs, %d sessions", user.username,
             user.id, rows, blobs, ended)
    return Deleted(rows, blobs, ended)


def delete_own_account(user: User, password: str, code: str, *, now: float, store: BlobStore,
                       sessions: SessionStore, pubsub: PubSub,
                       cache: Cache | None = None) -> Deleted:
    """A user deletes their own account: the password again, and a current second factor
    (a TOTP or backup code) when two-factor is on."""
    if not verify_password(user.password_hash, password or ""):
        raise InvalidInput("The password is incorrect.", "password")
    if user.totp_enabled and verify_second_factor(user, code or "", now=now) is None:
        raise InvalidInput("Enter a current code from your authenticator app (or a backup "
                           "code).", "code")
    check_deletable(user)
    return delete_account(user, store=store, sessions=sessions, pubsub=pubsub, cache=cache)

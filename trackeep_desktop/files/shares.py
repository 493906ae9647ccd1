"""Share links: a file reachable by anyone with its random token until the link expires or
is revoked."""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

import peewee

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.models import File, FileShare

from .records import get_file
from .store import MAX_SHARE_HOURS, InvalidInput, NotFound

log = logging.getLogger(__name__)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_share(user_id: int, file_id: Any, *, now: float,
                 expires_in_hours: Any = None) -> tuple[FileShare, str]:
    """Make a share link to a file; returns ``(share, token)``. The token is shown once and
    stored only as its hash. ``expires_in_hours`` None means the link never expires."""
    record = get_file(user_id, file_id)
    expires_at = None
    if expires_in_hours is not None:
        if isinstance(expires_in_hours, bool) or not isinstance(expires_in_hours, (int, float)):
            raise InvalidInput("expires_in_hours must be a number of hours.", "expires_in_hours")
        if not 0 < expires_in_hours <= MAX_SHARE_HOURS:
            raise InvalidInput(f"expires_in_hours must be between 0 and {MAX_SHARE_HOURS}.",
                               "expires_in_hours")
        expires_at = now + float(expires_in_hours) * 3600
    token = secrets.token_urlsafe(32)
    share = FileShare.create(file=record.id, token_hash=_hash_token(token), prefix=token[:6],
                             created_at=now, expires_at=expires_at)
    log.info("user %s shared file %s (link %s, expires %s)", user_id, record.id, share.id,
             iso_time(expires_at) or "never")
    return share, token


def list_shares(user_id: int, file_id: Any) -> list[FileShare]:
    """Every share link of a file, newest first (revoked and expired ones included)."""
    record = get_file(user_id, file_id)
    return list(FileShare.select().where(FileShare.file == record.id)
                .order_by(FileShare.created_at.desc(), FileShare.id.desc()))


def revoke_share(user_id: int, file_id: Any, share_id: Any, *, now: float) -> None:
    """Turn a share link off for good; :class:`NotFound` unless it is a link of this file."""
    record = get_file(user_id, file_id)
    try:
        share_id = int(share_id)
    except (TypeError, ValueError):
        raise NotFound("No such share link.") from None
    updated = (FileShare.update(revoked_at=peewee.fn.COALESCE(FileShare.revoked_at, now))
               .where(FileShare.id == share_id, FileShare.file == record.id).execute())
    if not updated:
        raise NotFound("No such share link.")
    log.info("user %s revoked share link %s of file %s", user_id, share_id, record.id)


def share_state(share: FileShare, now: float) -> str:
    """``active``, ``expired`` or ``revoked``."""
    if share.revoked_at is not None:
        return "revoked"
    if share.expires_at is not None and share.expires_at <= now:
        return "expired"
    return "active"


def share_to_json(share: FileShare, now: float) -> dict:
    """A share link as listed (the token itself is never shown again, only its prefix)."""
    return {
        "id": share.id,
        "file_id": share.file_id,
        "prefix": share.prefix,
        "state": share_state(share, now),
        "created_at": iso_time(share.created_at),
        "expires_at": iso_time(share.expires_at),
        "revoked_at": iso_time(share.revoked_at),
        "download_count": share.download_count,
        "last_download_at": iso_time(share.last_download_at),
    }


def open_share(token: str, *, now: float) -> File | None:
    """The file a share token gives access to, counting the download; None when the token is
    unknown, revoked or expired, or the file is in the trash (the caller answers all of
    these alike)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    share = (FileShare.select(FileShare, File).join(File)
             .where(FileShare.token_hash == _hash_token(token), FileShare.revoked_at.is_null(),
                    File.deleted_at.is_null())
             .first())
    if share is None or share_state(share, now) != "active":
        return None
    (FileShare.update(download_count=FileShare.download_count + 1, last_download_at=now)
     .where(FileShare.id == share.id).execute())
    return share.file

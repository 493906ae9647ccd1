"""The full export's format: version, manifest name and bounds, progress reports, and the
errors and report of an import."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from trackeep_desktop import errors
from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.realtime import events
from trackeep_desktop.storage.db import database, is_postgres

log = logging.getLogger(__name__)


FORMAT = "trackeep-export"


VERSION = 1


MANIFEST = "manifest.json"


MAX_MANIFEST_BYTES = 256 * 1024 * 1024


_CHUNK = 1024 * 1024


#: ``progress(stage, done, total)``: stages are ``checking``, ``files`` and ``saving``.
Progress = Callable[[str, int, int], None]



class TransferError(errors.DomainError):
    """An import the domain refuses; ``message`` is fit to show the user."""


class InvalidArchive(TransferError, errors.Invalid):
    """The upload is not a Trackeep export, or something in it is damaged or malformed
    (answered 400, field ``file``)."""

    field = "file"


class InvalidBookmarkFile(TransferError, errors.Invalid):
    """The upload is not a Netscape bookmark file (answered 400, field ``file``)."""

    field = "file"


class AccountNotEmpty(TransferError, errors.Conflict):
    """A full import goes only into an account with no items, files or tags (answered 409)."""


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def _write_transaction():
    """A transaction that takes SQLite's write lock at once (``BEGIN IMMEDIATE``): one that
    read first could fail to upgrade its lock (``database is locked``) if another connection
    committed a write meanwhile. PostgreSQL: a plain transaction."""
    return database.atomic() if is_postgres() else database.atomic("IMMEDIATE")


def pubsub_progress(pubsub, user_id: int, interval: float = 0.25,
                    also: Progress | None = None) -> Progress:
    """A progress callback that publishes ``{"type": "import", "action": "progress", "item":
    {stage, done, total}}`` on the user's change-event channel at most every ``interval``
    seconds (and always the last step of a stage), and calls ``also`` every time."""
    last = {"at": 0.0}

    def report(stage: str, done: int, total: int) -> None:
        if also is not None:
            also(stage, done, total)
        moment = time.monotonic()
        if done < total and moment - last["at"] < interval:
            return
        last["at"] = moment
        message = {"type": "import", "action": "progress", "id": None,
                   "item": {"stage": stage, "done": done, "total": total},
                   "at": iso_time(time.time())}
        try:
            pubsub.publish(events.channel_for(user_id), message)
        except Exception:
            log.exception("could not publish import progress for user %s", user_id)

    return report


def publish_finished(pubsub, user_id: int, kind: str, report: ImportReport) -> None:
    """Tell the user's other windows an import is done (``{"type": "import", "action":
    "finished", "item": {kind, imported, ...}}``), so they reload; never raises."""
    message = {"type": "import", "action": "finished", "id": None,
               "item": {"kind": kind, **report.to_json()}, "at": iso_time(time.time())}
    try:
        pubsub.publish(events.channel_for(user_id), message)
    except Exception:
        log.exception("could not publish the end of an import for user %s", user_id)


@dataclasses.dataclass
class ImportReport:
    """What an import did: rows created per section (``tags``, ``bookmarks``...), and for a
    bookmark file the entries skipped."""

    counts: dict[str, int]
    duplicates: int = 0
    invalid: int = 0
    total: int = 0

    def to_json(self) -> dict:
        """The report as the API answers it."""
        out: dict[str, Any] = {"imported": dict(self.counts)}
        if self.total:
            out.update(total=self.total, duplicates=self.duplicates, invalid=self.invalid)
        return out

"""The change pipeline of one application, built in one place.

:func:`build_pipeline` gives every process that writes (the server, the CLI, a test) the
same :class:`~trackeep_desktop.storage.changes.Pipeline`:

================  ==========================================================================
in transaction    the search index follows each bookmark, task, note and file; the content
                  version of each changed user is bumped once, right before the commit (in
                  the database, so cached answers keyed by it go stale in every process)
after commit      the changed users' cached searches are made stale (the cache capability);
                  a file's blob no row names any more is deleted (the blob store);
                  each announced change is published as a change event on
                  ``events:{user_id}`` (the pub/sub capability), the item rendered once
renderers         bookmark, task (with its subtasks), note (with ``content_html``), tag (with
                  its counts), file and time entry: the API's JSON of each
================  ==========================================================================

No Flask here: the metadata fetcher's workers and ``trackeep import`` use the same pipeline
as the requests do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from trackeep_desktop import challenges, files, items, time_tracking
from trackeep_desktop.capabilities import Capabilities
from trackeep_desktop.realtime import events
from trackeep_desktop.search.cache import invalidation_subscriber
from trackeep_desktop.search.index import index_subscriber
from trackeep_desktop.storage.changes import ChangeSet, Pipeline
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.versions import content_version_subscriber

log = logging.getLogger(__name__)


def render_bookmarks(user_id: int, bookmarks: list) -> list[dict]:
    """Bookmarks as the API answers them."""
    return items.items_to_json(user_id, "bookmark", bookmarks)


def render_tasks(user_id: int, tasks: list) -> list[dict]:
    """Tasks as the API answers them, each with its subtasks (one query for all)."""
    return items.tasks_json(user_id, items.as_rows("task", tasks))


def render_notes(user_id: int, notes: list) -> list[dict]:
    """Notes as the API answers them, with their Markdown rendered safely."""
    return items.notes_json(user_id, items.as_rows("note", notes))


def render_tags(user_id: int, tags: list) -> list[dict]:
    """Tags as the API answers them, with how many live items carry each."""
    counts = items.tag_counts(user_id, [tag.id for tag in tags])
    return [items.tag_to_json(tag, counts[tag.id]) for tag in tags]


def render_files(user_id: int, records: list) -> list[dict]:
    """Files as the API answers them."""
    return items.items_to_json(user_id, files.ITEM_TYPE, records)


def render_time_entries(user_id: int, entries: list) -> list[dict]:
    """Time entries as the API answers them (a running one's duration as of now)."""
    return time_tracking.entries_json(user_id, entries, time.time())


def event_publisher(pubsub) -> Callable[[ChangeSet], None]:
    """The after-commit subscriber that publishes each announced change as a change event."""

    def publish(change_set: ChangeSet) -> None:
        for change in change_set.events():
            events.publish_change(pubsub, change.user_id, change.item_type, change.action,
                                  change_set.payload_of(change), change.id)

    return publish


def blob_sweeper(store: files.BlobStore) -> Callable[[ChangeSet], None]:
    """The after-commit subscriber that deletes the blobs of purged files once no row names
    them (in a transaction of its own, serialized with uploads by the blob lock)."""

    def sweep(change_set: ChangeSet) -> None:
        hashes = [change.item.sha256 for change in change_set.changes
                  if change.item_type == files.ITEM_TYPE and change.action == "purged"
                  and change.item is not None]
        if not hashes:
            return
        with database.atomic():
            removed = files.remove_unreferenced(store, hashes)
        if removed:
            log.info("deleted %d blob(s): their last file was purged", removed)

    return sweep


def build_pipeline(capabilities: Capabilities | None = None,
                   store: files.BlobStore | None = None) -> Pipeline:
    """The pipeline of an application on ``capabilities`` with its blob ``store`` (either may
    be None in tests and tools that have no cache, no pub/sub or no files)."""
    pipeline = Pipeline()
    pipeline.in_transaction.append(index_subscriber(store))
    pipeline.in_transaction.append(content_version_subscriber())
    pipeline.in_transaction.append(challenges.score_subscriber())
    pipeline.renderers.update(bookmark=render_bookmarks, task=render_tasks, note=render_notes,
                              tag=render_tags, file=render_files,
                              time_entry=render_time_entries)
    if capabilities is not None:
        pipeline.after_commit.append(invalidation_subscriber(capabilities.cache))
    if store is not None:
        pipeline.after_commit.append(blob_sweeper(store))
    if capabilities is not None:
        pipeline.after_commit.append(event_publisher(capabilities.pubsub))
        pipeline.after_commit.append(challenges.board_subscriber(capabilities.leaderboard,
                                                                 capabilities.pubsub))
    return pipeline

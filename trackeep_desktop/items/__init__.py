"""Items: bookmarks, tasks and notes, the tags on them, the trash and the dashboard figures.

The domain, with no Flask in it: functions take the user's id, the input as a plain mapping
(the JSON object a client sent) and the time ``now`` in epoch seconds, validate, write in one
transaction (:func:`write_transaction`) and return peewee models. Refusals are typed
exceptions that the API answers: :class:`InvalidInput` (400, with the field and a reason
code), :class:`NotFound` (404, also for other users' ids), :class:`Conflict` (409) and
:class:`DuplicateBookmark` (409, carrying the bookmark already saved at that URL).

Rules worth knowing:

* **Updates are partial.** Only the fields present in the mapping change; ``false`` and
  ``null`` are applied (``null`` empties a text, clears a flag, removes a date or a parent).
  Unknown fields are ignored, so a client may send back what it read.
* **Bookmark URLs are normalized** (:func:`normalize_url`): http/https only, lower-case
  scheme and host, default port and a bare trailing ``#`` dropped; the fragment is kept
  (``/#/inbox/42`` and ``/#/settings`` are two pages of a single-page app). Saving a URL
  that a live bookmark of the same user already has raises :class:`DuplicateBookmark`
  unless ``allow_duplicate``.
* **Tasks** keep ``completed_at`` themselves: set when the status becomes ``completed``
  (progress goes to 100 unless the same update sets it), cleared when it leaves it. Subtasks
  are one level deep: a subtask cannot have subtasks, nor a task with subtasks get a parent.
* **Tags** are per user; a name is unique per user ignoring case. Any item type can be tagged
  through the generic link table: :func:`set_tags` and :func:`tags_for` take the item type
  (``"bookmark"``, ``"task"``, ``"note"``, ``"file"``...). ``set_tags`` checks ownership when
  the type is registered (below) and runs no change hook itself: its caller reports the item's
  change.
* **Trash**: deleting sets ``deleted_at`` (subtasks follow their task); restoring clears it;
  purging deletes the row, its tag links and (for tasks) its subtasks. :func:`purge_expired`
  purges what has been in the trash longer than the retention.

What other modules build on:

* **The change pipeline** (:mod:`trackeep_desktop.storage.changes`): every write records
  what it changed with ``record_change(user_id, item_type, action, item)`` inside its
  transaction, ``action`` one of ``created``, ``updated``, ``deleted`` (moved to the trash),
  ``restored`` and ``purged`` (recorded before the row is deleted, so the item can still be
  read). Tags record their changes too (``item_type="tag"``), and renaming, merging or
  deleting a tag records an ``updated`` of every item that carried it (not announced as
  change events: ``event=False``, as are the subtasks that follow their task). The index
  follows inside the transaction; caches, change events and blobs after the commit.
* **The counts** (:mod:`.counts`): what the dashboard, the tag list and the lists' totals
  show is kept in ``item_count`` by the writes themselves, in their transactions (every
  domain write that creates, changes, trashes, restores or purges an item, or changes tags,
  reports to it); :func:`rebuild_counts` (``trackeep stats rebuild``) recounts from the rows.
* **The item types** (``_TYPES`` in :mod:`.types`): bookmark, task, note and file join the
  trash (list, restore, purge, automatic purge), the tag counts and the dashboard. A new
  type is one more row there; its model needs the fields ``id``, ``user`` (a foreign key to
  the user), ``created_at``, ``updated_at`` and ``deleted_at``.
"""

from trackeep_desktop.items.bookmarks import (
    apply_metadata,
    create_bookmark,
    mark_fetch_pending,
    update_bookmark,
)
from trackeep_desktop.items.counts import (
    rebuild as rebuild_counts,
)
from trackeep_desktop.items.dashboard import (
    dashboard_stats,
)
from trackeep_desktop.items.fields import (
    BOOKMARK_FIELDS,
    NOTE_FIELDS,
    TAGS_SCHEMA,
    TASK_FIELDS,
    input_schema,
    normalize_url,
    parse_time,
    url_hash,
)
from trackeep_desktop.items.lists import (
    DEFAULT_SORTS,
    FILTERS,
    SORTS,
    Page,
    as_rows,
    get_item,
    items_to_json,
    list_items,
    notes_json,
    parse_paging,
    read_item,
    rows_to_json,
    tasks_json,
)
from trackeep_desktop.items.notes import (
    create_note,
    update_note,
)
from trackeep_desktop.items.tags import (
    create_tag,
    delete_tag,
    get_or_create_tags,
    get_tag,
    list_tags,
    merge_tags,
    normalize_tag_name,
    parse_color,
    parse_tag_names,
    set_tags,
    tag_counts,
    tag_key,
    tag_to_json,
    tagged_with,
    tags_for,
    tags_json,
    update_tag,
)
from trackeep_desktop.items.tasks import (
    create_task,
    subtask_rows,
    subtasks_of,
    update_task,
)
from trackeep_desktop.items.trash import (
    TrashPage,
    empty_trash,
    list_trash,
    move_to_trash,
    purge,
    purge_expired,
    restore_from_trash,
    trash_entry_to_json,
    trash_json,
    trash_page,
)
from trackeep_desktop.items.types import (
    DEFAULT_LIMIT,
    DESCRIPTION_MAX,
    MAX_LIMIT,
    NOTE_MAX,
    TAG_NAME_MAX,
    TAGS_PER_ITEM_MAX,
    TASK_PRIORITIES,
    TASK_STATUSES,
    TITLE_MAX,
    URL_MAX,
    Conflict,
    DuplicateBookmark,
    InvalidInput,
    ItemError,
    NotFound,
    item_types,
)

__all__ = [
    "BOOKMARK_FIELDS",
    "DEFAULT_LIMIT",
    "DEFAULT_SORTS",
    "DESCRIPTION_MAX",
    "FILTERS",
    "MAX_LIMIT",
    "NOTE_FIELDS",
    "NOTE_MAX",
    "SORTS",
    "TAGS_PER_ITEM_MAX",
    "TAGS_SCHEMA",
    "TAG_NAME_MAX",
    "TASK_FIELDS",
    "TASK_PRIORITIES",
    "TASK_STATUSES",
    "TITLE_MAX",
    "URL_MAX",
    "Conflict",
    "DuplicateBookmark",
    "InvalidInput",
    "ItemError",
    "NotFound",
    "Page",
    "TrashPage",
    "apply_metadata",
    "as_rows",
    "create_bookmark",
    "create_note",
    "create_tag",
    "create_task",
    "dashboard_stats",
    "delete_tag",
    "empty_trash",
    "get_item",
    "get_or_create_tags",
    "get_tag",
    "input_schema",
    "item_types",
    "items_to_json",
    "list_items",
    "list_tags",
    "list_trash",
    "mark_fetch_pending",
    "merge_tags",
    "move_to_trash",
    "normalize_tag_name",
    "normalize_url",
    "notes_json",
    "parse_color",
    "parse_paging",
    "parse_tag_names",
    "parse_time",
    "purge",
    "purge_expired",
    "read_item",
    "rebuild_counts",
    "restore_from_trash",
    "rows_to_json",
    "set_tags",
    "subtask_rows",
    "subtasks_of",
    "tag_counts",
    "tag_key",
    "tag_to_json",
    "tagged_with",
    "tags_for",
    "tags_json",
    "tasks_json",
    "trash_entry_to_json",
    "trash_json",
    "trash_page",
    "update_bookmark",
    "update_note",
    "update_tag",
    "update_task",
    "url_hash",
]

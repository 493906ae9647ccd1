"""Files: uploads kept by content hash, with a display name, description, tags, trash and
share links.

The bytes of a file live in a content-addressed :class:`BlobStore` in the data folder
(``files/ab/cd/<sha256>``): two uploads of the same content share one blob, and the blob goes
only when the last row naming it is purged. An upload is written to a :class:`Spool` (a
temporary file in the store that hashes and counts as it is written and refuses bytes beyond
the size limit), then moved into place. The original name is kept in the database, cleaned
for display (:func:`sanitize_name`) and never used as a path.

Placing and removing blobs happen inside a database transaction that has already written (so
SQLite's write lock is held) and, on PostgreSQL, holds an advisory lock: an upload that reuses
a blob and a purge that removes it can never interleave.

No Flask here: the API (:mod:`trackeep_desktop.files.api`), the import (:mod:`.transfer`) and
tests call these functions with the user id, the time and the store.
"""

from trackeep_desktop.files.names import (
    content_disposition,
    detect_mime,
    file_kind,
    preview_kind,
    sanitize_name,
    text_preview,
)
from trackeep_desktop.files.records import (
    KINDS,
    FileQuery,
    create_file,
    file_to_json,
    get_file,
    list_files,
    tags_of,
    trash_file,
    update_file,
)
from trackeep_desktop.files.shares import (
    create_share,
    list_shares,
    open_share,
    revoke_share,
    share_to_json,
)
from trackeep_desktop.files.store import (
    ITEM_TYPE,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SHARE_HOURS,
    ORPHAN_GRACE_SECONDS,
    ORPHAN_SWEEP_INTERVAL,
    PREVIEW_TEXT_BYTES,
    SORT_FIELDS,
    BlobStore,
    FileError,
    InvalidInput,
    NotFound,
    Spool,
    TooLarge,
    lock_blobs,
    remove_unreferenced,
    sweep_orphans,
)

__all__ = [
    "ITEM_TYPE",
    "KINDS",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_SHARE_HOURS",
    "ORPHAN_GRACE_SECONDS",
    "ORPHAN_SWEEP_INTERVAL",
    "PREVIEW_TEXT_BYTES",
    "SORT_FIELDS",
    "BlobStore",
    "FileError",
    "FileQuery",
    "InvalidInput",
    "NotFound",
    "Spool",
    "TooLarge",
    "content_disposition",
    "create_file",
    "create_share",
    "detect_mime",
    "file_kind",
    "file_to_json",
    "get_file",
    "list_files",
    "list_shares",
    "lock_blobs",
    "open_share",
    "preview_kind",
    "remove_unreferenced",
    "revoke_share",
    "sanitize_name",
    "share_to_json",
    "sweep_orphans",
    "tags_of",
    "text_preview",
    "trash_file",
    "update_file",
]

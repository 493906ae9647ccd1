"""Import and export: a user's full backup as one ZIP archive, and the Netscape bookmark file
that Chrome, Firefox and Safari read and write.

**The full export** is a ZIP with ``manifest.json`` (every tag, bookmark, task, note and file
of the user, trash included, every column, times as epoch seconds) and ``blobs/<sha256>``,
the bytes of each file once. :func:`build_manifest` reads the rows; :func:`iter_export`
streams the archive in chunks without ever holding a file in memory. Share links are not
exported: they are secrets of the instance that made them.

**Importing an archive** (:func:`import_archive`) restores it into an empty account exactly:
the same fields, tags, trash state and file bytes (only the ids are new). Everything is
checked first (the manifest's shape and values, each blob's size and SHA-256); then all rows
are written in one transaction and the blobs moved into the store under the same lock as an
upload. A bad archive leaves nothing behind.

**Netscape bookmark files** (:func:`parse_netscape`, :func:`import_bookmarks`,
:func:`export_bookmarks`): folders become tags (not the browsers' own top-level containers
such as the bookmarks bar), ``ADD_DATE`` becomes the creation time, Firefox's ``TAGS`` and
``<DD>`` descriptions are kept, and URLs already saved (after normalization) or repeated in
the file are skipped and counted. Bookmarks are created through the items domain, so its
change hooks (the search index) see each one; a file that is not a bookmark file is refused
before anything is written, and the rest is written in one transaction.

Long imports report progress through a callback ``progress(stage, done, total)``;
:func:`pubsub_progress` makes one that publishes to the user's change-event channel.
"""

from trackeep_desktop.transfer.archive import (
    AccountNotEmpty,
    ImportReport,
    InvalidArchive,
    InvalidBookmarkFile,
    Progress,
    TransferError,
    publish_finished,
    pubsub_progress,
)
from trackeep_desktop.transfer.export import (
    build_manifest,
    export_filename,
    iter_export,
)
from trackeep_desktop.transfer.importer import (
    account_is_empty,
    import_archive,
)
from trackeep_desktop.transfer.netscape import (
    detect_format,
    export_bookmarks,
    import_bookmarks,
    parse_netscape,
)

__all__ = [
    "AccountNotEmpty",
    "ImportReport",
    "InvalidArchive",
    "InvalidBookmarkFile",
    "Progress",
    "TransferError",
    "account_is_empty",
    "build_manifest",
    "detect_format",
    "export_bookmarks",
    "export_filename",
    "import_archive",
    "import_bookmarks",
    "iter_export",
    "parse_netscape",
    "publish_finished",
    "pubsub_progress",
]

"""Import and export under ``/api/v1``: the full export archive (``GET /export``,
``POST /import``) and Netscape bookmark files (``GET /bookmarks/export``,
``POST /bookmarks/import``).

Uploads stream to disk exactly as file uploads do
(:func:`trackeep_desktop.web.uploads.streamed_upload`), up to ``MAX_IMPORT_MB``. Imports
run in the request and publish their progress on the user's change-event channel
(``{"type": "import", "action": "progress", "item": {stage, done, total}}``), then one
``{"type": "import", "action": "finished"}`` message, so other windows reload.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, Flask, Response, jsonify, stream_with_context

from trackeep_desktop import transfer
from trackeep_desktop.web import openapi
from trackeep_desktop.web.auth import current_user, now, require_scope, state
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.openapi import api_doc
from trackeep_desktop.web.requests import CONTENT_WRITE_SCOPES, require_scopes
from trackeep_desktop.web.uploads import (
    blob_store,
    check_content_length,
    discard_unused_spools,
    prepare_upload,
    streamed_upload,
    uploaded_spool,
)

log = logging.getLogger(__name__)

bp = Blueprint("transfer_api", __name__)
bp.url_value_preprocessor(prepare_upload)
bp.teardown_request(discard_unused_spools)

IMPORT_REPORT = openapi.schema("ImportReport", {"type": "object", "properties": {
    "imported": {"type": "object", "additionalProperties": {"type": "integer"},
                 "description": "rows created per kind (tags, bookmarks, tasks, notes, "
                                "files)"},
    "total": {"type": "integer", "description": "bookmark files: links in the file"},
    "duplicates": {"type": "integer", "description": "bookmark files: URLs already saved or "
                                                    "repeated in the file, skipped"},
    "invalid": {"type": "integer", "description": "bookmark files: links that are not "
                                                 "http(s), skipped"},
}})


def _progress(user_id: int) -> transfer.Progress:
    return transfer.pubsub_progress(state().capabilities.pubsub, user_id)


def _finished(user_id: int, kind: str, report: transfer.ImportReport) -> None:
    transfer.publish_finished(state().capabilities.pubsub, user_id, kind, report)


@bp.get("/export")
@require_scope("read")
def export_all():
    """Download everything you own as one archive.

    A ZIP with manifest.json (tags, bookmarks, tasks, notes, files, the trash included) and
    the bytes of every file; POST /import restores it into an empty account.
    """
    user = current_user()
    manifest = transfer.build_manifest(user, now=now(), app_version=state().version)
    store = blob_store()
    missing = sorted({f["sha256"] for f in manifest["files"] if not store.exists(f["sha256"])})
    if missing:  # better no archive than one that cannot be imported
        log.error("export of user %s: %d blob(s) missing from %s: %s", user.id, len(missing),
                  store.root, ", ".join(missing))
        raise ApiError(500, f"the stored content of {len(missing)} file(s) is missing from "
                            "the data folder; the export was stopped")
    body = transfer.iter_export(manifest, store)
    response = Response(stream_with_context(body), mimetype="application/zip")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{transfer.export_filename(user, now())}"')
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/import")
@api_doc(response=IMPORT_REPORT, responses={
    400: "no multipart file, or not a Trackeep archive", 409: "the account is not empty",
    413: "the archive is larger than MAX_IMPORT_MB"})
@require_scopes(CONTENT_WRITE_SCOPES, every=True)
@streamed_upload("MAX_IMPORT_MB")
def import_all():
    """Restore a full export into this (empty) account.

    multipart/form-data with the archive in the field file. Everything is checked before
    anything is written; a bad archive is refused whole (400).
    """
    check_content_length("MAX_IMPORT_MB")
    spool, _ = uploaded_spool("file")
    spool.close()
    user = current_user()
    report = transfer.import_archive(user.id, spool.path, store=blob_store(),
                                     progress=_progress(user.id))
    _finished(user.id, "archive", report)
    return jsonify(report.to_json()), 201


@bp.post("/bookmarks/import")
@api_doc(response=IMPORT_REPORT, responses={
    400: "no multipart file, or not a bookmarks file",
    413: "the file is larger than MAX_IMPORT_MB"})
@require_scope("bookmarks:write")
@streamed_upload("MAX_IMPORT_MB")
def import_bookmarks():
    """Import a browser's bookmark file (Netscape HTML).

    multipart/form-data with the file in the field file. Folders become tags, ADD_DATE the
    creation time; URLs already saved are skipped and counted. A file that is not a bookmark
    file is refused (400) and nothing is imported.
    """
    check_content_length("MAX_IMPORT_MB")
    spool, _ = uploaded_spool("file")
    spool.seek(0)
    user = current_user()
    report = transfer.import_bookmarks(user.id, spool, now=now(),
                                       progress=_progress(user.id))
    _finished(user.id, "bookmarks", report)
    return jsonify(report.to_json()), 201


@bp.get("/bookmarks/export")
@require_scope("bookmarks:write")
def export_bookmarks():
    """Download your bookmarks as a Netscape bookmark file (every browser imports it)."""
    user = current_user()
    day = dt.datetime.fromtimestamp(now(), dt.UTC).strftime("%Y-%m-%d")
    # Streamed: a batch of bookmarks at a time, never the whole file in memory.
    body = (piece.encode() for piece in transfer.export_bookmarks(user.id))
    response = Response(stream_with_context(body), mimetype="text/html")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="trackeep-bookmarks-{day}.html"')
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def init_app(app: Flask, state) -> None:
    """The import and export API under ``/api/v1``."""
    app.register_blueprint(bp, url_prefix="/api/v1")

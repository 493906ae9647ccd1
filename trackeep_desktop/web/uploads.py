"""Streamed uploads: multipart bodies written straight into spools of the application's blob
store, bounded by a setting in MB (file uploads and imports use them)."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, g, request

from trackeep_desktop import files
from trackeep_desktop.web.errors import ApiError

#: Room for the multipart boundaries and the small fields sent along with the file.
FORM_OVERHEAD = 64 * 1024


def blob_store(app=None) -> files.BlobStore:
    """The content-addressed store of this app: ``DATA_DIR/files``."""
    return (app or current_app).extensions["trackeep"].blob_store


def streamed_upload(setting: str) -> Callable:
    """Decorator: the view takes a multipart upload, streamed to spools in the blob store and
    limited to the setting ``setting`` (in MB). Register :func:`prepare_upload` and
    :func:`discard_unused_spools` on the view's blueprint."""

    def decorate(view: Callable) -> Callable:
        view.upload_limit_setting = setting  # type: ignore[attr-defined]
        return view

    return decorate


def upload_limit(setting: str) -> int:
    """The limit of a setting in MB, in bytes."""
    return int(current_app.config[setting] * 1024 * 1024)


def prepare_upload(endpoint: str | None, values: dict | None) -> None:
    """For :func:`streamed_upload` views, before any ``before_request`` hook can read the
    body: limit it, and stream its files to spools (URL value preprocessors run first)."""
    view = current_app.view_functions.get(endpoint or "")
    setting = getattr(view, "upload_limit_setting", None)
    if setting is None:
        return
    limit = upload_limit(setting)
    request.max_content_length = limit + FORM_OVERHEAD
    spools: list[files.Spool] = g.setdefault("upload_spools", [])
    store = blob_store()

    def stream_factory(total_content_length, content_type, filename=None, content_length=None):
        spool = store.spool(limit)
        spools.append(spool)
        return spool

    # werkzeug's documented hook for where uploaded files are written (a method it calls on
    # the request); set per request, so only these views stream to the store.
    request._get_file_stream = stream_factory  # type: ignore[method-assign]


def discard_unused_spools(exc: BaseException | None) -> None:
    """When a request ends, delete the spools no view moved into the store."""
    for spool in g.pop("upload_spools", []):
        if spool.active:
            spool.discard()


def check_content_length(setting: str) -> int:
    """Refuse (413) a body whose declared length is already beyond the limit; returns the
    limit in bytes."""
    limit = upload_limit(setting)
    if request.content_length is not None and request.content_length > limit + FORM_OVERHEAD:
        raise files.TooLarge(limit)
    return limit


def uploaded_spool(field: str = "file") -> tuple[files.Spool, str]:
    """The spool and the client's file name of the multipart field ``field`` (400 if the
    request has none)."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(400, f"send the file as multipart/form-data in the field {field!r}",
                       field=field)
    upload = request.files.get(field)
    if upload is None or not isinstance(upload.stream, files.Spool):
        raise ApiError(400, f"the multipart field {field!r} with a file is missing",
                       field=field)
    return upload.stream, upload.filename or ""

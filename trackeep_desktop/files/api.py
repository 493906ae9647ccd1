"""The files API under ``/api/v1`` (upload, list, read, edit, trash, download, preview,
share links) and the public share-link download at ``/s/<token>``.

Uploads stream to disk: the views that take one are marked :func:`streamed_upload`, and
before anything reads such a request's body (the CSRF check may, for cookie sessions) the
request is given a size limit and werkzeug's upload-stream hook is pointed at a
:class:`~trackeep_desktop.files.Spool` in the data folder, which hashes as it writes and
refuses bytes past the limit. Nothing of a failed upload stays behind: spools a view did not
consume are deleted when the request ends.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, jsonify, request, send_file, url_for

from trackeep_desktop import files, items
from trackeep_desktop.storage import changes
from trackeep_desktop.web import openapi
from trackeep_desktop.web.auth import (
    client_ip,
    current_user,
    hit_limit,
    now,
    public,
    require_scope,
)
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.hosts import external_url
from trackeep_desktop.web.openapi import api_doc, query_param
from trackeep_desktop.web.requests import json_body, optional_json_body, paged_response
from trackeep_desktop.web.uploads import (
    blob_store,
    check_content_length,
    discard_unused_spools,
    prepare_upload,
    streamed_upload,
    uploaded_spool,
)

log = logging.getLogger(__name__)

bp = Blueprint("files_api", __name__)
#: The public share-link download, outside ``/api/`` (registered without a prefix).
share_bp = Blueprint("files_share", __name__)

#: Downloads of files and previews: never rendered as anything but their declared type, and
#: sandboxed if a browser does render them.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                               "sandbox",
    "Cache-Control": "private, no-cache",
}


# ----------------------------------------------------------------------------- app wiring


def init_app(app: Flask, state) -> None:
    """The files API and share links; temporary upload files that a crash or a killed upload
    left behind are deleted, and blobs no file row names are swept at start-up and daily."""
    app.register_blueprint(bp, url_prefix="/api/v1")
    app.register_blueprint(share_bp)
    store = state.blob_store
    try:
        store.clean_temp()
    except OSError as exc:
        log.warning("could not clean temporary upload files: %s", exc)

    def sweep() -> None:
        files.sweep_orphans(store)

    state.periodic.run_now("blob orphan sweep", sweep)
    state.periodic.every(files.ORPHAN_SWEEP_INTERVAL, "blob orphan sweep", sweep)


# ---------------------------------------------------------------------- streamed uploads

# The upload views stream their bodies into the store (trackeep_desktop.web.uploads).
bp.url_value_preprocessor(prepare_upload)
bp.teardown_request(discard_unused_spools)


# ------------------------------------------------------------------------------- helpers


def _tags_from_form() -> list | None:
    """Tags sent with an upload: repeated ``tags`` fields, or one comma-separated field."""
    values = request.form.getlist("tags") or request.form.getlist("tags[]")
    if not values:
        return None
    if len(values) == 1:
        return [part.strip() for part in values[0].split(",") if part.strip()]
    return values


def _one_file_json(user_id: int, record) -> dict:
    return files.file_to_json(record, files.tags_of(user_id, [record.id]).get(record.id, []))


def _rendered(user_id: int, record) -> dict:
    """The file as its change event carried it (rendered once), else rendered now."""
    return changes.rendered(files.ITEM_TYPE, record.id) or _one_file_json(user_id, record)


def _send(record, disposition: str) -> Response:
    path = blob_store().path_for(record.sha256)
    if not path.is_file():
        log.error("the blob %s of file %s is missing from %s", record.sha256, record.id,
                  path.parent)
        raise ApiError(500, "the stored content of this file is missing")
    response = send_file(path, mimetype=record.mime_type, conditional=True,
                         etag=record.sha256, last_modified=record.created_at, max_age=None)
    response.headers["Content-Type"] = record.mime_type  # no charset guessed for us
    response.headers["Content-Disposition"] = files.content_disposition(disposition,
                                                                        record.name)
    response.headers.update(SAFE_HEADERS)
    return response


# ------------------------------------------------------------------------------- schemas

_TIMESTAMP = {"type": "string", "format": "date-time"}
_NULLABLE_TIMESTAMP = {"type": "string", "format": "date-time", "nullable": True}
FILE = openapi.schema("File", {"type": "object", "properties": {
    "id": {"type": "integer"}, "user_id": {"type": "integer"},
    "name": {"type": "string", "description": "the original name, cleaned for display"},
    "original_name": {"type": "string", "description": "the same as name (original API)"},
    "file_name": {"type": "string", "description": "the same as name (original API)"},
    "description": {"type": "string"}, "mime_type": {"type": "string"},
    "file_type": {"type": "string", "enum": list(files.KINDS)},
    "file_size": {"type": "integer", "description": "bytes"},
    "sha256": {"type": "string"}, "is_public": {"type": "boolean"},
    "previewable": {"type": "boolean"}, "download_url": {"type": "string"},
    "file_path": {"type": "string", "description": "the same as download_url (original API)"},
    "preview_url": {"type": "string", "nullable": True},
    "tags": {"type": "array", "items": openapi.ref("TagBrief")},
    "created_at": _TIMESTAMP, "updated_at": _TIMESTAMP,
    "deleted_at": dict(_NULLABLE_TIMESTAMP, description="set while in the trash"),
}})
FILE_INPUT = openapi.schema("FileInput", {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": files.MAX_NAME_LENGTH},
    "description": {"type": "string", "maxLength": files.MAX_DESCRIPTION_LENGTH},
    "tags": items.TAGS_SCHEMA,
}})
SHARE = openapi.schema("FileShare", {"type": "object", "properties": {
    "id": {"type": "integer"}, "file_id": {"type": "integer"},
    "prefix": {"type": "string", "description": "the first characters of the token"},
    "state": {"type": "string", "enum": ["active", "expired", "revoked"]},
    "created_at": _TIMESTAMP, "expires_at": _NULLABLE_TIMESTAMP,
    "revoked_at": _NULLABLE_TIMESTAMP, "download_count": {"type": "integer"},
    "last_download_at": _NULLABLE_TIMESTAMP,
    "token": {"type": "string", "description": "only in the answer that creates the link"},
    "url": {"type": "string", "description": "only in the answer that creates the link"},
}})
SHARE_INPUT = openapi.schema("FileShareInput", {"type": "object", "properties": {
    "expires_in_hours": {"type": "number", "nullable": True, "minimum": 0,
                         "maximum": files.MAX_SHARE_HOURS,
                         "description": "omitted or null: the link never expires"},
}})
MESSAGE = openapi.ref("Message")
LIST_PARAMS = [
    query_param("limit", f"page size, 1-{items.MAX_LIMIT} (default {items.DEFAULT_LIMIT})",
                {"type": "integer", "minimum": 1, "maximum": items.MAX_LIMIT}),
    query_param("offset", "files to skip", {"type": "integer", "minimum": 0}),
    query_param("sort", "one of " + ", ".join(files.SORT_FIELDS)
                + ", - for descending (default -created_at)"),
    query_param("tag", "only files with this tag (repeat, or separate with commas: all "
                "must match)"),
    query_param("type", "only files of this kind: " + ", ".join(files.KINDS)),
    query_param("q", "only files whose name or description contains this text"),
    query_param("created_after", "ISO date or date-time, inclusive"),
    query_param("created_before", "ISO date or date-time, exclusive"),
]


# ---------------------------------------------------------------------------------- files


@bp.post("/files/upload")
@api_doc(response=FILE, status=201, responses={
    413: "the file is larger than MAX_UPLOAD_MB", 400: "no multipart field file"})
@require_scope("files:write")
@streamed_upload("MAX_UPLOAD_MB")
def upload():
    """Upload a file.

    multipart/form-data: the field file (required), description and tags (repeated, or
    comma-separated) optional. The body streams to disk; at most MAX_UPLOAD_MB.
    """
    check_content_length("MAX_UPLOAD_MB")
    spool, name = uploaded_spool("file")
    user = current_user()
    record = files.create_file(user.id, spool, name=name, now=now(), store=blob_store(),
                               description=request.form.get("description", ""),
                               tags=_tags_from_form())
    return jsonify(_rendered(user.id, record)), 201


@bp.get("/files")
@api_doc(response=FILE, array=True, paged=True, params=LIST_PARAMS)
@require_scope("files:write")
def list_files():
    """List files (not those in the trash), newest first."""
    args = request.args
    user = current_user()
    limit, offset = items.parse_paging(args.to_dict(flat=False))
    query = files.FileQuery(
        limit=limit, offset=offset, tag=",".join(args.getlist("tag")) or None,
        kind=args.get("type") or None, q=args.get("q") or None,
        created_after=items.parse_time(args.get("created_after"), "created_after"),
        created_before=items.parse_time(args.get("created_before"), "created_before"),
        sort=args.get("sort") or "-created_at")
    rows, total = files.list_files(user.id, query)
    tags = files.tags_of(user.id, [r.id for r in rows])
    return paged_response(items.Page(rows, total, limit, offset),
                          [files.file_to_json(r, tags[r.id]) for r in rows])


@bp.get("/files/<id:file_id>")
@api_doc(response=FILE)
@require_scope("files:write")
def get_file(file_id: int):
    """One file's details."""
    user = current_user()
    record = files.get_file(user.id, file_id)
    return jsonify(_one_file_json(user.id, record))


@bp.patch("/files/<id:file_id>")
@api_doc(body=FILE_INPUT, response=FILE)
@require_scope("files:write")
def update_file(file_id: int):
    """Rename a file, or change its description or tags; only the fields sent change."""
    user = current_user()
    files.get_file(user.id, file_id)  # another user's id is 404 whatever the body
    data = json_body()
    if "original_name" in data and "name" not in data:
        data["name"] = data.pop("original_name")
    record = files.update_file(user.id, file_id, data, now=now())
    return jsonify(_rendered(user.id, record))


@bp.delete("/files/<id:file_id>")
@api_doc(response=MESSAGE)
@require_scope("files:write")
def delete_file(file_id: int):
    """Move a file to the trash (restore or purge it there)."""
    user = current_user()
    files.trash_file(user.id, file_id, now=now())
    return jsonify({"message": "The file is in the trash.", "id": file_id,
                    "type": files.ITEM_TYPE})


@bp.get("/files/<id:file_id>/download")
@api_doc(params=[query_param("token", "the session token or API key, for a link that cannot "
                             "carry an Authorization header (the original mobile app)")])
@require_scope("files:write")
def download(file_id: int):
    """Download a file.

    The bytes with the file's type, as an attachment under its name; Range and conditional
    requests (ETag: the SHA-256) are supported. Besides the Authorization header, the
    credential (a session token or an API key) may come as ?token=, as the original mobile app
    sends it for links opened outside the app; only here, and only on GET.
    """
    record = files.get_file(current_user().id, file_id)
    return _send(record, "attachment")


@bp.get("/files/<id:file_id>/preview")
@api_doc(responses={415: "this type of file has no preview"})
@require_scope("files:write")
def preview(file_id: int):
    """Preview a file.

    Raster images inline; text as text/plain (the first 200 KB, X-Preview-Truncated says
    whether there is more); SVG only as an attachment (it can carry script); others 415.
    """
    record = files.get_file(current_user().id, file_id)
    kind = files.preview_kind(record.mime_type)
    if kind == "image":
        return _send(record, "inline")
    if kind == "attachment":
        return _send(record, "attachment")
    if kind == "text":
        text, truncated = files.text_preview(blob_store(), record)
        response = Response(text, content_type="text/plain; charset=utf-8")
        response.headers["Content-Disposition"] = files.content_disposition("inline",
                                                                            record.name)
        response.headers["X-Preview-Truncated"] = "true" if truncated else "false"
        response.headers.update(SAFE_HEADERS)
        return response
    raise ApiError(415, f"there is no preview for {record.mime_type} files; download it")


# ---------------------------------------------------------------------------- share links


@bp.post("/files/<id:file_id>/shares")
@bp.post("/files/<id:file_id>/share")  # the original's path
@api_doc(body=SHARE_INPUT, response=SHARE, status=201, body_required=False)
@require_scope("files:write")
def create_share(file_id: int):
    """Make a share link.

    Anyone with the link may download the file until it expires or is revoked. The token
    (and the url holding it) is shown in this answer only.
    """
    user = current_user()
    files.get_file(user.id, file_id)  # another user's id is 404 whatever the body
    data = optional_json_body()
    share, token = files.create_share(user.id, file_id, now=now(),
                                      expires_in_hours=data.get("expires_in_hours"))
    body = files.share_to_json(share, now())
    body.update(token=token,
                url=external_url(url_for("files_share.shared_download", token=token)))
    return jsonify(body), 201


@bp.get("/files/<id:file_id>/shares")
@api_doc(response={"type": "object", "properties": {
    "shares": {"type": "array", "items": SHARE}}})
@require_scope("files:write")
def list_shares(file_id: int):
    """A file's share links, newest first (expired and revoked ones too)."""
    user = current_user()
    shares = files.list_shares(user.id, file_id)
    moment = now()
    return jsonify({"shares": [files.share_to_json(s, moment) for s in shares]})


@bp.delete("/files/<id:file_id>/shares/<id:share_id>")
@require_scope("files:write")
def revoke_share(file_id: int, share_id: int):
    """Revoke a share link (for good)."""
    files.revoke_share(current_user().id, file_id, share_id, now=now())
    return "", 204


@share_bp.get("/s/<token>")
@public
def shared_download(token: str):
    """Download a shared file: no account needed, rate limited per client. An unknown,
    expired or revoked link, or a trashed file, all get the same 404."""
    config = current_app.config
    hit_limit("share", [f"{client_ip()}:share"], config["SHARE_RATE_LIMIT"], 60)
    record = files.open_share(token, now=now())
    if record is None:
        raise ApiError(404, "This share link does not exist, has expired or was revoked.")
    return _send(record, "attachment")

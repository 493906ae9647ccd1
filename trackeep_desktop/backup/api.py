"""Backups under ``/api/v1/backups``, for admins (the owner on the desktop).

``GET /backups`` lists the backups with the progress of the one under way,
``POST /backups`` starts one (202; poll ``GET /backups`` for its progress), and
``GET /backups/{name}`` downloads one.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, jsonify, send_file

from trackeep_desktop import backup
from trackeep_desktop.web import openapi
from trackeep_desktop.web.auth import admin_required, state
from trackeep_desktop.web.openapi import api_doc

log = logging.getLogger(__name__)

bp = Blueprint("backup_api", __name__)

BACKUP = openapi.schema("Backup", {"type": "object", "properties": {
    "name": {"type": "string"}, "size": {"type": "integer", "description": "bytes"},
    "created_at": {"type": "number", "description": "Unix time"},
}})
BACKUPS = openapi.schema("Backups", {"type": "object", "properties": {
    "backups": {"type": "array", "items": BACKUP},
    "folder": {"type": "string"},
    "status": {"type": "object", "description": "the backup under way: running, stage "
               "(database, files, finished), done, total; last (the last backup made "
               "here) and error (why the last one failed)"},
}})


def runner() -> backup.BackupRunner:
    return state().backups


def _listing() -> dict:
    run = runner()
    return {"backups": [b.to_json() for b in backup.list_backups(run.folder)],
            "folder": str(run.folder), "status": run.status()}


@bp.get("/backups")
@api_doc(response=BACKUPS)
@admin_required
def list_backups():
    """The backups in the backup folder, newest first, and the progress of one under way."""
    return jsonify(_listing())


@bp.post("/backups")
@api_doc(response=BACKUPS, status=202, body_required=False,
         responses={409: "a backup is already under way"})
@admin_required
def start_backup():
    """Back up now: the database and the files, online, into the backup folder.

    Answers at once (202); GET /backups shows its progress and then the new backup.
    """
    if not runner().start():
        return jsonify({"error": "A backup is already under way.", **_listing()}), 409
    return jsonify(_listing()), 202


@bp.get("/backups/<name>")
@admin_required
def download_backup(name: str):
    """Download one backup archive."""
    info = backup.find_backup(runner().folder, name)
    response = send_file(info.path, mimetype="application/x-tar", as_attachment=True,
                         download_name=info.name, conditional=True)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def init_app(app: Flask, state) -> None:
    """The backup runner, its schedule, and the backup API under ``/api/v1``."""
    config = state.config
    state.backups = backup.BackupRunner(config, state.version)
    state.on_close.append(lambda: state.backups.wait(60))  # a backup under way finishes
    hours = backup.interval_hours(config)
    if hours > 0:
        state.periodic.every(hours * 3600, "backup", state.backups.run)
        log.info("backups every %g h into %s, keeping %s", hours, state.backups.folder,
                 config.get("BACKUP_KEEP"))
    app.register_blueprint(bp, url_prefix="/api/v1")

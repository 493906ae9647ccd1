"""Blobs no file row names are swept (at start-up and daily), once an hour old; a blob a
row names, or one just written (an upload in flight), is kept."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

from auth_actions import GENEROUS_LIMITS, AuthActions, bearer

from trackeep_desktop import files
from trackeep_desktop.storage.db import connection


def store_of(app) -> files.BlobStore:
    return files.BlobStore(Path(app.config["DATA_DIR"]) / "files")


def put_blob(store: files.BlobStore, content: bytes, age: float) -> Path:
    path = store.path_for(hashlib.sha256(content).hexdigest())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_start_up_sweeps_old_orphans_and_keeps_named_and_fresh_blobs(make_app):
    app = make_app(**GENEROUS_LIMITS)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    response = actions.client.post("/api/v1/files/upload", headers=bearer(owner),
                                   data={"file": (io.BytesIO(b"kept bytes"), "kept.txt")},
                                   content_type="multipart/form-data")
    assert response.status_code == 201
    store = store_of(app)
    named = store.path_for(hashlib.sha256(b"kept bytes").hexdigest())
    then = time.time() - 2 * files.ORPHAN_GRACE_SECONDS
    os.utime(named, (then, then))
    orphan = put_blob(store, b"nobody names me", age=2 * files.ORPHAN_GRACE_SECONDS)
    in_flight = put_blob(store, b"an upload not yet committed", age=60)

    make_app(**GENEROUS_LIMITS)  # a restart sweeps

    assert not orphan.exists()
    assert named.exists()
    assert in_flight.exists()
    assert actions.client.get(f"/api/v1/files/{response.get_json()['id']}/download",
                              headers=bearer(owner)).get_data() == b"kept bytes"


def test_the_sweep_counts_what_it_deleted(make_app):
    app = make_app()
    store = store_of(app)
    for n in range(3):
        put_blob(store, f"orphan {n}".encode(), age=2 * files.ORPHAN_GRACE_SECONDS)
    with app.app_context(), connection(app.extensions["trackeep"].db):
        assert files.sweep_orphans(store) == 3
        assert files.sweep_orphans(store) == 0
    assert list(store.blobs()) == []

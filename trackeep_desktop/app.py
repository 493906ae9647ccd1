"""The application factory."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import peewee
from flask import Flask, g, request

from trackeep_desktop import __version__
from trackeep_desktop.capabilities import Capabilities, build_capabilities
from trackeep_desktop.capabilities.durable import DatabaseCounterBackup, DatabaseSessionBackup
from trackeep_desktop.config import ensure_secret_key, load_config
from trackeep_desktop.files.store import BlobStore
from trackeep_desktop.jobs.periodic import Periodic
from trackeep_desktop.paths import static_dir, templates_dir
from trackeep_desktop.realtime.pipeline import build_pipeline
from trackeep_desktop.storage import changes, migrations
from trackeep_desktop.storage.db import bind_database, checkpoint, connection, is_postgres
from trackeep_desktop.web.errors import ApiError
from trackeep_desktop.web.observability import Metrics, configure_logging

log = logging.getLogger(__name__)


class TrackeepState:
    """Everything one application instance owns: ``app.extensions["trackeep"]``."""

    def __init__(self, config: dict, db, capabilities: Capabilities, metrics: Metrics):
        self.config = config
        self.db = db
        self.capabilities = capabilities
        self.metrics = metrics
        self.version = __version__
        self.socketio = None
        #: Where file contents live: ``files/`` in the data folder.
        self.blob_store = BlobStore(Path(config["DATA_DIR"]) / "files")
        #: What every write of this application updates and announces (:mod:`.realtime.pipeline`).
        self.pipeline = build_pipeline(capabilities, self.blob_store)
        #: Counter flushes and trash purges (:mod:`.jobs.periodic`).
        self.periodic = Periodic(db, self.pipeline)
        #: Backups made now or on the schedule (:mod:`.backup`; set by its ``init_app``).
        self.backups: Any = None
        self._closed = False
        #: Called first by :meth:`close` (background workers, subscriptions), in order.
        self.on_close: list = []

    def database_health(self) -> dict[str, Any]:
        kind = "postgresql" if is_postgres(self.db) else "sqlite"
        started = time.perf_counter()
        try:
            with connection(self.db):
                self.db.execute_sql("SELECT 1").fetchone()
        except Exception as exc:  # any driver error means "down"
            return {"backend": kind, "state": "error", "detail": f"{type(exc).__name__}: {exc}"}
        return {"backend": kind, "state": "ok",
                "latency_ms": round((time.perf_counter() - started) * 1000, 3)}

    def redis_health(self) -> dict[str, Any]:
        caps = self.capabilities
        if caps.redis is None:
            return {"configured": False, "state": "not configured"}
        if not caps.monitor.up:
            return {"configured": True, "state": "down", "detail": caps.monitor.last_error,
                    "outages": caps.monitor.outages}
        started = time.perf_counter()
        try:
            caps.redis.ping()
        except Exception as exc:
            caps.monitor.failed("health", exc)
            return {"configured": True, "state": "down", "detail": caps.monitor.last_error,
                    "outages": caps.monitor.outages}
        latency = time.perf_counter() - started
        self.metrics.observe_redis("health", latency)
        return {"configured": True, "state": "ok", "latency_ms": round(latency * 1000, 3),
                "outages": caps.monitor.outages}

    def close(self) -> None:
        """Stop background work, flush counters, checkpoint SQLite, close the database."""
        if self._closed:
            return
        self._closed = True
        self.periodic.close()
        for callback in self.on_close:
            try:
                callback()
            except Exception:
                log.exception("a shutdown step failed: %r", callback)
        try:
            self.db.connect(reuse_if_open=True)
        except Exception:
            log.exception("the database is unreachable at shutdown; counters not flushed")
        self.capabilities.close()  # logs, never raises, when a flush fails
        try:
            checkpoint(self.db)
        except Exception as exc:
            log.warning("could not checkpoint the database: %s", exc)
        try:
            if not self.db.is_closed():
                self.db.close()
            if hasattr(self.db, "close_all"):
                self.db.close_all()
        except Exception:
            log.exception("could not close the database")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application: settings, database, capabilities, blueprints, Socket.IO.

    ``config`` overrides every other source of settings (see :mod:`trackeep_desktop.config`);
    it may also carry Flask settings such as ``TESTING``.
    """
    settings = load_config(config)
    configure_logging(settings["LOG_LEVEL"], settings["LOG_FORMAT"])

    app = Flask(__name__, static_folder=str(static_dir()), template_folder=str(templates_dir()))
    app.config.update(settings)
    app.config["SECRET_KEY"] = ensure_secret_key(settings)
    # Every request body is bounded; upload and import views raise their own limit
    # (files_api.prepare_upload) before anything reads the body.
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.config["MAX_FORM_MEMORY_SIZE"] = 1024 * 1024
    app.json.sort_keys = False

    db = bind_database(settings["DATABASE_URL"])
    if settings["AUTO_MIGRATE"]:
        applied = migrations.upgrade_safely(db)
        if applied:
            log.info("database upgraded: %s", ", ".join(applied))

    metrics = Metrics()
    capabilities = build_capabilities(
        settings["REDIS_URL"],
        key_prefix=settings["KEY_PREFIX"],
        session_backup=DatabaseSessionBackup(db),
        counter_backup=DatabaseCounterBackup(db),
        cache_max_entries=settings["CACHE_MAX_ENTRIES"],
        cache_max_bytes=settings["CACHE_MAX_BYTES"],
        redis_required=settings["REDIS_REQUIRED"],
        observe_redis_latency=metrics.observe_redis,
        clock=settings.get("CLOCK"),  # tests pass a ManualClock to move time
    )
    metrics.watch_capabilities(capabilities)
    state = TrackeepState(settings, db, capabilities, metrics)
    app.extensions["trackeep"] = state

    @app.before_request
    def _open_db():
        g.pipeline_token = changes.activate(state.pipeline)  # this request's writes
        try:
            db.connect(reuse_if_open=True)
        except (peewee.DatabaseError, peewee.InterfaceError) as exc:
            if request.endpoint == "observability.health":
                return None  # /health reports the failure itself, with a 503
            log.error("the database is unreachable: %s", exc)
            raise ApiError(503, "the database is unavailable; try again shortly") from exc

    keep_connections = isinstance(db, peewee.SqliteDatabase)

    @app.teardown_request
    def _close_db(exc):
        token = g.pop("pipeline_token", None)
        if token is not None:
            changes.deactivate(token)
        # PostgreSQL connections go back to the pool after each request. A SQLite connection
        # stays open with its thread (opening one and setting its pragmas cost about a third
        # of a small request); it closes when the thread, or greenlet, ends.
        if not keep_connections and not db.is_closed():
            db.close()

    init_domains(app, state)
    if settings["COUNTER_FLUSH_INTERVAL"] > 0:
        state.periodic.every(settings["COUNTER_FLUSH_INTERVAL"], "counter flush",
                             capabilities.counters.flush)
    log.info("Trackeep %s ready: database %s, capabilities on %s", __version__,
             "postgresql" if is_postgres(db) else "sqlite", capabilities.backend)
    return app


def init_domains(app: Flask, state: TrackeepState) -> None:
    """The one wiring place: each domain's ``init_app(app, state)``, in order. The web layer
    comes first (its request hooks run before every view), the API's catch-all 404 and
    Socket.IO last, and the load shedder wraps it all (outside Socket.IO's middleware)."""
    from trackeep_desktop.accounts import api as accounts_api
    from trackeep_desktop.accounts import pages as accounts_pages
    from trackeep_desktop.backup import api as backup_api
    from trackeep_desktop.backup import pages as backup_pages
    from trackeep_desktop.challenges import api as challenges_api
    from trackeep_desktop.challenges import pages as challenges_pages
    from trackeep_desktop.files import api as files_api
    from trackeep_desktop.items import api as items_api
    from trackeep_desktop.items import pages as items_pages
    from trackeep_desktop.messaging import api as messaging_api
    from trackeep_desktop.messaging import pages as messaging_pages
    from trackeep_desktop.realtime import namespaces
    from trackeep_desktop.search import api as search_api
    from trackeep_desktop.time_tracking import api as time_api
    from trackeep_desktop.time_tracking import pages as time_pages
    from trackeep_desktop.transfer import api as transfer_api
    from trackeep_desktop.web import (
        api,
        auth,
        cors,
        errors,
        headers,
        hosts,
        observability,
        openapi,
        shedding,
    )
    from trackeep_desktop.web import requests as web_requests

    for domain in (hosts, web_requests, cors, headers, observability, errors, auth, accounts_api,
                   accounts_pages, items_api, items_pages, files_api, search_api,
                   transfer_api, backup_api, backup_pages, messaging_api, messaging_pages,
                   challenges_api, challenges_pages, time_api, time_pages, openapi, api,
                   namespaces, shedding):
        domain.init_app(app, state)

"""The application factory."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import peewee
from flask import Flask, request

from trackeep_desktop import __version__
from trackeep_desktop.capabilities import Capabilities, build_capabilities
from trackeep_desktop.capabilities.durable import DatabaseCounterBackup, DatabaseSessionBackup
from trackeep_desktop.config import ensure_secret_key, load_config
from trackeep_desktop.paths import static_dir, templates_dir
from trackeep_desktop.realtime.namespaces import create_socketio
from trackeep_desktop.storage import migrations
from trackeep_desktop.storage.db import bind_database, checkpoint, connection, is_postgres
from trackeep_desktop.web.errors import ApiError, init_error_handlers
from trackeep_desktop.web.observability import Metrics, configure_logging, init_request_tracking

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
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
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

    def start_counter_flusher(self, interval: float) -> None:
        """Flush counters to the database every ``interval`` seconds in the background."""

        def run():
            while not self._stop.wait(interval):
                try:
                    with connection(self.db):
                        self.capabilities.counters.flush()
                except Exception:
                    log.exception("periodic counter flush failed; will retry")

        self._flusher = threading.Thread(target=run, name="trackeep-counter-flush", daemon=True)
        self._flusher.start()

    def close(self) -> None:
        """Stop background work, flush counters, checkpoint SQLite, close the database."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for callback in self.on_close:
            try:
                callback()
            except Exception:
                log.exception("a shutdown step failed: %r", callback)
        if self._flusher is not None:
            self._flusher.join(timeout=5)
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
        # PostgreSQL connections go back to the pool after each request. A SQLite connection
        # stays open with its thread (opening one and setting its pragmas cost about a third
        # of a small request); it closes when the thread, or greenlet, ends.
        if not keep_connections and not db.is_closed():
            db.close()

    init_request_tracking(app, metrics)
    init_error_handlers(app)

    from trackeep_desktop.accounts import api as auth_api
    from trackeep_desktop.accounts import pages as auth_web
    from trackeep_desktop.files import api as files_api
    from trackeep_desktop.items import api as items_api
    from trackeep_desktop.items import pages as web
    from trackeep_desktop.search import api as search_api
    from trackeep_desktop.transfer import api as transfer_api
    from trackeep_desktop.web import api, auth, observability, openapi

    auth.init_app(app)
    app.register_blueprint(observability.bp)
    app.register_blueprint(auth_api.bp, url_prefix="/api/v1")
    app.register_blueprint(items_api.bp, url_prefix="/api/v1")
    app.register_blueprint(files_api.bp, url_prefix="/api/v1")
    app.register_blueprint(files_api.share_bp)
    app.register_blueprint(transfer_api.bp, url_prefix="/api/v1")
    # search_api imports search, whose change hook keeps the index in step with each write
    app.register_blueprint(search_api.bp, url_prefix="/api/v1")
    app.register_blueprint(search_api.page_bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_blueprint(web.bp)
    app.register_blueprint(auth_web.bp)

    state.socketio = create_socketio(app, settings)
    items_api.init_app(app)  # metadata fetcher, trash purge at start-up and hourly
    if settings["COUNTER_FLUSH_INTERVAL"] > 0:
        state.start_counter_flusher(settings["COUNTER_FLUSH_INTERVAL"])
    log.info("Trackeep %s ready: database %s, capabilities on %s", __version__,
             "postgresql" if is_postgres(db) else "sqlite", capabilities.backend)
    return app

"""Logs with request ids, Prometheus metrics, and the ``/health`` and ``/metrics`` endpoints."""

from __future__ import annotations

import hmac
import json
import logging
import re
import sys
import time
import uuid

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from trackeep_desktop.web import cors
from trackeep_desktop.web.hosts import external_url

bp = Blueprint("observability", __name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


# ------------------------------------------------------------------------------------ logging


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = g.get("request_id", "-")
        except RuntimeError:  # outside an application context
            record.request_id = "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (test runners and
    the desktop shell swap it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(level: str, fmt: str) -> None:
    """Configure the ``trackeep`` loggers once per process (idempotent)."""
    root = logging.getLogger("trackeep")
    handler = next((h for h in root.handlers if getattr(h, "_trackeep", False)), None)
    if handler is None:
        handler = _StderrHandler()
        handler._trackeep = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root.setLevel(level)
    # Our modules log under trackeep_desktop.*; route them through the same handler.
    pkg = logging.getLogger("trackeep_desktop")
    if handler not in pkg.handlers:
        pkg.addHandler(handler)
    pkg.setLevel(level)


# ------------------------------------------------------------------------------------ metrics


class Metrics:
    """The application's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "trackeep_http_requests", "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "trackeep_http_request_duration_seconds", "HTTP request latency by endpoint.",
            ["endpoint", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rate_limited = Counter(
            "trackeep_rate_limit_rejections", "Requests refused by a rate limit.",
            ["limit"], registry=self.registry)
        self.shed = Counter(
            "trackeep_requests_shed", "Requests answered 503 because MAX_IN_FLIGHT requests "
            "were being worked on and no slot freed within QUEUE_TIMEOUT.",
            registry=self.registry)
        self.redis_latency = Histogram(
            "trackeep_redis_command_duration_seconds",
            "Round-trip time of Redis calls by capability.", ["capability"],
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1),
            registry=self.registry)
        self.database_up = Gauge(
            "trackeep_database_up", "1 when the last health check reached the database.",
            registry=self.registry)

    def observe_redis(self, capability: str, seconds: float) -> None:
        self.redis_latency.labels(capability).observe(seconds)

    def watch_capabilities(self, capabilities) -> None:
        """Report cache hits/misses, pub/sub traffic and fallback states at scrape time."""
        self.registry.register(_CapabilityCollector(capabilities))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _CapabilityCollector:
    def __init__(self, capabilities):
        self.capabilities = capabilities

    def describe(self):
        return []

    def collect(self):
        caps = self.capabilities
        stats = caps.cache.stats()
        hits = CounterMetricFamily("trackeep_cache_hits", "Cache hits.")
        hits.add_metric([], stats.hits)
        misses = CounterMetricFamily("trackeep_cache_misses", "Cache misses.")
        misses.add_metric([], stats.misses)
        messages = CounterMetricFamily(
            "trackeep_pubsub_messages", "Pub/sub messages by direction.", labels=["direction"])
        messages.add_metric(["published"], getattr(caps.pubsub, "published", 0))
        messages.add_metric(["delivered"], getattr(caps.pubsub, "delivered", 0))
        state = GaugeMetricFamily(
            "trackeep_capability_fallback",
            "1 while a capability runs on its fallback path (Redis configured but down).",
            labels=["capability", "backend"])
        for name, health in caps.health().items():
            state.add_metric([name, health.backend], 0 if health.state == "ok" else 1)
        redis_up = GaugeMetricFamily(
            "trackeep_redis_up", "1 when Redis is configured and answering.")
        redis_up.add_metric([], 1 if caps.monitor is not None and caps.monitor.up else 0)
        yield from (hits, misses, messages, state, redis_up)


# -------------------------------------------------------------------------- request tracking


def init_request_tracking(app: Flask, metrics: Metrics) -> None:
    """Give every request an id (``X-Request-ID``) and record its count and latency."""

    @app.before_request
    def _start():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        started = g.get("started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule else "(unmatched)"
            metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
            metrics.latency.labels(endpoint, request.method).observe(
                time.perf_counter() - started)
        return response


# --------------------------------------------------------------------------------- endpoints


@bp.get("/health")
def health():
    """Database, Redis and capability states; 503 when the program cannot serve."""
    state = current_app.extensions["trackeep"]
    database = state.database_health()
    state.metrics.database_up.set(1 if database["state"] == "ok" else 0)
    capabilities = {name: vars(h) for name, h in state.capabilities.health().items()}
    redis = state.redis_health()
    degraded = any(c["state"] != "ok" for c in capabilities.values())
    failing = database["state"] != "ok" or (
        state.config["REDIS_REQUIRED"] and redis.get("state") != "ok")
    body = {
        "status": "error" if failing else ("degraded" if degraded else "ok"),
        "version": state.version,
        "database": database,
        "redis": redis,
        "capabilities": capabilities,
    }
    return jsonify(body), 503 if failing else 200


@bp.get("/.well-known/trackeep")
def discovery():
    """Who answers here, for an extension looking for the desktop program on 8080-8089:
    the program, its version, its mode and where its API and pairing are; nothing secret,
    no credentials read."""
    state = current_app.extensions["trackeep"]
    base = external_url("/").rstrip("/")
    response = jsonify({
        "app": "trackeep",
        "name": "Trackeep",
        "version": state.version,
        "mode": "desktop" if state.config.get("DESKTOP_MODE") else "server",
        "api": f"{base}/api/v1",
        "pairing": f"{base}/api/v1/auth/pair",
    })
    # Readable cross-origin by whom the API is (extensions, TRACKEEP_CORS_ORIGINS): a web
    # page has no business finding out that Trackeep runs on this machine.
    origin = request.headers.get("Origin", "")
    if cors.origin_allowed(origin, current_app.config):
        response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def metrics_refusal() -> Response | None:
    """None when this request may read ``/metrics``, else the 401/403 to answer.

    Open to a client on this machine talking to a server on loopback (no proxy between:
    a request carrying ``X-Forwarded-For`` came through one, from anywhere). Everyone else
    needs ``Authorization: Bearer METRICS_TOKEN``, or to be signed in as an admin.
    """
    from trackeep_desktop.web.auth import current_user
    from trackeep_desktop.web.errors import error_response
    from trackeep_desktop.web.hosts import is_loopback

    config = current_app.config
    if (is_loopback(str(config["HOST"])) and is_loopback(request.remote_addr or "")
            and "X-Forwarded-For" not in request.headers):
        return None
    token = config.get("METRICS_TOKEN")
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(),
                                                                    token.encode()):
        return None
    user = current_user()
    if user is not None and user.role == "admin":
        return None
    message = ("/metrics needs Authorization: Bearer with TRACKEEP_METRICS_TOKEN, or an admin "
               "session, from beyond this machine")
    return error_response(401 if user is None else 403, message)


@bp.get("/metrics")
def metrics():
    """Prometheus text format: open on loopback, else behind ``METRICS_TOKEN`` or an admin
    (see :func:`metrics_refusal`)."""
    refused = metrics_refusal()
    if refused is not None:
        return refused
    state = current_app.extensions["trackeep"]
    return Response(state.metrics.render(), mimetype="text/plain; version=0.0.4")


def init_app(app: Flask, state) -> None:
    """``/health``, ``/metrics``, and request ids, logs and metrics for every request."""
    init_request_tracking(app, state.metrics)
    app.register_blueprint(bp)

"""Shared fixtures: real Redis and PostgreSQL servers, a fresh database per test, and the
``backend`` fixture that runs each capability contract against memory and Redis.

Passwords are hashed with argon2id at its smallest cost under test (see
``_fast_password_hashing``); ``TRACKEEP_TEST_FAST_HASH=0`` runs the suite on the production
parameters, and ``test_passwords_are_hashed_with_the_production_parameters`` checks those once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from argon2 import PasswordHasher
from auth_actions import GENEROUS_LIMITS
from hypothesis import settings

from trackeep_desktop.accounts import users as account_users
from trackeep_desktop.clock import ManualClock
from trackeep_desktop.storage import db as dbmod
from trackeep_desktop.storage import migrations

import processes
import services
from clocks import make_clocked_app, shorten_redis_ttls
from processes import ServerProcess
from services import PostgresServer, RedisServer, in_ci

# Property tests (tests/test_properties.py): about 200 examples each and no deadline (a shared
# CI machine is slow at times, and a slow example is not a wrong one). Under CI they are
# derandomized, the examples drawn from a fixed seed and no example database kept, so every
# run checks the same inputs; locally they explore afresh and remember what failed
# (HYPOTHESIS_PROFILE=ci reproduces CI's run).
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if in_ci() else "dev"))


def pytest_addoption(parser):
    parser.addoption(
        "--db",
        choices=["sqlite", "postgres"],
        default=os.environ.get("TRACKEEP_TEST_DB", "sqlite"),
        help="database the suite runs on (postgres: TRACKEEP_TEST_DATABASE_URL or a "
        "PostgreSQL server the tests start themselves)",
    )


def pytest_collection_modifyitems(config, items):
    """On ``--db=postgres``, tests of SQLite-only behaviour are deselected (not skipped: a
    skip in CI must mean a missing service, and these have nothing to run against)."""
    if config.getoption("--db") != "postgres":
        return
    kept = [item for item in items if item.get_closest_marker("sqlite_only") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def _no_processes_left_behind():
    """At the end of the session (of each xdist worker): every server the tests started is
    stopped. One still alive is stopped here and fails the run, with its name, since it means
    a fixture or a test does not stop what it starts when it fails."""
    yield
    left = []
    for server in list(processes.LIVE):
        left.append(f"{server.command[:4]} (pid {server.proc.pid})")
        with contextlib.suppress(AssertionError):  # it ignored SIGTERM: killed all the same
            server.stop(timeout=5)
    for server in list(services.STARTED):
        if server.running():
            left.append(repr(server))
        server.stop()
    for pid, command in processes.descendants():
        left.append(f"pid {pid}: {command[:120]}")
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if left:
        pytest.fail("the tests left these processes running (now killed):\n  "
                    + "\n  ".join(left), pytrace=False)


def unavailable(reason: str):
    """Skip locally; fail under CI, where a skipped service test hides a broken build."""
    if in_ci():
        pytest.fail(f"required service unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


# ------------------------------------------------------------------------- password hashing

#: What ``accounts.users`` hashes with by default: read at import, before any test ran.
PRODUCTION_HASHER = account_users._hasher
#: argon2id at its smallest cost (8 KiB, one pass): about 0.1 ms a hash instead of about 40 ms,
#: and the suite hashes or verifies a password in most app tests.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Cheap password hashing for the whole session (in this process; a ``trackeep serve``
    child hashes for real), unless ``TRACKEEP_TEST_FAST_HASH=0``."""
    if os.environ.get("TRACKEEP_TEST_FAST_HASH", "1") == "0":
        yield
        return
    account_users._hasher = FAST_HASHER
    yield
    account_users._hasher = PRODUCTION_HASHER


@pytest.fixture
def production_password_hashing(monkeypatch):
    """The hasher the program uses by default, for the one test that checks its parameters."""
    monkeypatch.setattr(account_users, "_hasher", PRODUCTION_HASHER)
    return PRODUCTION_HASHER


# ------------------------------------------------------------------------------------ Redis


@pytest.fixture(scope="session")
def _redis_service():
    url = os.environ.get("TRACKEEP_TEST_REDIS_URL")
    if url:
        yield url, None
        return
    if not RedisServer.available():
        yield None, "no TRACKEEP_TEST_REDIS_URL and no redis-server binary to start"
        return
    server = RedisServer().start()
    yield server.url, None
    server.stop()


@pytest.fixture
def redis_url(_redis_service):
    """The URL of a real Redis server (skips, or fails in CI, when there is none)."""
    url, reason = _redis_service
    if url is None:
        unavailable(reason)
    return url


@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {redis_url} does not answer: {exc}")
    yield client
    client.close()


@pytest.fixture
def key_prefix(request):
    """A key prefix unique to this test, so tests never see each other's keys."""
    return f"tktest:{uuid.uuid4().hex[:10]}"


# ----------------------------------------------------------------------------- the database


@pytest.fixture(scope="session")
def _postgres_service(request):
    if request.config.getoption("--db") != "postgres":
        yield None, None
        return
    url = os.environ.get("TRACKEEP_TEST_DATABASE_URL")
    if url:
        yield url, None
        return
    if not PostgresServer.available():
        yield None, "no TRACKEEP_TEST_DATABASE_URL and no PostgreSQL binaries to start one"
        return
    server = PostgresServer().start()
    try:
        yield server.url, None
    finally:
        server.stop()


def _close(db) -> None:
    if not db.is_closed():
        db.close()
    if hasattr(db, "close_all"):
        db.close_all()


def _worker() -> str:
    """This pytest-xdist worker's id (``gw0``...), or ``main`` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


class PostgresDatabases:
    """This worker's two databases on the PostgreSQL server: one migrated once for the whole
    session and emptied of rows before each test (``TRUNCATE`` of every table but
    ``migration``), and one wiped to an empty schema for the tests that run migrations.

    Measured on this machine: ``TRUNCATE`` about 45 ms a test; dropping the schema and
    migrating again, or ``CREATE DATABASE ... TEMPLATE`` of a migrated one, about 120 ms.
    """

    def __init__(self, server_url: str):
        import psycopg

        self.server_url = server_url
        names = {kind: f"trackeep_test_{_worker()}_{kind}" for kind in ("migrated", "empty")}
        with psycopg.connect(server_url, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
        self.names = names
        self.migrated = urlsplit(server_url)._replace(path=f"/{names['migrated']}").geturl()
        self.empty = urlsplit(server_url)._replace(path=f"/{names['empty']}").geturl()
        db = dbmod.open_database(self.migrated)
        migrations.upgrade(db)
        _close(db)

    def truncate_migrated(self) -> str:
        """The migrated database with no rows (its migration records kept)."""
        import psycopg

        with psycopg.connect(self.migrated, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")  # a connection left open fails loudly
            tables = [row[0] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'migration'")]
            if tables:
                conn.execute(f"TRUNCATE {', '.join(f'public.{t}' for t in tables)} "
                             "RESTART IDENTITY CASCADE")
        return self.migrated

    def wipe_empty(self) -> str:
        """The other database with an empty ``public`` schema."""
        import psycopg

        with psycopg.connect(self.empty, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return self.empty

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            for name in self.names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _postgres_databases(_postgres_service):
    url, reason = _postgres_service
    if url is None:
        yield None, reason
        return
    databases = PostgresDatabases(url)
    try:
        yield databases, None
    finally:
        databases.drop()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated once per session (per xdist worker), copied for each test."""
    path = tmp_path_factory.mktemp("template") / "trackeep.db"
    db = dbmod.open_database(f"sqlite:///{path}")
    migrations.upgrade(db)
    db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the one file we copy
    _close(db)
    return path


def _postgres(request):
    databases, reason = request.getfixturevalue("_postgres_databases")
    if databases is None:
        unavailable(reason)
    return databases


@pytest.fixture
def database_url(request, tmp_path):
    """A URL of a migrated database with no rows: a copy of the session's migrated SQLite
    file in tmp_path, or this worker's PostgreSQL database emptied of rows."""
    if request.config.getoption("--db") == "postgres":
        return _postgres(request).truncate_migrated()
    path = tmp_path / "trackeep.db"
    shutil.copy(request.getfixturevalue("_sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def empty_database_url(request, tmp_path):
    """A URL of an empty database, never migrated: for tests of the migrations themselves."""
    if request.config.getoption("--db") == "postgres":
        return _postgres(request).wipe_empty()
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture
def database(database_url):
    """A migrated database bound to the model proxy."""
    db = dbmod.bind_database(database_url)
    migrations.upgrade(db)  # already migrated: checks and applies nothing
    yield db
    _close(db)


# ---------------------------------------------------------------- capability contract suites


#: capability name -> (module under trackeep_desktop.capabilities, class name suffix)
CAPABILITY_CLASSES = {
    "sessions": ("sessions", "SessionStore"),
    "cache": ("cache", "Cache"),
    "rate_limiter": ("ratelimit", "RateLimiter"),
    "leaderboard": ("leaderboard", "Leaderboard"),
    "counters": ("counters", "Counters"),
    "pubsub": ("pubsub", "PubSub"),
}


def implementation(capability: str, kind: str):
    """The class ``Memory<Name>`` or ``Redis<Name>`` implementing a capability."""
    import importlib

    module, suffix = CAPABILITY_CLASSES[capability]
    mod = importlib.import_module(f"trackeep_desktop.capabilities.{module}")
    return getattr(mod, f"{kind}{suffix}")


class MemoryBackend:
    """Builds memory implementations on a manual clock."""

    name = "memory"

    def __init__(self):
        self.clock = ManualClock()

    def advance(self, seconds: float) -> None:
        """Move time forward for everything this backend built."""
        self.clock.advance(seconds)

    def make(self, capability: str, **kwargs):
        """Build the memory implementation of ``capability`` (a key of CAPABILITY_CLASSES)."""
        return implementation(capability, "Memory")(clock=self.clock, **kwargs)


class RedisBackend:
    """Builds Redis implementations under a per-test key prefix, on a manual clock.

    Redis expires keys on its own clock, so :meth:`advance` also shortens the TTL of every
    key under the test's prefix by the same amount: TTL tests run without sleeping.
    """

    name = "redis"

    def __init__(self, client, prefix: str):
        from trackeep_desktop.capabilities.keys import Keyspace

        self.client = client
        self.keyspace = Keyspace(prefix)
        self.clock = ManualClock()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        shorten_redis_ttls(self.client, self.keyspace.prefix, seconds)

    def make(self, capability: str, **kwargs):
        """Build the Redis implementation of ``capability`` (a key of CAPABILITY_CLASSES)."""
        return implementation(capability, "Redis")(
            client=self.client, keyspace=self.keyspace, clock=self.clock, **kwargs
        )

    def cleanup(self) -> None:
        keys = list(self.client.scan_iter(match=f"{self.keyspace.prefix}:*", count=1000))
        if keys:
            self.client.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
def backend(request, key_prefix):
    """Each contract test runs once per implementation: ``backend.make("cache")``."""
    if request.param == "memory":
        yield MemoryBackend()
        return
    client = request.getfixturevalue("redis_client")
    b = RedisBackend(client, key_prefix)
    yield b
    b.cleanup()


# ------------------------------------------------------------------------------ applications


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch):
    """Settings from the developer's shell must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("TRACKEEP_") and not name.startswith("TRACKEEP_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_app(tmp_path, database_url):
    """``make_app(REDIS_URL=..., ...)`` builds an app on the test database; closed after."""
    from trackeep_desktop.app import create_app

    apps = []

    def make(**overrides):
        config = {
            "TESTING": True,
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": database_url,
            "COUNTER_FLUSH_INTERVAL": 0,
            "LOG_LEVEL": "WARNING",
            **overrides,
        }
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["trackeep"].close()


@pytest.fixture
def app(make_app):
    """An app on embedded capabilities and the test database."""
    return make_app()


@pytest.fixture(params=["memory", "redis"])
def any_app(request, make_app, key_prefix):
    """The same test on embedded capabilities and on a real Redis."""
    if request.param == "memory":
        return make_app()
    return make_app(REDIS_URL=request.getfixturevalue("redis_url"), KEY_PREFIX=key_prefix)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(params=["memory", "redis"])
def clocked(request, make_app, key_prefix):
    """An app on a manual clock with generous rate limits, on memory and on Redis."""
    return make_clocked_app(request, make_app, key_prefix, **GENEROUS_LIMITS)


@pytest.fixture
def serve(tmp_path, database_url):
    """``serve(*args, env_extra={...}, data_dir=..., binary=...)`` starts ``trackeep serve``
    (or the frozen ``binary``) on the test database and returns its :class:`ServerProcess`
    once it printed its URL; every one still running is stopped after the test."""
    started: list[ServerProcess] = []

    def start(*extra: str, env_extra: dict | None = None, data_dir=None, binary=None):
        server = ServerProcess.serve(data_dir or tmp_path / f"data{len(started)}",
                                     database_url, *extra, env_extra=env_extra, binary=binary)
        started.append(server)
        return server

    yield start
    errors = []
    for server in started:
        try:
            server.stop()
        except AssertionError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


#: How long a browser test waits for one thing (Playwright's expect and each page action).
BROWSER_TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def _chromium():
    """One headless Chromium per test process, shared by every browser test module (a second
    sync Playwright in the same thread refuses to start while one is running)."""
    from browser import CHROMIUM_ARGS, chromium_path

    path = chromium_path()
    if path is None:
        yield None, "no Chromium (apt-get install chromium, or set TRACKEEP_TEST_CHROMIUM)"
        return
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        yield None, "Playwright is not installed (pip install -e '.[dev]')"
        return
    expect.set_options(timeout=BROWSER_TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    except Exception as exc:
        playwright.stop()
        yield None, f"Chromium at {path} does not start: {exc}"
        return
    yield browser, None
    browser.close()
    playwright.stop()


@pytest.fixture
def chromium(_chromium):
    browser, reason = _chromium
    if browser is None:
        unavailable(reason)
    return browser

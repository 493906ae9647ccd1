"""The application shell: settings, health, metrics, errors, request ids, the CLI."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trackeep_desktop.config import SETTINGS, load_config
from trackeep_desktop.storage.db import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [s.name for s in SETTINGS if f"`TRACKEEP_{s.name}`" not in readme]
    assert missing == [], f"README's settings table lacks {missing}"


def test_settings_load_in_order_defaults_file_environment_explicit(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "trackeep.toml").write_text('port = 9001\nlog_level = "debug"\nkey_prefix = "f"\n')
    env = {"TRACKEEP_DATA_DIR": str(data), "TRACKEEP_PORT": "9002", "TRACKEEP_KEY_PREFIX": "e"}
    config = load_config({"KEY_PREFIX": "x"}, environ=env)
    assert config["PORT"] == 9002  # environment beats the file
    assert config["LOG_LEVEL"] == "DEBUG"  # the file beats the default
    assert config["KEY_PREFIX"] == "x"  # explicit beats everything
    assert config["HOST"] == "127.0.0.1"  # loopback by default
    assert config["DATABASE_URL"] == f"sqlite:///{data.resolve() / 'trackeep.db'}"


@pytest.mark.parametrize(("name", "value"), [("PORT", "eighty"), ("PORT", "70000"),
                                             ("REDIS_REQUIRED", "maybe"), ("LOG_LEVEL", "LOUD")])
def test_bad_setting_is_a_clear_configuration_error(tmp_path, name, value):
    env = {"TRACKEEP_DATA_DIR": str(tmp_path), f"TRACKEEP_{name}": value}
    with pytest.raises(ConfigurationError, match=name):
        load_config(environ=env)


def test_unsupported_database_and_redis_urls_are_refused(make_app):
    with pytest.raises(ConfigurationError, match="unsupported database URL"):
        make_app(DATABASE_URL="mysql://localhost/x")
    with pytest.raises(ConfigurationError, match="unsupported Redis URL"):
        make_app(REDIS_URL="memcached://localhost")


def test_secret_key_is_generated_once_and_kept_private(make_app, tmp_path):
    first = make_app().config["SECRET_KEY"]
    second = make_app().config["SECRET_KEY"]
    assert first == second
    assert len(first) >= 64
    key_file = tmp_path / "data" / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0


def test_health_reports_database_and_embedded_capabilities(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"]["state"] == "ok"
    assert body["redis"] == {"configured": False, "state": "not configured"}
    assert set(body["capabilities"]) == {"sessions", "cache", "rate_limiter", "leaderboard",
                                         "counters", "pubsub"}
    assert all(c == {"backend": "memory", "state": "ok", "detail": ""}
               for c in body["capabilities"].values())


def test_health_is_503_when_the_database_is_down(app):
    state = app.extensions["trackeep"]
    if state.db.__class__.__name__.startswith("Sqlite"):
        state.db.init("/proc/no-such-dir/trackeep.db", pragmas=state.db._pragmas)
    else:
        state.db.close_all()
        state.db.init("trackeep_missing_db", host="127.0.0.1", port=1)
    response = app.test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json()["database"]["state"] == "error"


def test_health_with_redis_reports_redis_backends(make_app, redis_url, key_prefix):
    app = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix)
    body = app.test_client().get("/health").get_json()
    assert body["status"] == "ok"
    assert body["redis"]["state"] == "ok"
    assert body["redis"]["latency_ms"] > 0
    assert {c["backend"] for c in body["capabilities"].values()} == {"redis"}


def test_metrics_count_requests_by_endpoint_and_expose_capabilities(client):
    client.get("/health")
    client.get("/api/v1/nope")
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'trackeep_http_requests_total\{endpoint="/health",method="GET",'
                     r'status="200"\} 1\.0', text)
    assert 'trackeep_http_request_duration_seconds_bucket{endpoint="/health"' in text
    assert "trackeep_cache_hits_total" in text
    assert 'trackeep_capability_fallback{backend="memory",capability="sessions"} 0.0' in text
    assert 'trackeep_pubsub_messages_total{direction="published"}' in text


def test_unknown_api_path_is_json_404(client):
    for method in ("get", "post", "delete"):
        response = getattr(client, method)("/api/v1/does/not/exist")
        assert response.status_code == 404
        assert response.is_json
        assert response.get_json()["error"] == "not found: /api/v1/does/not/exist"


def test_unknown_page_is_html_404_for_browsers(client):
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "not found" in response.get_data(as_text=True)


def test_wrong_method_is_json_405_with_allow(client):
    response = client.post("/health")
    assert response.status_code == 405
    assert "error" in response.get_json()
    assert "GET" in response.headers["Allow"]


def test_unexpected_exception_is_json_500_with_request_id(app):
    @app.get("/api/v1/explode")
    def explode():
        raise RuntimeError("boom")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/api/v1/explode", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error", "request_id": "abc-123"}
    assert "boom" not in response.get_data(as_text=True)


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/health", headers={"X-Request-ID": "req-42"}).headers[
        "X-Request-ID"] == "req-42"
    generated = client.get("/health", headers={"X-Request-ID": "bad id; <script>"}).headers[
        "X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_json_logs_carry_the_request_id(make_app, capfd):
    import logging

    app = make_app(LOG_FORMAT="json", LOG_LEVEL="INFO")

    @app.get("/api/v1/log-something")
    def log_something():
        logging.getLogger("trackeep.test").info("hello from a view")
        return {"ok": True}

    app.test_client().get("/api/v1/log-something", headers={"X-Request-ID": "log-1"})
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines()
             if line.startswith("{")]
    entry = next(e for e in lines if e["message"] == "hello from a view")
    assert entry["request_id"] == "log-1"
    assert entry["level"] == "INFO"


def test_index_page_renders(client):
    assert client.get("/").headers["Location"] == "/setup"  # first run: create the owner
    setup = client.get("/setup").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', setup).group(1)
    client.post("/setup", data={"csrf_token": token, "email": "o@example.com",
                                "username": "owner", "password": "owner-pass-1",
                                "password_confirm": "owner-pass-1"})
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Trackeep" in page
    # The capabilities' states are for the admin (Users page), not the dashboard (issue 15).
    assert "sessions: memory (ok)" not in page
    assert "sessions: memory (ok)" in client.get("/admin/users").get_data(as_text=True)


def _trackeep(*args, env_extra=None, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "trackeep_desktop", *args], capture_output=True,
                          text=True, env=env, timeout=60, cwd=ROOT)


@pytest.mark.slow
def test_cli_db_status_and_upgrade(tmp_path, empty_database_url):
    env = {"TRACKEEP_DATABASE_URL": empty_database_url, "TRACKEEP_DATA_DIR": str(tmp_path / "d")}
    before = _trackeep("db", "status", env_extra=env, tmp_path=tmp_path)
    assert before.returncode == 0, before.stderr
    assert "pending  m0001_foundation" in before.stdout
    upgraded = _trackeep("db", "upgrade", env_extra=env, tmp_path=tmp_path)
    assert "applied: m0001_foundation" in upgraded.stdout
    after = _trackeep("db", "status", env_extra=env, tmp_path=tmp_path)
    assert "applied  m0001_foundation" in after.stdout
    assert "0 pending" in after.stdout
    again = _trackeep("db", "upgrade", env_extra=env, tmp_path=tmp_path)
    assert "up to date" in again.stdout


def test_cli_reports_configuration_errors_without_a_traceback(tmp_path):
    result = _trackeep("db", "status", env_extra={"TRACKEEP_DATABASE_URL": "oracle://x",
                                                  "TRACKEEP_DATA_DIR": str(tmp_path)},
                       tmp_path=tmp_path)
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "Traceback" not in result.stderr


def test_request_bodies_are_bounded_outside_upload_views(client):
    body = b"x" * (17 * 1024 * 1024)
    response = client.post("/api/v1/auth/login", data=body,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.get_json() == {"error": "request body too large"}


def test_anonymous_form_post_without_csrf_cookie_is_refused_before_parsing(client):
    response = client.post("/login", data={"login": "x", "password": "y"})
    assert response.status_code == 403


@pytest.mark.parametrize("timestamp", [0, 1.5, 1700000000.123, 1700000000.9999994,
                                       1700000000.9999996, 1767225599.9999999, -1.25,
                                       253402300799.0, -62135596800.0, 2**31 + 0.5])
def test_iso_time_matches_datetime_to_the_second(timestamp):
    import datetime as dt

    from trackeep_desktop.accounts.users import iso_time

    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(microsecond=0)
    assert iso_time(timestamp) == moment.isoformat().replace("+00:00", "Z")

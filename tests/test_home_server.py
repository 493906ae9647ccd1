"""Home-server mode: the warning for listening beyond loopback, and the files in packaging/
(the compose file and the systemd unit) checked for structure and for real setting names."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from trackeep_desktop.config import SETTINGS_BY_NAME, load_config
from trackeep_desktop.web.server import is_loopback

from processes import listening_addresses

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
WARNING = "beyond this machine, with no HTTPS reverse proxy"


def _settings_named(variables) -> list[str]:
    """The TRACKEEP_* names among ``variables`` that are not settings (should be none)."""
    return [name for name in variables
            if name.startswith("TRACKEEP_") and name[9:] not in SETTINGS_BY_NAME]


# ---------------------------------------------------------------------------- serve --host


def _log_after_start(instance) -> str:
    """The server's log once it has started (the warning comes before the ready line)."""
    return instance.wait_for_text("ready:")


@pytest.mark.slow
def test_listening_beyond_loopback_warns_without_an_https_proxy(serve, tmp_path):
    # No traffic goes to the wildcard address: the test only reads what the server printed
    # and which address its socket is bound to.
    instance = serve("--host", "0.0.0.0", data_dir=tmp_path / "open")
    try:
        assert instance.url.startswith("http://0.0.0.0:")
        assert WARNING in _log_after_start(instance)
        assert listening_addresses(int(instance.url.rsplit(":", 1)[1])) == {"0.0.0.0"}
    finally:
        assert instance.stop() == 0
    assert "Traceback" not in instance.output()


@pytest.mark.slow
def test_no_warning_on_loopback_or_behind_a_trusted_proxy(serve, tmp_path):
    behind_proxy = serve("--host", "0.0.0.0", data_dir=tmp_path / "proxied",
                         env_extra={"TRACKEEP_TRUSTED_PROXIES": "127.0.0.1"})
    loopback = serve(data_dir=tmp_path / "local")
    try:
        for instance in (behind_proxy, loopback):
            assert WARNING not in _log_after_start(instance)
    finally:
        assert behind_proxy.stop() == 0
        assert loopback.stop() == 0


def test_only_loopback_addresses_count_as_loopback():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.2", "example.org"))


# --------------------------------------------------------------------------- compose.yaml


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PACKAGING / "compose.yaml").read_text())


def test_compose_runs_the_app_with_postgres_and_redis(compose):
    services = compose["services"]
    assert set(services) == {"trackeep", "postgres", "redis"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
    app = services["trackeep"]
    for dependency in ("postgres", "redis"):
        assert app["depends_on"][dependency]["condition"] == "service_healthy"
    assert "/health" in " ".join(app["healthcheck"]["test"])
    assert all(str(p).startswith("127.0.0.1:") for p in app["ports"]), "publish on loopback"
    declared = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in declared


def test_compose_settings_are_real_settings_that_load(compose, tmp_path):
    environment = compose["services"]["trackeep"]["environment"]
    assert _settings_named(environment) == []
    config = load_config(environ={**environment, "TRACKEEP_DATA_DIR": str(tmp_path)})
    assert config["REDIS_REQUIRED"] is True
    assert config["TRUSTED_PROXIES"]

    database = urlparse(environment["TRACKEEP_DATABASE_URL"])
    postgres = compose["services"]["postgres"]["environment"]
    assert database.hostname == "postgres"
    assert database.path == f"/{postgres['POSTGRES_DB']}"
    assert (database.username, database.password) == (postgres["POSTGRES_USER"],
                                                      postgres["POSTGRES_PASSWORD"])
    assert urlparse(environment["TRACKEEP_REDIS_URL"]).hostname == "redis"


def test_compose_builds_from_the_checkout(compose):
    build = compose["services"]["trackeep"]["build"]
    dockerfile = (PACKAGING / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile.is_file()
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"{dockerfile.name} copies a missing {source}"


# --------------------------------------------------------------------------- systemd unit


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as ``{section: {key: [values]}}`` (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_unit_runs_serve_restarts_and_is_hardened():
    unit = _unit(PACKAGING / "trackeep.service")
    service = unit["Service"]
    assert service["ExecStart"][0].split()[1:] == ["serve"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes", "DynamicUser": "yes",
                       "CapabilityBoundingSet": ""}.items():
        assert service[key] == [value], key
    variables = [v.split("=", 1)[0] for v in service["Environment"]]
    assert _settings_named(variables) == []
    assert "TRACKEEP_DATA_DIR" in variables
    assert "TRACKEEP_HOST=127.0.0.1" in service["Environment"]


def test_systemd_accepts_every_line_of_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the structure test above still ran")
    text = (PACKAGING / "trackeep.service").read_text()
    copy = tmp_path / "trackeep.service"
    copy.write_text(text.replace("/usr/local/bin/trackeep-server", shutil.which("true")))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=60)
    complaints = [ln for ln in (result.stdout + result.stderr).splitlines()
                  if "trackeep.service" in ln]
    assert result.returncode == 0, result.stdout + result.stderr
    assert complaints == [], result.stdout + result.stderr

"""Every setting in one table, and the one order they load in.

Order, later wins: the defaults below → ``trackeep.toml`` in the data folder → the
environment (``TRACKEEP_<NAME>``) → the mapping given to ``create_app`` (or CLI options).
The README's settings table lists every entry of :data:`SETTINGS`; a test keeps them in step.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trackeep_desktop.paths import default_data_dir
from trackeep_desktop.storage.db import ConfigurationError

log = logging.getLogger(__name__)

ENV_PREFIX = "TRACKEEP_"
CONFIG_FILE = "trackeep.toml"
SECRET_KEY_FILE = "secret_key"


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a yes/no value: {value!r}")


def parse_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def parse_optional_str(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _optional_float(value: Any) -> float | None:
    text = "" if value is None else str(value).strip()
    return float(text) if text else None


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = str


SETTINGS: list[Setting] = [
    Setting("DATA_DIR", None, "Folder for the database, files and the secret key "
            "(default: the user's data folder, e.g. ~/.local/share/Trackeep).", parse_optional_str),
    Setting("DATABASE_URL", None, "sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB "
            "(default: trackeep.db in the data folder).", parse_optional_str),
    Setting("REDIS_URL", None, "redis://HOST:PORT/DB, rediss:// (TLS), unix:///PATH?db=DB "
            "or redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE[/DB] URL of Redis; unset means "
            "the embedded in-memory implementations.", parse_optional_str),
    Setting("REDIS_REQUIRED", False, "Refuse to start when Redis is configured but does not "
            "answer, and report 503 on /health while it is down.", parse_bool),
    Setting("KEY_PREFIX", "tk", "Prefix of every Redis key and channel.", str),
    Setting("HOST", "127.0.0.1", "Interface to listen on; anything but loopback needs to be "
            "asked for.", str),
    Setting("PORT", 8080, "TCP port (0 picks a free one).", int),
    Setting("SECRET_KEY", None, "Key that signs cookies and tokens (default: generated once "
            "and kept in the data folder).", parse_optional_str),
    Setting("TRUSTED_PROXIES", [], "Comma-separated addresses (or networks, 10.0.0.0/8) of "
            "reverse proxies whose X-Forwarded-For is believed.", parse_list),
    Setting("PUBLIC_URL", None, "The address users reach this server at (https://trackeep."
            "example.org): the base of every link the program hands out (share links, paging "
            "links), instead of the request's Host header.", parse_optional_str),
    Setting("ALLOWED_HOSTS", [], "Comma-separated host names the server answers to (a "
            "leading dot allows subdomains, * any). A server on loopback answers its loopback "
            "names, these and PUBLIC_URL's host; one beyond loopback checks only when given "
            "(or PUBLIC_URL is).", parse_list),
    Setting("CORS_ORIGINS", [], "Comma-separated origins (https://app.example.org) that may "
            "call the API from another site with a bearer token or API key (never with the "
            "session cookie).", parse_list),
    Setting("CORS_ALLOW_EXTENSIONS", True, "Let any browser extension (chrome-extension://, "
            "moz-extension://) call the API with a bearer token or API key (never with the "
            "session cookie).", parse_bool),
    Setting("METRICS_TOKEN", None, "Bearer token that opens /metrics to a scraper that is not "
            "on this machine (an admin session opens it too).", parse_optional_str),
    Setting("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR.", str),
    Setting("LOG_FORMAT", "text", "text, or json for one JSON object per line.", str),
    Setting("SERVER", None, "HTTP server of `trackeep serve`: gevent (the default when "
            "installed; real WebSockets), waitress (pure Python, for hosts where gevent cannot "
            "be installed; HTTP/1.1 only, so Socket.IO runs on long-polling) or werkzeug.",
            parse_optional_str),
    Setting("ASYNC_MODE", "threading", "Socket.IO driver: threading (desktop, tests) or gevent "
            "(what `trackeep serve` uses).", str),
    Setting("MAX_IN_FLIGHT", 32, "Most requests worked on at once; the others wait in line "
            "(0: no bound). Socket.IO and /health are not counted.", int),
    Setting("QUEUE_TIMEOUT", 1.5, "Seconds a request waits in line for one of MAX_IN_FLIGHT "
            "slots before it is answered 503 with Retry-After.", float),
    Setting("CONCURRENCY", 1000, "Most connections served at once by `trackeep serve`.", int),
    Setting("AUTO_MIGRATE", True, "Upgrade the database schema at start-up.", parse_bool),
    Setting("CACHE_MAX_ENTRIES", 10_000, "Most entries of the embedded cache (LRU).", int),
    Setting("CACHE_MAX_BYTES", 64 * 1024 * 1024, "Most bytes of the embedded cache (LRU).", int),
    Setting("COUNTER_FLUSH_INTERVAL", 30, "Seconds between flushes of counters to the "
            "database (0: only at shutdown).", float),
    Setting("SOCKET_RECHECK_INTERVAL", 30, "Seconds between checks of the live sockets signed "
            "in by API keys against the database (revocations no announcement reached; "
            "0: never).", float),
    Setting("SESSION_TTL", 24 * 3600, "Sliding lifetime of a session in seconds.", int),
    Setting("SESSION_REMEMBER_TTL", 30 * 24 * 3600, "Sliding lifetime of a \"remember me\" "
            "session in seconds.", int),
    Setting("REGISTRATION_OPEN", False, "Let anyone create an account with "
            "`POST /api/v1/auth/register` (the first account, the owner, can always be "
            "created; after it, admins create users).", parse_bool),
    Setting("PASSWORD_MIN_LENGTH", 8, "Fewest characters a password may have.", int),
    Setting("API_RATE_LIMIT", 100, "Requests one client may make to /api/ per "
            "API_RATE_WINDOW seconds (sliding window).", int),
    Setting("API_RATE_WINDOW", 60, "Window of API_RATE_LIMIT, in seconds.", float),
    Setting("UI_RATE_LIMIT", 1000, "Requests to /api/ per API_RATE_WINDOW from one signed-in "
            "browser session (the web UI and the desktop window), counted per session instead "
            "of per address: every window on a desktop shares 127.0.0.1.", int),
    Setting("AUTH_RATE_LIMIT", 5, "Login, device-pairing and two-factor attempts allowed per "
            "AUTH_RATE_WINDOW seconds, per client and per account.", int),
    Setting("AUTH_RATE_WINDOW", 300, "Window of AUTH_RATE_LIMIT, in seconds.", float),
    Setting("PAIRING_CODE_TTL", 300, "Seconds a device pairing code stays valid.", int),
    Setting("TRASH_RETENTION_DAYS", 30, "Days an item stays in the trash before it is purged "
            "for good (0: never purge automatically).", float),
    Setting("FETCH_METADATA", True, "Fetch the title, description and icon of new bookmarks "
            "in the background.", parse_bool),
    Setting("FETCH_PRIVATE_ADDRESSES", True, "Let bookmark metadata fetches reach loopback, "
            "private and link-local addresses (handy on a desktop; turn it off on a server "
            "that others use, so they cannot probe your network through it).", parse_bool),
    Setting("MAX_UPLOAD_MB", 512, "Largest file one upload may carry, in MB (larger ones are "
            "refused with 413).", float),
    Setting("MAX_IMPORT_MB", 4096, "Largest archive or bookmark file an import may carry, in "
            "MB.", float),
    Setting("SHARE_RATE_LIMIT", 60, "Share-link downloads one client may make per minute.",
            int),
    Setting("BACKUP_DIR", None, "Folder of backups, made by `trackeep backup`, the Settings "
            "page and the schedule (default: backups in the data folder).", parse_optional_str),
    Setting("BACKUP_INTERVAL_HOURS", None, "Hours between scheduled backups; 0 turns them "
            "off (default: 24 in the desktop app, 0 for `trackeep serve`).", _optional_float),
    Setting("BACKUP_KEEP", 7, "How many backups the schedule and \"Back up now\" keep in "
            "BACKUP_DIR (older ones are deleted; 0 keeps every one).", int),
]

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(name: str, value: Any) -> Any:
    try:
        return SETTINGS_BY_NAME[name].parse(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"setting {name} ({ENV_PREFIX}{name}): {exc}") from exc


def _from_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Known settings from a mapping, accepting ``NAME`` or ``TRACKEEP_NAME`` keys."""
    out = {}
    for key, value in mapping.items():
        name = key[len(ENV_PREFIX):] if key.startswith(ENV_PREFIX) else key
        name = name.upper()
        if name in SETTINGS_BY_NAME and value is not None:
            out[name] = _coerce(name, value)
    return out


def load_config(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Resolve every setting; returns ``{NAME: value}`` with all of :data:`SETTINGS`.

    Keys of ``overrides`` that are not settings (Flask's ``TESTING`` and the like) are
    passed through unchanged.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    env_values = _from_mapping({k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)})
    explicit = _from_mapping(overrides)

    data_dir = explicit.get("DATA_DIR") or env_values.get("DATA_DIR") or str(default_data_dir())
    data_path = Path(data_dir).expanduser().resolve()

    config: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    config_file = data_path / CONFIG_FILE
    if config_file.is_file():
        try:
            with config_file.open("rb") as fh:
                config.update(_from_mapping({k.upper(): v for k, v in tomllib.load(fh).items()}))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{config_file}: {exc}") from exc
    config.update(env_values)
    config.update(explicit)
    config["DATA_DIR"] = str(data_path)

    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{data_path / 'trackeep.db'}"
    config["LOG_LEVEL"] = str(config["LOG_LEVEL"]).upper()
    if config["LOG_LEVEL"] not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigurationError(f"setting LOG_LEVEL: unknown level {config['LOG_LEVEL']!r}")
    if config["LOG_FORMAT"] not in ("text", "json"):
        raise ConfigurationError("setting LOG_FORMAT: use text or json")
    if config["ASYNC_MODE"] not in ("threading", "gevent"):
        raise ConfigurationError("setting ASYNC_MODE: use threading or gevent")
    if config["SERVER"] not in (None, "gevent", "waitress", "werkzeug"):
        raise ConfigurationError(f"setting SERVER: unknown server {config['SERVER']!r} "
                                 "(use gevent, waitress or werkzeug)")
    if config["SERVER"] is not None and (config["SERVER"] == "gevent") != (
            config["ASYNC_MODE"] == "gevent"):
        raise ConfigurationError(f"settings SERVER and ASYNC_MODE: the {config['SERVER']} "
                                 f"server cannot run the {config['ASYNC_MODE']} driver")
    if not 0 <= config["PORT"] <= 65535:
        raise ConfigurationError(f"setting PORT: {config['PORT']} is not a TCP port")
    for name in ("PASSWORD_MIN_LENGTH", "API_RATE_LIMIT", "UI_RATE_LIMIT", "API_RATE_WINDOW",
                 "AUTH_RATE_LIMIT", "AUTH_RATE_WINDOW", "PAIRING_CODE_TTL", "SESSION_TTL",
                 "SESSION_REMEMBER_TTL", "MAX_UPLOAD_MB", "MAX_IMPORT_MB", "SHARE_RATE_LIMIT"):
        if not config[name] > 0:
            raise ConfigurationError(f"setting {name}: must be positive, not {config[name]}")
    if config["MAX_IN_FLIGHT"] < 0 or config["QUEUE_TIMEOUT"] < 0:
        raise ConfigurationError("settings MAX_IN_FLIGHT and QUEUE_TIMEOUT: 0 or more")
    if config["BACKUP_KEEP"] < 0:
        raise ConfigurationError("setting BACKUP_KEEP: must be 0 (keep all) or more")
    if config["BACKUP_INTERVAL_HOURS"] is not None and config["BACKUP_INTERVAL_HOURS"] < 0:
        raise ConfigurationError("setting BACKUP_INTERVAL_HOURS: must be 0 (off) or more")
    if config["TRASH_RETENTION_DAYS"] < 0:
        raise ConfigurationError("setting TRASH_RETENTION_DAYS: must be 0 (never) or more")
    if config["PUBLIC_URL"]:
        public = urlsplit(config["PUBLIC_URL"])
        if public.scheme not in ("http", "https") or not public.hostname \
                or public.query or public.fragment:
            raise ConfigurationError("setting PUBLIC_URL: use http(s)://HOST[:PORT][/PATH], "
                                     f"not {config['PUBLIC_URL']!r}")
        config["PUBLIC_URL"] = config["PUBLIC_URL"].rstrip("/")
    config["ALLOWED_HOSTS"] = [h.lower() for h in config["ALLOWED_HOSTS"]]
    for origin in config["CORS_ORIGINS"]:
        parts = urlsplit(origin)
        if origin == "*" or not parts.scheme or not parts.netloc or parts.path not in ("", "/") \
                or parts.query or parts.fragment:
            raise ConfigurationError("setting CORS_ORIGINS: list origins such as "
                                     f"https://app.example.org, not {origin!r}")
    config["CORS_ORIGINS"] = [o.rstrip("/").lower() for o in config["CORS_ORIGINS"]]
    for proxy in config["TRUSTED_PROXIES"]:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise ConfigurationError(f"setting TRUSTED_PROXIES: {exc}") from exc

    for key, value in overrides.items():
        if key.upper().removeprefix(ENV_PREFIX) not in SETTINGS_BY_NAME:
            config[key] = value
    return config


def ensure_secret_key(config: dict[str, Any]) -> str:
    """The configured secret key, or the one kept in the data folder (made on first run)."""
    if config.get("SECRET_KEY"):
        return config["SECRET_KEY"]
    path = Path(config["DATA_DIR"]) / SECRET_KEY_FILE
    try:
        key = path.read_text().strip()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # Create with 0600 so the key is never readable by other users, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    log.info("generated a new secret key in %s", path)
    return key

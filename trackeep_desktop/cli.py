"""The ``trackeep`` command.

``trackeep``                 the desktop app: a window, or a server with its URL when headless
``trackeep serve``           the home-server mode (gevent, real WebSockets)
``trackeep db upgrade``      apply pending schema migrations
``trackeep db status``       list applied and pending migrations
``trackeep settings``        print every setting, its value and where it is documented

Only the standard library is imported before the command is known: ``serve`` must
monkey-patch with gevent before anything else imports ``socket`` or ``threading`` users.
"""

from __future__ import annotations

import argparse
import os
import sys


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data folder (TRACKEEP_DATA_DIR)")
    parser.add_argument("--database-url", help="sqlite:///... or postgresql://... "
                        "(TRACKEEP_DATABASE_URL)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (TRACKEEP_LOG_LEVEL)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackeep", description="Trackeep: your bookmarks, tasks, notes and files.")
    _common_options(parser)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run the server (home-server mode)")
    _common_options(serve)
    serve.add_argument("--host", help="interface to listen on (TRACKEEP_HOST, default "
                       "127.0.0.1; other addresses must be asked for)")
    serve.add_argument("--port", type=int, help="TCP port (TRACKEEP_PORT, default 8080; 0 = any)")
    serve.add_argument("--redis-url", help="Redis URL (TRACKEEP_REDIS_URL; unset = embedded)")
    serve.add_argument("--concurrency", type=int,
                       help="most connections at once (TRACKEEP_CONCURRENCY)")
    serve.add_argument("--async-mode", choices=["gevent", "threading"],
                       help="server driver (TRACKEEP_ASYNC_MODE; default gevent if installed)")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    for name, text in (("upgrade", "apply pending migrations"),
                       ("status", "show applied and pending migrations")):
        sub = db_commands.add_parser(name, help=text)
        _common_options(sub)

    settings = commands.add_parser("settings", help="print every setting and its value")
    _common_options(settings)
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    names = ["data_dir", "database_url", "log_level", "host", "port", "redis_url",
             "concurrency", "async_mode"]
    return {n.upper(): getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _gevent_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("gevent", "geventwebsocket"))


def prepare_serve(args: argparse.Namespace) -> dict:
    """Choose the driver and, for gevent, monkey-patch before anything else is imported
    (peewee binds ``threading.local`` at import time, redis-py ``socket``)."""
    overrides = _overrides(args)
    mode = overrides.get("ASYNC_MODE") or os.environ.get("TRACKEEP_ASYNC_MODE")
    if mode is None:
        mode = "gevent" if _gevent_available() else "threading"
    overrides["ASYNC_MODE"] = mode
    if mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
    return overrides


def cmd_serve(overrides: dict) -> int:
    from .server import serve

    serve(overrides)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from . import migrations
    from .config import load_config
    from .db import bind_database

    config = load_config(_overrides(args))
    db = bind_database(config["DATABASE_URL"])
    if args.db_command == "upgrade":
        applied = migrations.upgrade_safely(db)
        print("applied: " + ", ".join(applied) if applied else "the database is up to date")
    else:
        status = migrations.status(db)
        for name in status.applied:
            print(f"applied  {name}")
        for name in status.pending:
            print(f"pending  {name}")
        print(f"{len(status.applied)} applied, {len(status.pending)} pending")
    db.close()
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from .config import ENV_PREFIX, SETTINGS, load_config

    config = load_config(_overrides(args))
    for setting in SETTINGS:
        value = config[setting.name]
        if setting.name == "SECRET_KEY" and value:
            value = "(set)"
        print(f"{ENV_PREFIX}{setting.name}={'' if value is None else value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        from . import __version__

        print(f"trackeep {__version__}")
        return 0
    serve_overrides = prepare_serve(args) if args.command == "serve" else None
    from .db import ConfigurationError

    try:
        if args.command == "serve":
            return cmd_serve(serve_overrides)
        if args.command == "db":
            return cmd_db(args)
        if args.command == "settings":
            return cmd_settings(args)
        from .desktop import run_desktop

        return run_desktop(_overrides(args))
    except ConfigurationError as exc:
        print(f"trackeep: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

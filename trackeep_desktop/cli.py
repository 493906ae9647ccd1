"""The ``trackeep`` command.

``trackeep``                 the desktop app: a window, or a server with its URL when headless
``trackeep serve``           the home-server mode (gevent, real WebSockets)
``trackeep db upgrade``      apply pending schema migrations
``trackeep db status``       list applied and pending migrations
``trackeep settings``        print every setting, its value and where it is documented
``trackeep import FILE --user NAME``  import a bookmark file or a full export into an account
``trackeep search reindex``   rebuild the search index from the items (derived state)
``trackeep leaderboards rebuild``  rewrite every leaderboard from the database (derived state)
``trackeep stats rebuild``    recount the kept counts (dashboard, tags, list totals) from the rows
``trackeep user reset-password NAME``  set a new password for an account that cannot sign in
``trackeep backup [--to DIR]``  an online backup of the database and the files
``trackeep restore ARCHIVE [--force]``  restore a backup into an empty data folder and database

Only the standard library is imported before the command is known: ``serve`` must
monkey-patch with gevent before anything else imports ``socket`` or ``threading`` users.
"""

from __future__ import annotations

import argparse
import os
import sys

#: The HTTP servers of ``trackeep serve`` and the Socket.IO driver each one needs.
SERVERS = {"gevent": "gevent", "waitress": "threading", "werkzeug": "threading"}


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
    serve.add_argument("--server", choices=list(SERVERS),
                       help="HTTP server (TRACKEEP_SERVER): gevent, the default when installed "
                       "(real WebSockets); waitress, pure Python, where gevent cannot be "
                       "installed (HTTP/1.1 only: live updates on long-polling); werkzeug")
    serve.add_argument("--async-mode", choices=["gevent", "threading"],
                       help="Socket.IO driver (TRACKEEP_ASYNC_MODE): gevent means --server "
                       "gevent, threading --server werkzeug unless --server says otherwise")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    for name, text in (("upgrade", "apply pending migrations"),
                       ("status", "show applied and pending migrations")):
        sub = db_commands.add_parser(name, help=text)
        _common_options(sub)

    settings = commands.add_parser("settings", help="print every setting and its value")
    _common_options(settings)

    imports = commands.add_parser("import", help="import a browser's bookmark file (.html) or "
                                  "a Trackeep full export (.zip) into an account")
    _common_options(imports)
    imports.add_argument("file", help="the bookmark file or export archive")
    imports.add_argument("--user", required=True, help="the account to import into "
                         "(username or email)")

    search = commands.add_parser("search", help="the search index")
    search_commands = search.add_subparsers(dest="search_command", required=True)
    reindex = search_commands.add_parser("reindex", help="rebuild the search index from the "
                                         "bookmarks, tasks, notes and files")
    _common_options(reindex)

    stats = commands.add_parser("stats", help="the kept counts (derived state)")
    stats_commands = stats.add_subparsers(dest="stats_command", required=True)
    recount = stats_commands.add_parser(
        "rebuild", help="recount what the dashboard, the tag list and the lists' totals show "
        "from the items and tags (the writes keep these counts; this repairs them)")
    _common_options(recount)

    leaderboards = commands.add_parser("leaderboards", help="leaderboards (derived state)")
    leaderboard_commands = leaderboards.add_subparsers(dest="leaderboards_command",
                                                       required=True)
    rebuild = leaderboard_commands.add_parser(
        "rebuild", help="rewrite every leaderboard from the database, with the rebuilders "
        "the domains register (what a recovery from a Redis outage also runs)")
    _common_options(rebuild)
    rebuild.add_argument("--redis-url", help="Redis URL (TRACKEEP_REDIS_URL; unset = embedded)")

    backup = commands.add_parser("backup", help="an online, consistent backup of the "
                                 "database and the files into one archive")
    _common_options(backup)
    backup.add_argument("--to", help="folder to write it into (TRACKEEP_BACKUP_DIR, default "
                        "backups in the data folder)")

    restore = commands.add_parser("restore", help="restore a backup into an empty data "
                                  "folder and database (every checksum is checked first)")
    _common_options(restore)
    restore.add_argument("archive", help="the backup archive (trackeep-backup-*.tar)")
    restore.add_argument("--force", action="store_true", help="replace what the data folder "
                         "and the database already hold")

    user = commands.add_parser("user", help="accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    reset = user_commands.add_parser(
        "reset-password", help="set a new password for an account (an owner who forgot "
        "theirs) and end its sessions; asks for the password twice")
    _common_options(reset)
    reset.add_argument("login", help="the account's username or email")
    reset.add_argument("--stdin", action="store_true",
                       help="read the new password from the first line of standard input")
    reset.add_argument("--disable-2fa", action="store_true",
                       help="also turn off two-factor authentication (a lost authenticator)")
    reset.add_argument("--keep-api-keys", action="store_true",
                       help="keep the account's API keys and paired devices (by default a "
                            "reset revokes them)")
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    names = ["data_dir", "database_url", "log_level", "host", "port", "redis_url",
             "concurrency", "async_mode", "server"]
    return {n.upper(): getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _gevent_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("gevent", "geventwebsocket"))


def prepare_serve(args: argparse.Namespace) -> dict:
    """Choose the server and its Socket.IO driver and, for gevent, monkey-patch before
    anything else is imported (peewee binds ``threading.local`` at import time, redis-py
    ``socket``). A server given (``--server``, TRACKEEP_SERVER) decides the driver; else the
    driver given (``--async-mode``) decides the server; else gevent when it is installed."""
    overrides = _overrides(args)
    server = overrides.get("SERVER") or os.environ.get("TRACKEEP_SERVER") or None
    mode = overrides.get("ASYNC_MODE") or os.environ.get("TRACKEEP_ASYNC_MODE") or None
    if server in SERVERS:
        mode = SERVERS[server]
    elif server is None:
        if mode is None:
            mode = "gevent" if _gevent_available() else "threading"
        server = "gevent" if mode == "gevent" else "werkzeug"
    # An unknown name goes on to the settings' check, which says what is allowed.
    overrides["SERVER"], overrides["ASYNC_MODE"] = server, mode
    if mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
    return overrides


def cmd_serve(overrides: dict) -> int:
    from trackeep_desktop.web.server import serve

    serve(overrides)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from trackeep_desktop.config import load_config
    from trackeep_desktop.storage import migrations
    from trackeep_desktop.storage.db import bind_database

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
    from trackeep_desktop.config import ENV_PREFIX, SETTINGS, load_config

    config = load_config(_overrides(args))
    for setting in SETTINGS:
        value = config[setting.name]
        if setting.name == "SECRET_KEY" and value:
            value = "(set)"
        print(f"{ENV_PREFIX}{setting.name}={'' if value is None else value}")
    return 0


class _ProgressPrinter:
    """Prints an import's progress to stderr: each stage at every tenth of the way."""

    def __init__(self):
        self.shown: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        step = 10 * done // total if total else 10
        if self.shown.get(stage, -1) < step:
            self.shown[stage] = step
            print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)


def cmd_import(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from trackeep_desktop import accounts, transfer
    from trackeep_desktop.app import create_app
    from trackeep_desktop.storage import changes
    from trackeep_desktop.storage.db import connection

    path = Path(args.file)
    if not path.is_file():
        print(f"trackeep: no such file: {path}", file=sys.stderr)
        return 2
    app = create_app(_overrides(args))
    state = app.extensions["trackeep"]
    try:
        with app.app_context(), connection(state.db), changes.use_pipeline(state.pipeline):
            user = accounts.find_user_by_login(args.user)
            if user is None:
                print(f"trackeep: no account {args.user!r}", file=sys.stderr)
                return 1
            progress = transfer.pubsub_progress(state.capabilities.pubsub, user.id,
                                                also=_ProgressPrinter())
            kind = transfer.detect_format(path)
            print(f"importing {path.name} into {user.username}'s account ({kind})",
                  file=sys.stderr)
            try:
                if kind == "archive":
                    report = transfer.import_archive(user.id, path, progress=progress,
                                                     store=state.blob_store)
                else:
                    with path.open("rb") as fh:
                        report = transfer.import_bookmarks(user.id, fh, now=time.time(),
                                                           progress=progress)
            except transfer.TransferError as exc:
                print(f"trackeep: {exc.message}", file=sys.stderr)
                return 1
            transfer.publish_finished(state.capabilities.pubsub, user.id, kind, report)
    finally:
        state.close()
    print("imported: " + ", ".join(f"{n} {name}" for name, n in report.counts.items()))
    if report.total:
        print(f"skipped: {report.duplicates} already saved, {report.invalid} not http(s) "
              f"links (of {report.total} in the file)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    import time

    from trackeep_desktop import search
    from trackeep_desktop.app import create_app
    from trackeep_desktop.storage import changes
    from trackeep_desktop.storage.db import connection

    app = create_app(_overrides(args))
    state = app.extensions["trackeep"]
    started = time.perf_counter()
    try:
        with connection(state.db), changes.use_pipeline(state.pipeline):
            count = search.rebuild_index(store=state.blob_store, progress=lambda n: (
                print(f"  indexed {n}", file=sys.stderr, flush=True) if n % 10_000 == 0
                else None))
    finally:
        state.close()
    print(f"reindexed {count} item(s) in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    import time

    from trackeep_desktop import items
    from trackeep_desktop.config import load_config
    from trackeep_desktop.storage import db as dbmod
    from trackeep_desktop.storage import migrations

    config = load_config(_overrides(args))
    db = dbmod.bind_database(config["DATABASE_URL"])
    started = time.perf_counter()
    try:
        with dbmod.connection(db):
            if migrations.status(db).pending:
                print("trackeep: the database has pending migrations: run trackeep db upgrade",
                      file=sys.stderr)
                return 1
            rebuilt = items.rebuild_counts()
    finally:
        if not db.is_closed():
            db.close()
    print(f"rebuilt {rebuilt} count(s) in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_leaderboards(args: argparse.Namespace) -> int:
    from trackeep_desktop.app import create_app
    from trackeep_desktop.capabilities.fallback import OUTAGE_ERRORS, CapabilityUnavailable
    from trackeep_desktop.storage.db import connection

    app = create_app(_overrides(args))
    state = app.extensions["trackeep"]
    capabilities = state.capabilities
    try:
        with app.app_context(), connection(state.db):
            try:
                report = capabilities.rebuild_leaderboards()
            except (CapabilityUnavailable, *OUTAGE_ERRORS) as exc:
                print(f"trackeep: Redis is unavailable, nothing was rebuilt: {exc}",
                      file=sys.stderr)
                return 1
    finally:
        state.close()
    for name, boards in report.boards.items():
        print(f"  {name}: {len(boards)} board(s)" + (f": {', '.join(boards)}" if boards else ""))
    for name in report.failed:
        print(f"trackeep: the {name} rebuilder failed (its traceback is in the log)",
              file=sys.stderr)
    registered = len(report.boards) + len(report.failed)
    print(f"rebuilt {report.board_count} board(s) on {capabilities.backend} with "
          f"{registered} rebuilder(s)" + ("" if registered else "; no domain keeps leaderboards"))
    if capabilities.redis is None and registered:
        print("(without Redis each running Trackeep keeps its boards in its own memory; this "
              "rebuilt only this command's copy)")
    return 1 if report.failed else 0


def cmd_backup(args: argparse.Namespace) -> int:
    """``backup``: needs the settings only, never the application (it runs beside one)."""
    from trackeep_desktop import __version__, backup
    from trackeep_desktop.config import load_config

    config = load_config(_overrides(args))
    folder = args.to or backup.backup_dir(config)
    progress = _ProgressPrinter()
    try:
        info = backup.create_backup(database_url=config["DATABASE_URL"],
                                    data_dir=config["DATA_DIR"], dest_dir=folder,
                                    version=__version__, progress=progress)
    except backup.BackupError as exc:
        print(f"trackeep: {exc.message}", file=sys.stderr)
        return 1
    rows = sum(info.counts.values())
    print(f"backed up {rows} row(s) in {len(info.counts)} table(s) to {info.path} "
          f"({info.size} bytes, {info.seconds:.2f} s)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from trackeep_desktop import backup
    from trackeep_desktop.config import load_config

    config = load_config(_overrides(args))
    try:
        report = backup.restore_backup(args.archive, data_dir=config["DATA_DIR"],
                                       database_url=config["DATABASE_URL"], force=args.force,
                                       progress=_ProgressPrinter())
    except backup.BackupError as exc:
        print(f"trackeep: {exc.message}", file=sys.stderr)
        return 1
    print(f"restored a {report.database} backup of Trackeep {report.version} into "
          f"{config['DATA_DIR']}: {sum(report.counts.values())} row(s), {report.files} "
          "file blob(s)")
    return 0


def _read_new_password(from_stdin: bool) -> str | None:
    """The new password: one line of standard input, or typed twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass("New password: ")
    if getpass.getpass("The same again: ") != password:
        print("trackeep: the two passwords differ; nothing was changed", file=sys.stderr)
        return None
    return password


def cmd_user(args: argparse.Namespace) -> int:
    """``user reset-password``: the accounts domain on the database and the capabilities,
    with no web application (the sessions end through the same store and pub/sub as a
    running instance's, so with Redis its live sockets close too)."""
    import time

    from trackeep_desktop import accounts
    from trackeep_desktop.accounts import sessions
    from trackeep_desktop.capabilities import build_capabilities
    from trackeep_desktop.capabilities.durable import (
        DatabaseCounterBackup,
        DatabaseSessionBackup,
    )
    from trackeep_desktop.config import load_config
    from trackeep_desktop.storage import migrations
    from trackeep_desktop.storage.db import bind_database, checkpoint, connection
    from trackeep_desktop.web.observability import configure_logging

    password = _read_new_password(args.stdin)
    if password is None:
        return 1
    config = load_config(_overrides(args))
    configure_logging(config["LOG_LEVEL"], config["LOG_FORMAT"])
    db = bind_database(config["DATABASE_URL"])
    try:
        if config["AUTO_MIGRATE"]:
            migrations.upgrade_safely(db)
        capabilities = build_capabilities(
            config["REDIS_URL"], key_prefix=config["KEY_PREFIX"],
            session_backup=DatabaseSessionBackup(db), counter_backup=DatabaseCounterBackup(db),
            redis_required=config["REDIS_REQUIRED"], clock=config.get("CLOCK"))
        try:
            with connection(db):
                user = accounts.find_user_by_login(args.login)
                if user is None:
                    print(f"trackeep: no account {args.login!r}", file=sys.stderr)
                    return 1
                try:
                    accounts.set_password(user, password, now=time.time(),
                                          min_password_length=config["PASSWORD_MIN_LENGTH"])
                except accounts.InvalidInput as exc:
                    print(f"trackeep: {exc.message} Nothing was changed.", file=sys.stderr)
                    return 1
                if args.disable_2fa and user.totp_enabled:
                    accounts.turn_off_totp(user, now=time.time())
                    print("two-factor authentication is off; turn it on again in Settings")
                ended = sessions.end_sessions(capabilities.sessions, capabilities.pubsub,
                                              user.id)
                revoked = 0 if args.keep_api_keys else accounts.revoke_all_api_keys(user)
                if revoked:
                    sessions.announce_credentials_changed(capabilities.pubsub, [user.id])
        finally:
            with connection(db):
                capabilities.close()  # flushes counters to the database; logs, never raises
                try:
                    checkpoint(db)
                except Exception as exc:  # another process may hold the database
                    print(f"trackeep: could not checkpoint the database: {exc}",
                          file=sys.stderr)
    finally:
        if not db.is_closed():
            db.close()
        if hasattr(db, "close_all"):
            db.close_all()
    print(f"the password of {user.username} is changed; {ended} session(s) ended, "
          f"{revoked} API key(s) revoked")
    if not config.get("REDIS_URL") and ended:
        print("(a Trackeep already running without Redis keeps those sessions signed in "
              "until it restarts)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        from trackeep_desktop import __version__

        print(f"trackeep {__version__}")
        return 0
    serve_overrides = prepare_serve(args) if args.command == "serve" else None
    from trackeep_desktop.storage.db import ConfigurationError

    try:
        if args.command == "serve":
            return cmd_serve(serve_overrides)
        if args.command == "db":
            return cmd_db(args)
        if args.command == "settings":
            return cmd_settings(args)
        if args.command == "import":
            return cmd_import(args)
        if args.command == "search":
            return cmd_search(args)
        if args.command == "stats":
            return cmd_stats(args)
        if args.command == "leaderboards":
            return cmd_leaderboards(args)
        if args.command == "user":
            return cmd_user(args)
        if args.command == "backup":
            return cmd_backup(args)
        if args.command == "restore":
            return cmd_restore(args)
        from trackeep_desktop.desktop.program import run_desktop

        return run_desktop(_overrides(args))
    except ConfigurationError as exc:
        print(f"trackeep: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

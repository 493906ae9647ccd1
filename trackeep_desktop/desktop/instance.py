"""One instance per data folder: the lock file, and the control socket a second launch
uses to ask the running program to show its window."""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import socketserver
import sys
import threading
from pathlib import Path
from typing import IO, Any

from .launch import LOCK_FILE

log = logging.getLogger(__name__)


class InstanceLock:
    """An exclusive, non-blocking lock on ``desktop.lock`` in the data folder.

    The operating system releases it when the process ends, however it ends, so a crash
    never leaves the data folder locked.
    """

    def __init__(self, data_dir: Path):
        self.path = data_dir / LOCK_FILE
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+b")  # noqa: SIM115 (held open while locked)
        try:
            if sys.platform == "win32":  # (not os.name == "nt": type checkers know this form)
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is None:
            return
        try:
            if sys.platform == "win32":  # (not os.name == "nt": type checkers know this form)
                import msvcrt

                self._file.seek(0)
                msvcrt.locking(self._file.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._file.close()
            self._file = None


def write_private_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON readable by this user only, replacing ``path`` atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class ControlServer:
    """The running instance's loopback control port: a second launch asks it to show itself.

    One JSON line in (``{"key": ..., "command": "activate"}``), one JSON line out. The key
    is random per run and written only to ``desktop.json`` in the data folder (mode 0600):
    whoever can read it can read the database too.
    """

    def __init__(self, on_activate):
        self.key = secrets.token_hex(32)
        self.on_activate = on_activate
        control = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 5

            def handle(self):
                try:
                    message = json.loads(self.rfile.readline(4096) or b"{}")
                except ValueError:
                    return
                if not isinstance(message, dict) or not hmac.compare_digest(
                        str(message.get("key", "")), control.key):
                    log.warning("refused a desktop control request with a wrong key")
                    return
                answer = control.handle(message.get("command"))
                self.wfile.write(json.dumps(answer).encode() + b"\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def handle(self, command: str | None) -> dict[str, Any]:
        if command == "activate":
            return {"ok": True, **self.on_activate()}
        return {"ok": False, "error": f"unknown command {command!r}"}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="trackeep-desktop-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()


def ask_running_instance(record: dict, command: str, timeout: float = 5.0) -> dict:
    """Send ``command`` to the instance described by ``desktop.json``; returns its answer."""
    import socket

    with socket.create_connection(("127.0.0.1", int(record["control_port"])),
                                  timeout=timeout) as sock:
        sock.sendall(json.dumps({"key": record["key"], "command": command}).encode() + b"\n")
        with sock.makefile("rb") as reader:
            line = reader.readline(65536)
    answer = json.loads(line) if line else None
    if not isinstance(answer, dict) or not answer.get("ok"):
        raise ConnectionError(f"the running instance refused {command!r}: {answer}")
    return answer

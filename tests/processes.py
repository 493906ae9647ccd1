"""Trackeep as a real server for the tests: a child process (``trackeep serve``, desktop mode,
or the frozen binary) or a thread of this process.

A child runs in its own process group with its output in a file (a chatty server never
blocks on a full pipe); :meth:`ServerProcess.stop` sends SIGTERM as a service manager would,
kills the process if it does not stop in time, and then kills whatever is left in its group
(Qt's helpers, a forked worker). Every child started here is remembered until it is stopped,
so the session-end check in conftest can name any that a test left behind.

    with ServerProcess.serve(tmp_path / "data", database_url) as server:
        server.wait_for_health()
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent

#: What ``trackeep serve`` (and desktop mode) prints once it listens.
RUNNING_PREFIX = "Trackeep is running at "

#: Every child started by :class:`ServerProcess` and not yet stopped.
LIVE: set[ServerProcess] = set()


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without ``TRACKEEP_*`` settings (nor a display), plus
    ``extra``: a child sees only the settings its test gives it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRACKEEP_") and k not in ("DISPLAY", "WAYLAND_DISPLAY",
                                                          "QT_QPA_PLATFORM")}
    env.update(extra)
    return env


class ServerProcess:
    """A Trackeep child process in its own process group, its output in ``log_path``."""

    def __init__(self, command: list[str], log_path: Path, env: dict | None = None,
                 cwd: Path = ROOT):
        self.command = command
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=clean_environment() if env is None else env, cwd=cwd,
                                     start_new_session=True)
        self.pgid = self.proc.pid  # start_new_session: the child leads its own group
        self.returncode: int | None = None
        LIVE.add(self)
        self._url: str | None = None

    @classmethod
    def serve(cls, data_dir: Path, database_url: str, *extra: str,
              env_extra: dict | None = None, binary: Path | None = None) -> ServerProcess:
        """``trackeep serve --port 0`` on ``data_dir`` (the frozen ``binary`` if given);
        returns once it printed its URL."""
        data_dir.mkdir(parents=True, exist_ok=True)
        program = [str(binary)] if binary else [sys.executable, "-m", "trackeep_desktop"]
        log_path = data_dir.parent / f"{data_dir.name}-serve-{time.monotonic_ns()}.log"
        server = cls([*program, "serve", "--port", "0", "--data-dir", str(data_dir),
                      "--database-url", database_url, *extra], log_path,
                     env=clean_environment(**(env_extra or {})),
                     cwd=data_dir.parent if binary else ROOT)
        try:
            server.wait_for_url()
        except BaseException:
            server.stop()
            raise
        return server

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------------------- output

    def output(self) -> str:
        """Everything the child printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, prefix: str, timeout: float = 60, after: int = 0) -> str:
        """The rest of the first output line starting with ``prefix`` (the ``after``-th on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [ln for ln in self.output().splitlines() if ln.startswith(prefix)]
            if len(lines) > after:
                return lines[after][len(prefix):]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} line from {self.command[:4]}; output:\n"
                             f"{self.output()}")

    def wait_for_text(self, text: str, timeout: float = 10) -> str:
        """The output once it contains ``text`` (or as it is after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while text not in self.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.output()

    def wait_for_url(self, timeout: float = 60) -> str:
        """The base URL it printed, without the trailing slash."""
        if self._url is None:
            line = self.wait_for_line(RUNNING_PREFIX, timeout)
            self._url = line.split()[0].rstrip("/")
        return self._url

    @property
    def url(self) -> str:
        return self.wait_for_url()

    def wait_for_health(self, timeout: float = 30) -> dict:
        """``/health`` once it answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return requests.get(f"{self.url}/health", timeout=2).json()
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    # ------------------------------------------------------------------------ stopping

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds (and an AssertionError, since a
        server that ignores SIGTERM is a bug); the rest of its process group is killed."""
        if self.returncode is not None:
            return self.returncode
        hung = False
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    hung = True
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)
            self._log.close()
            self.returncode = self.proc.returncode
            LIVE.discard(self)
        if hung:
            raise AssertionError(f"{self.command[:4]} ignored SIGTERM for {timeout} s; "
                                 f"output:\n{self.output()}")
        return self.returncode


class ThreadServer:
    """An app served over real HTTP and WebSockets on a loopback port, in a thread of this
    process (the desktop's own threaded server)."""

    def __init__(self, app):
        from trackeep_desktop.web.server import ThreadedServer

        self.app = app
        self._server = ThreadedServer(app, "127.0.0.1", 0)
        self.port = self._server.port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = self._server.start_background()

    def stop(self, timeout: float = 5) -> None:
        self._server.stop(timeout=timeout)
        self._thread.join(timeout)

    def __enter__(self) -> ThreadServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


# ------------------------------------------------------------------------ what /proc says


def descendants(pid: int | None = None) -> list[tuple[int, str]]:
    """``(pid, command line)`` of every living descendant of ``pid`` (this process)."""
    pid = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if fields[0] == "Z":
            continue  # a zombie is already dead; its parent has only to reap it
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        found.append((child, cmdline.decode(errors="replace").strip()))
        todo.extend(children.get(child, []))
    return found


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (``/proc/net/tcp`` and
    ``tcp6``): ``{"127.0.0.1"}`` for a loopback server, ``{"0.0.0.0"}`` for every address."""
    import ipaddress

    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, width // 2, 4))
            found.add(str(ipaddress.ip_address(raw)))
    return found

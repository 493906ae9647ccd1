"""Real Redis and PostgreSQL servers for the tests.

A configured URL wins (``TRACKEEP_TEST_REDIS_URL``, ``TRACKEEP_TEST_DATABASE_URL``); otherwise
the tests start their own server on a spare loopback port when the binaries exist. When neither
is possible the caller skips with the reason, or fails under CI (``CI=true``), where a skipped
service test would hide a broken build.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: Every server started here and not yet stopped (the session-end check in conftest reads it).
STARTED: set = set()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_for_unix_socket(path: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.2)
                s.connect(str(path))
                return True
        except OSError:
            time.sleep(0.05)
    return False


class RedisServer:
    """A ``redis-server`` child process on a spare port, without persistence.

    ``unix_socket`` (a path) makes it listen on that socket only (``--port 0``); ``tls`` (a
    :class:`TlsFiles`) makes it answer TLS on a spare port only.
    """

    def __init__(self, port: int | None = None, *, unix_socket: Path | None = None,
                 tls: TlsFiles | None = None):
        self.port = port or free_port()
        self.unix_socket = unix_socket
        self.tls = tls
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.unix_socket is not None:
            return f"unix://{self.unix_socket}?db=0"
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.cert}"
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def _listen_args(self) -> list[str]:
        if self.unix_socket is not None:
            return ["--port", "0", "--unixsocket", str(self.unix_socket),
                    "--unixsocketperm", "700"]
        if self.tls is not None:
            return ["--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
                    "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
                    "--tls-ca-cert-file", str(self.tls.cert), "--tls-auth-clients", "no"]
        return ["--port", str(self.port), "--bind", "127.0.0.1"]

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                "redis-server", *self._listen_args(),
                "--save", "", "--appendonly", "no", "--protected-mode", "no",
                "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        STARTED.add(self)
        ready = (wait_for_unix_socket(self.unix_socket) if self.unix_socket is not None
                 else wait_for_port(self.port))
        if not ready:
            self.stop()
            raise RuntimeError(f"redis-server did not start ({self._listen_args()})")
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
        STARTED.discard(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port})"


class TlsFiles:
    """A self-signed certificate for 127.0.0.1 (``openssl req``), for a TLS redis-server."""

    def __init__(self, folder: Path):
        self.cert = folder / "redis-cert.pem"
        self.key = folder / "redis-key.pem"

    @staticmethod
    def available() -> bool:
        return shutil.which("openssl") is not None

    def create(self) -> TlsFiles:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", str(self.key), "-out", str(self.cert), "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self


class SentinelServer:
    """One Redis Sentinel (``redis-server CONF --sentinel``) watching ``master`` as
    ``service``, on a spare port, with its config file (which it rewrites) in ``folder``."""

    def __init__(self, master: RedisServer, folder: Path, service: str = "mymaster"):
        self.master = master
        self.service = service
        self.port = free_port()
        self.config = folder / f"sentinel-{self.port}.conf"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def start(self) -> SentinelServer:
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\n"
            f"dir {self.config.parent}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n")
        self.proc = subprocess.Popen(["redis-server", str(self.config), "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.add(self)
        if not wait_for_port(self.port):
            self.stop()
            raise RuntimeError(f"redis sentinel did not start on port {self.port}")
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
        STARTED.discard(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port})"


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


class PostgresServer:
    """A throw-away PostgreSQL cluster in a temporary folder on a spare port.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
    """

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="trackeep-pg-"))
        self.data = self.dir / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def available() -> bool:
        if not (_pg_bin("initdb") and _pg_bin("pg_ctl")):
            return False
        if os.geteuid() == 0:
            return shutil.which("runuser") is not None and _user_exists("postgres")
        return True

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8")
        STARTED.add(self)
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "log"), "-w", "start")
        return self

    def running(self) -> bool:
        """True while the cluster's postmaster is alive (pg_ctl runs it as a daemon, not as
        a child of the tests)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except PermissionError:
            return True  # alive, and another user's (as root, the cluster is postgres's)
        except (OSError, ValueError, IndexError):
            return False
        return True

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
        STARTED.discard(self)

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, dir={self.dir})"


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False

"""The HTTP servers: gevent (``trackeep serve``'s default) and Werkzeug's threaded server
(the desktop window and tests), which both carry real WebSockets, and waitress, pure Python
for hosts where gevent cannot be installed, which cannot (Socket.IO then long-polls).

Both set TCP_NODELAY on accepted sockets: without it a keep-alive request or a burst of two
Socket.IO frames stalls about 40 ms on delayed ACKs (see stack-notes).
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time

from flask import Flask

from trackeep_desktop.web.hosts import allowed_hosts, is_loopback

log = logging.getLogger(__name__)


#: What the servers answer themselves, before Flask sees the request, to an API client: a
#: request line longer than they read (gevent: 8 KiB, Werkzeug: 64 KiB). Every answer under
#: /api/ is JSON, these too.
_SERVER_ERRORS = {414: ("Request URI Too Long", "request line too long")}


def is_api_request_line(line: bytes | str) -> bool:
    """Whether a (possibly truncated) request line asks for a path under /api/."""
    if isinstance(line, bytes):
        line = line.decode("latin-1")
    parts = line.split(" ", 2)
    if len(parts) < 2:
        return False
    target = parts[1]
    if "://" in target:  # absolute form: http://host/api/...
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    return target.startswith("/api/")


def drain_request_head(rfile, limit: int = 1 << 20) -> None:
    """Read what is left of a refused request's line and headers (at most ``limit`` bytes):
    closing a socket with unread data resets the connection, and the client would lose the
    answer."""
    read = 0
    while read < limit:
        line = rfile.readline(min(65536, limit - read))
        read += len(line)
        if line in (b"", b"\r\n", b"\n"):
            return


def json_error_response(status: int) -> bytes:
    """A complete HTTP response (status line, headers, body) for one of the servers' own
    refusals, as the JSON error body every API answer has; the connection closes after it."""
    reason, message = _SERVER_ERRORS[status]
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1") + body


class _RequestCounter:
    """How many requests are in progress; a context manager around each one."""

    def __init__(self):
        self._idle = threading.Condition()
        self.count = 0

    def __enter__(self):
        with self._idle:
            self.count += 1

    def __exit__(self, *exc_info):
        with self._idle:
            self.count -= 1
            if self.count == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in progress; False if some still are after ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: self.count == 0, timeout)


class ThreadedServer:
    """Werkzeug's threaded WSGI server, owned by us so it can be shut down cleanly.

    It counts the plain HTTP requests in progress (not WebSockets, which last as long as
    their client), so :meth:`stop` can let an upload or a save finish before the database
    is closed.
    """

    def __init__(self, app: Flask, host: str, port: int):
        from werkzeug.serving import WSGIRequestHandler, make_server

        in_flight = self._in_flight = _RequestCounter()

        class NoDelayHandler(WSGIRequestHandler):
            # HTTP/1.1 keeps connections alive (the threaded server allows it): a page's
            # many fetches, and API clients, then skip a TCP handshake and a new thread each.
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def run_wsgi(self):
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    return super().run_wsgi()
                with in_flight:
                    return super().run_wsgi()

            def log_request(self, code="-", size="-"):
                pass  # requests are counted in /metrics; access logs are a proxy's job

            def send_error(self, code, message=None, explain=None):
                # http.server refuses a request line over 64 KiB itself, with an HTML page.
                if code in _SERVER_ERRORS and is_api_request_line(
                        getattr(self, "raw_requestline", b"")):
                    self.close_connection = True
                    drain_request_head(self.rfile)
                    self.wfile.write(json_error_response(code))
                    return
                super().send_error(code, message, explain)

        self._server = make_server(host, port, app, threaded=True, request_handler=NoDelayHandler)
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_port
        self.drain_timeout = 10.0

    def serve_forever(self) -> None:
        """Serve until :meth:`stop`; return once the requests in progress are done."""
        self._server.serve_forever(poll_interval=0.2)
        self._drain()

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="trackeep-http", daemon=True)
        thread.start()
        return thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, then give requests in progress ``timeout`` seconds to finish.

        Call it from another thread than :meth:`serve_forever`'s, which it waits for.
        """
        self.drain_timeout = timeout
        self._server.shutdown()
        self._server.server_close()
        self._drain()

    def _drain(self) -> None:
        if not self._in_flight.wait_idle(self.drain_timeout):
            log.warning("stopped with %d request(s) still running", self._in_flight.count)

    def stop_on_signals(self, *signums: int) -> None:
        """Stop (from another thread, as shutdown() waits for serve_forever) on a signal."""

        def handler(signum, frame):
            log.info("signal %s: shutting down", signal.Signals(signum).name)
            threading.Thread(target=self.stop, name="trackeep-stop", daemon=True).start()

        for signum in signums:
            signal.signal(signum, handler)


class GeventServer:
    """gevent's pywsgi with gevent-websocket; needs ``gevent.monkey.patch_all()`` first."""

    def __init__(self, app: Flask, host: str, port: int, concurrency: int):
        import gevent
        from gevent.pool import Pool
        from gevent.pywsgi import WSGIServer
        from geventwebsocket.handler import WebSocketHandler

        class JsonErrorHandler(WebSocketHandler):
            served = 0

            def handle_one_request(self):
                # Take turns: a keep-alive client whose next request is already there would
                # otherwise be served again at once, the greenlet never yielding, while the
                # other connections wait (at 64 connections p50 1 ms, p99 1.7 s).
                if self.served:
                    gevent.sleep(0)
                self.served += 1
                # pywsgi refuses a request line of 8 KiB or more itself, with an empty body.
                result = super().handle_one_request()
                if (isinstance(result, tuple) and int(result[0]) in _SERVER_ERRORS
                        and is_api_request_line(self.requestline or "")):
                    drain_request_head(self.rfile)
                    return result[0], json_error_response(int(result[0]))
                return result

        class NoDelayServer(WSGIServer):
            def handle(self, sock, address):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return super().handle(sock, address)

        self._server = NoDelayServer((host, port), app, handler_class=JsonErrorHandler,
                                     spawn=Pool(concurrency), log=None, error_log=log)
        self._server.init_socket()
        self.host = host
        self.port = self._server.server_port

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, then give open requests ``timeout`` seconds to finish."""
        self._server.stop(timeout=timeout)

    def stop_on_signals(self, *signums: int) -> None:
        """Stop on a signal; the handler runs in the event loop, so the stop is spawned."""
        import gevent

        def handler(signum):
            log.info("signal %s: shutting down", signal.Signals(signum).name)
            gevent.spawn(self.stop)

        for signum in signums:
            gevent.signal_handler(signum, handler, signum)


class _CountedBody:
    """A response body that leaves the in-flight count when the server closes it (after
    the last byte of a streamed export, not when the view returns)."""

    def __init__(self, body, counter: _RequestCounter):
        self._body, self._counter = body, counter

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            self._counter.__exit__(None, None, None)


class WaitressServer:
    """waitress: a pure-Python thread pool behind one select loop, for hosts where gevent
    cannot be installed. HTTP/1.1 only: it cannot hand a request's socket to a WebSocket,
    so Socket.IO is offered long-polling only (see ``create_socketio``), and each client's
    pending poll holds one of ``threads`` for up to the ping interval (25 s).

    Its loop is ours (one poll at a time), so :meth:`stop` can stop accepting, let the
    requests in progress finish and their answers reach the client, and only then stop
    the threads.
    """

    def __init__(self, app: Flask, host: str, port: int, threads: int, connections: int):
        from waitress.server import create_server

        in_flight = self._in_flight = _RequestCounter()
        self._stopping = threading.Event()

        def counted(environ, start_response):
            if environ.get("PATH_INFO", "").startswith("/socket.io/"):
                return app(environ, start_response)  # a poll waits as long as its client
            in_flight.__enter__()
            try:
                return _CountedBody(app(environ, start_response), in_flight)
            except BaseException:
                in_flight.__exit__(None, None, None)
                raise

        # A request line up to 1 MiB reaches Flask, which answers a long one as JSON 414
        # under /api/; beyond it waitress answers 431 in plain text itself. The forwarded
        # headers are left to the application (TRACKEEP_TRUSTED_PROXIES decides), not
        # stripped by waitress's own proxy handling.
        self._server = create_server(
            counted, host=host, port=port, threads=threads, connection_limit=connections,
            max_request_header_size=1 << 20, ident="trackeep",
            clear_untrusted_proxy_headers=False)
        self.host = host
        self.port = self._server.effective_port
        self.drain_timeout = 10.0

    def serve_forever(self) -> None:
        """Serve until :meth:`stop`, then drain: answer what is in progress, stop threads."""
        from waitress import wasyncore

        server = self._server
        while not self._stopping.is_set():
            wasyncore.loop(timeout=0.2, map=server._map, use_poll=True, count=1)
        wasyncore.dispatcher.close(server)  # the listening socket only
        deadline = time.monotonic() + self.drain_timeout
        while self._in_flight.count and time.monotonic() < deadline:
            wasyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)
        for _ in range(20):  # let the last answers' bytes leave the buffers
            if not any(channel.writable() for channel in list(server._map.values())):
                break
            wasyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)
        if self._in_flight.count:
            log.warning("stopped with %d request(s) still running", self._in_flight.count)
        server.task_dispatcher.shutdown(timeout=1)
        wasyncore.close_all(server._map)

    def stop(self, timeout: float = 10.0) -> None:
        self.drain_timeout = timeout
        self._stopping.set()

    def stop_on_signals(self, *signums: int) -> None:
        def handler(signum, frame):
            log.info("signal %s: shutting down", signal.Signals(signum).name)
            self.stop(self.drain_timeout)

        for signum in signums:
            signal.signal(signum, handler)


#: Most worker threads of waitress: each pending Socket.IO poll holds one.
WAITRESS_MAX_THREADS = 64


def serve(overrides: dict, app: Flask | None = None) -> None:
    """Run the application (made from ``overrides`` unless given: bench/http.py adds its
    floor routes to one) until SIGTERM or SIGINT, then shut down cleanly."""
    if app is None:
        from trackeep_desktop.app import create_app

        app = create_app(overrides)
    state = app.extensions["trackeep"]
    config = state.config
    host, port = config["HOST"], config["PORT"]
    if not is_loopback(host) and not config["TRUSTED_PROXIES"]:
        log.warning("listening on %s, beyond this machine, with no HTTPS reverse proxy "
                    "configured (TRACKEEP_TRUSTED_PROXIES): passwords and session cookies "
                    "cross the network unencrypted", host)
    if allowed_hosts(config) is None and not is_loopback(host):
        log.warning("listening on %s with no TRACKEEP_ALLOWED_HOSTS or TRACKEEP_PUBLIC_URL: "
                    "any Host header is answered; set them to the names users reach this "
                    "server by", host)
    server: GeventServer | WaitressServer | ThreadedServer
    if config["ASYNC_MODE"] == "gevent":
        server = GeventServer(app, host, port, config["CONCURRENCY"])
    elif config["SERVER"] == "waitress":
        concurrency = config["CONCURRENCY"]
        server = WaitressServer(app, host, port, threads=min(concurrency, WAITRESS_MAX_THREADS),
                                connections=concurrency)
    else:
        server = ThreadedServer(app, host, port)

    server.stop_on_signals(signal.SIGTERM, signal.SIGINT)
    shown_host = f"[{host}]" if ":" in host else host
    print(f"Trackeep is running at http://{shown_host}:{server.port}/", flush=True)
    try:
        server.serve_forever()
    finally:
        state.close()
        log.info("stopped")
